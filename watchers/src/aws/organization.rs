//! The accounts of an AWS organisation, discovered at every sweep so accounts that
//! join are swept and accounts that close or leave are not, without a restart. Read
//! only: `organizations:ListAccounts`, and `ListParents` to place each account in its
//! OUs when the configuration includes or excludes OUs.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_organizations::types::AccountStatus;

use super::describe;
use super::sdk::{AwsAccount, Organization};

/// What discovery found: the accounts to sweep, and why others are not swept.
#[derive(Debug, Default)]
pub struct Discovered {
    pub accounts: Vec<AwsAccount>,
    pub skipped: Vec<String>,
}

/// The organisation's accounts to sweep. `configured` accounts (from `[accounts]`) keep
/// their own role, external id and regions; the rest get `role_name` in their account.
pub async fn discover(
    base: &SdkConfig,
    org: &Organization,
    configured: &[AwsAccount],
) -> Result<Discovered, String> {
    let client = aws_sdk_organizations::Client::new(base);
    let fix = "run with credentials of the management account or a delegated administrator, allowed organizations:ListAccounts and organizations:ListParents";
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_accounts()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "organizations:ListAccounts failed: {} ({fix})",
                    describe(&e)
                )
            })?;
        listed.extend(page.accounts().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let partition = |arn: Option<&str>| {
        arn.and_then(|a| a.split(':').nth(1))
            .unwrap_or("aws")
            .to_owned()
    };
    let mut ancestors: HashMap<String, Vec<String>> = HashMap::new();
    let mut found = Discovered::default();
    for a in &listed {
        let Some(id) = a.id().map(str::to_owned) else {
            continue;
        };
        let status = a.status();
        if status != Some(&AccountStatus::Active) {
            found.skipped.push(format!(
                "account {id} ({}) is {}: not swept",
                a.name().unwrap_or("?"),
                status.map_or("of unknown status", |s| s.as_str())
            ));
            continue;
        }
        if org.exclude_accounts.contains(&id) {
            found
                .skipped
                .push(format!("account {id} is excluded by exclude_accounts"));
            continue;
        }
        if !org.include_ous.is_empty() || !org.exclude_ous.is_empty() {
            let ous = ous_of(&client, &id, &mut ancestors).await?;
            if let Some(ou) = ous.iter().find(|o| org.exclude_ous.contains(o)) {
                found.skipped.push(format!(
                    "account {id} is under {ou}, excluded by exclude_ous"
                ));
                continue;
            }
            if !org.include_ous.is_empty() && !ous.iter().any(|o| org.include_ous.contains(o)) {
                found
                    .skipped
                    .push(format!("account {id} is under none of include_ous"));
                continue;
            }
        }
        let account = match configured
            .iter()
            .find(|c| c.id.as_deref() == Some(id.as_str()))
        {
            Some(c) => c.clone(),
            None => AwsAccount {
                role_arn: Some(format!(
                    "arn:{}:iam::{id}:role/{}",
                    partition(a.arn()),
                    org.role_name
                )),
                id: Some(id),
                external_id: org.external_id.clone(),
                session_name: None,
                regions: Vec::new(),
            },
        };
        found.accounts.push(account);
    }
    Ok(found)
}

/// Every OU above an account, nearest first, up to the root (cached per parent).
async fn ous_of(
    client: &aws_sdk_organizations::Client,
    account: &str,
    cache: &mut HashMap<String, Vec<String>>,
) -> Result<Vec<String>, String> {
    let mut chain = Vec::new();
    let mut child = account.to_owned();
    loop {
        if let Some(above) = cache.get(&child) {
            chain.extend(above.iter().cloned());
            break;
        }
        let parents = client
            .list_parents()
            .child_id(&child)
            .send()
            .await
            .map_err(|e| format!("organizations:ListParents {child} failed: {}", describe(&e)))?;
        let Some(parent) = parents
            .parents()
            .first()
            .and_then(|p| p.id())
            .map(str::to_owned)
        else {
            break;
        };
        if parent.starts_with("r-") {
            break; // the root
        }
        chain.push(parent.clone());
        child = parent;
    }
    // Cache what is above each OU met on the way.
    for (i, ou) in chain.iter().enumerate() {
        cache
            .entry(ou.clone())
            .or_insert_with(|| chain[i + 1..].to_vec());
    }
    Ok(chain)
}
