//! Account identity, enabled regions, and `accounts check`: one cheap read per service
//! and region, so a missing permission or a broken trust policy shows up before the
//! first sweep instead of as a gap in it.

use aws_config::SdkConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;

use super::sdk::in_region;
use super::{account_config, describe, sdk_config, AwsTarget};

/// The account the credentials of `config` belong to.
pub async fn caller_account(config: &SdkConfig) -> Result<String, String> {
    let sts = aws_sdk_sts::Client::new(config);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| describe(&e))?;
    out.account()
        .map(str::to_owned)
        .ok_or_else(|| "no account in the answer".into())
}

/// Regions enabled in the account (opted-in or not needing opt-in).
pub async fn enabled_regions(config: &SdkConfig) -> Result<Vec<String>, String> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let out = ec2
        .describe_regions()
        .all_regions(false)
        .send()
        .await
        .map_err(|e| {
            format!(
                "ec2:DescribeRegions (for regions = [\"all\"]) failed: {}",
                describe(&e)
            )
        })?;
    let mut regions: Vec<String> = out
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_owned))
        .collect();
    regions.sort();
    Ok(regions)
}

/// One probe: an operation in one account and region, and what came of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccessCheck {
    pub region: String,
    pub service: &'static str,
    /// The IAM action the watchers need, e.g. `iam:GetAccountAuthorizationDetails`.
    pub action: &'static str,
    pub ok: bool,
    /// Empty when ok; otherwise the error and what to do about it.
    pub message: String,
}

/// The result of checking one configured account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountAccess {
    /// The configured id, or the one the credentials landed in.
    pub account: String,
    pub role_arn: Option<String>,
    /// Set when the account could not be entered at all.
    pub error: Option<String>,
    pub checks: Vec<AccessCheck>,
}

impl AccountAccess {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.ok)
    }
}

fn outcome<T, E>(
    region: &str,
    service: &'static str,
    action: &'static str,
    result: Result<T, E>,
    acceptable: &[&str],
) -> AccessCheck
where
    E: std::error::Error + ProvideErrorMetadata,
{
    let message = match &result {
        Ok(_) => String::new(),
        // "Nothing configured" answers mean the call was allowed.
        Err(e) if e.code().is_some_and(|c| acceptable.contains(&c)) => String::new(),
        Err(e) => {
            let code = e.code().unwrap_or_default();
            if code.contains("AccessDenied") || code == "UnauthorizedOperation" {
                format!("{code}: the monitor's role lacks {action}; grant it (see examples/iam-policy.json)")
            } else {
                format!("{action} failed: {}", describe(e))
            }
        }
    };
    AccessCheck {
        region: region.to_owned(),
        service,
        action,
        ok: message.is_empty(),
        message,
    }
}

/// Checks every configured account (or the base credentials' own): can it be entered,
/// and does each watcher's first call succeed in each region.
pub async fn check_accounts(target: &AwsTarget) -> Vec<AccountAccess> {
    let home = target
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| "us-east-1".into());
    let base = sdk_config(target, &home).await;
    let accounts = if target.accounts.is_empty() {
        vec![super::AwsAccount::default()]
    } else {
        target.accounts.clone()
    };
    let wanted = |s: &str| {
        if target.only.is_empty() {
            s != "config" || !target.config_types.is_empty()
        } else {
            target.only.iter().any(|o| o == s)
        }
    };
    let mut out = Vec::new();
    for account in accounts {
        let config = account_config(&base, &account).await;
        let mut access = AccountAccess {
            account: account.id.clone().unwrap_or_default(),
            role_arn: account.role_arn.clone(),
            error: None,
            checks: Vec::new(),
        };
        let id = match caller_account(&config).await {
            Ok(id) => id,
            Err(e) => {
                access.error = Some(format!(
                    "cannot enter the account (sts:{}): {e}",
                    if account.role_arn.is_some() {
                        "AssumeRole and GetCallerIdentity; check the role ARN, its trust policy and the external id"
                    } else {
                        "GetCallerIdentity; check the credentials, profile and endpoint"
                    }
                ));
                out.push(access);
                continue;
            }
        };
        if let Some(expected) = &account.id {
            if expected != &id {
                access.error = Some(format!(
                    "credentials for account {expected} landed in account {id}; fix role_arn"
                ));
                out.push(access);
                continue;
            }
        }
        access.account = id;
        let regions = super::configured_regions(target, &account.regions).await;
        let regions = if regions.iter().any(|r| r == "all") {
            match enabled_regions(&config).await {
                Ok(r) => r,
                Err(e) => {
                    access.error = Some(e);
                    out.push(access);
                    continue;
                }
            }
        } else {
            regions
        };
        let c = &mut access.checks;
        if wanted("iam") {
            let iam = aws_sdk_iam::Client::new(&config);
            let r = iam
                .get_account_authorization_details()
                .filter(aws_sdk_iam::types::EntityType::User)
                .max_items(1)
                .send()
                .await;
            // Access keys are listed per user: probe with one user, when there is one.
            let user = r.as_ref().ok().and_then(|d| {
                d.user_detail_list()
                    .first()
                    .and_then(|u| u.user_name())
                    .map(str::to_owned)
            });
            c.push(outcome(
                "global",
                "iam",
                "iam:GetAccountAuthorizationDetails",
                r,
                &[],
            ));
            let r = iam.list_roles().max_items(1).send().await;
            c.push(outcome("global", "iam", "iam:ListRoles", r, &[]));
            if let Some(user) = user {
                let r = iam
                    .list_access_keys()
                    .user_name(user)
                    .max_items(1)
                    .send()
                    .await;
                c.push(outcome("global", "iam", "iam:ListAccessKeys", r, &[]));
            }
        }
        if wanted("s3") {
            let s3 = aws_sdk_s3::Client::from_conf(super::s3_bucket::s3_conf(&config, None));
            let r = s3.list_buckets().send().await;
            c.push(outcome("global", "s3", "s3:ListAllMyBuckets", r, &[]));
            let control = super::s3_account_public_access_block::control_client(&config, None);
            let r = control
                .get_public_access_block()
                .account_id(&access.account)
                .send()
                .await;
            c.push(outcome(
                "global",
                "s3",
                "s3:GetAccountPublicAccessBlock",
                r,
                &["NoSuchPublicAccessBlockConfiguration"],
            ));
        }
        for region in &regions {
            let rc = in_region(&config, region);
            if wanted("ec2") {
                let ec2 = aws_sdk_ec2::Client::new(&rc);
                let r = ec2.describe_security_groups().max_results(5).send().await;
                c.push(outcome(region, "ec2", "ec2:DescribeSecurityGroups", r, &[]));
                let r = ec2.describe_instances().max_results(5).send().await;
                c.push(outcome(region, "ec2", "ec2:DescribeInstances", r, &[]));
            }
            if wanted("config") {
                let cfg = aws_sdk_config::Client::new(&rc);
                let t = target
                    .config_types
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "AWS::S3::Bucket".into());
                let r = match &target.config_aggregator {
                    Some(agg) => cfg
                        .list_aggregate_discovered_resources()
                        .configuration_aggregator_name(agg)
                        .resource_type(aws_sdk_config::types::ResourceType::from(t.as_str()))
                        .limit(1)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(aws_sdk_config::Error::from),
                    None => cfg
                        .list_discovered_resources()
                        .resource_type(aws_sdk_config::types::ResourceType::from(t.as_str()))
                        .limit(1)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(aws_sdk_config::Error::from),
                };
                c.push(outcome(
                    region,
                    "config",
                    "config:ListDiscoveredResources",
                    r,
                    &[],
                ));
            }
        }
        out.push(access);
    }
    out
}
