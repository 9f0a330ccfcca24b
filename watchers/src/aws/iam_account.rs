//! The account's own IAM settings, one item per account (`AWS::IAM::Account`, a type
//! AWS Config does not record): `configuration.summary` is `iam:GetAccountSummary`
//! (`AccountMFAEnabled` and `AccountAccessKeysPresent` say whether the root user has
//! MFA and access keys) and `configuration.passwordPolicy` is
//! `iam:GetAccountPasswordPolicy`, `null` when the account never set one (that answer
//! is data: the defaults apply).

use std::collections::BTreeMap;

use aws_sdk_iam::error::ProvideErrorMetadata;
use serde_json::{json, Map, Value};

use super::{describe, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct Account;

const RESOURCE_TYPE: &str = "AWS::IAM::Account";

impl AwsLister for Account {
    fn service(&self) -> &'static str {
        "iam"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Global
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_iam, ctx);
        let summary = {
            let _p = ctx.permit().await;
            client.get_account_summary().send().await
        }
        .map_err(|e| format!("iam:GetAccountSummary failed: {}", describe(&e)))?;
        // Only the root user's facts (`Account…`): the other entries count users,
        // roles and policies and would make a revision at every IAM change.
        let summary: Map<String, Value> = summary
            .summary_map()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str().starts_with("Account"))
            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
            .collect();
        let policy = {
            let _p = ctx.permit().await;
            client.get_account_password_policy().send().await
        };
        let password_policy = match policy {
            Ok(o) => o.password_policy().map(|p| {
                json!({
                    "minimumPasswordLength": p.minimum_password_length(),
                    "requireSymbols": p.require_symbols(),
                    "requireNumbers": p.require_numbers(),
                    "requireUppercaseCharacters": p.require_uppercase_characters(),
                    "requireLowercaseCharacters": p.require_lowercase_characters(),
                    "allowUsersToChangePassword": p.allow_users_to_change_password(),
                    "expirePasswords": p.expire_passwords(),
                    "maxPasswordAge": p.max_password_age(),
                    "passwordReusePrevention": p.password_reuse_prevention(),
                    "hardExpiry": p.hard_expiry(),
                })
            }),
            // Never set: the account runs on AWS's defaults, which is what rules judge.
            Err(e) if e.code() == Some("NoSuchEntity") => None,
            Err(e) => {
                return Err(format!(
                    "iam:GetAccountPasswordPolicy failed: {}",
                    describe(&e)
                ))
            }
        };
        let item = ItemDoc {
            resource_type: RESOURCE_TYPE,
            account: &ctx.account,
            region: "global",
            id: &ctx.account,
            name: Some(&ctx.account),
            arn: format!("arn:aws:iam::{}:root", ctx.account),
            configuration: json!({
                "summary": summary,
                "passwordPolicy": password_policy,
            }),
            supplementary: json!({}),
            relationships: Vec::new(),
            tags: BTreeMap::new(),
        }
        .observe()?;
        Ok(Listed {
            items: vec![item],
            problems: Vec::new(),
        })
    }
}
