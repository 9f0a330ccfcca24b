//! KMS keys of one region, in AWS Config's item shape: `configuration` is the key's
//! metadata (`keyId`, `arn`, `keyState`, `keyManager`, `keySpec`, `origin`,
//! `deletionDate`, ...), `supplementaryConfiguration.Policy` the key policy and
//! `supplementaryConfiguration.KeyRotationStatus` whether automatic rotation is on —
//! the two facts AWS Config's own KMS item lacks, which is why this lister exists.
//!
//! Calls: `kms:ListKeys` and `kms:ListAliases` (paged), then per key `kms:DescribeKey`,
//! `kms:GetKeyPolicy` (policy `default`), `kms:ListResourceTags` (customer managed keys;
//! AWS managed keys carry no tags), and `kms:GetKeyRotationStatus` for enabled
//! customer managed symmetric keys with AWS-made material (the only ones that rotate
//! automatically). A key deleted meanwhile is gone; any other failure is a problem of
//! that key only.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, KeyState, OriginType};
use serde_json::{json, Value};

use super::{
    all_pages, describe, each_item, time, AwsLister, Context, ItemDoc, ItemOutcome, Listed, Reach,
};

pub struct Keys;

const RESOURCE_TYPE: &str = "AWS::KMS::Key";

fn gone(code: Option<&str>) -> bool {
    code == Some("NotFoundException")
}

fn metadata(m: &KeyMetadata) -> Value {
    json!({
        "keyId": m.key_id(), "arn": m.arn(), "awsAccountId": m.aws_account_id(),
        "creationDate": time(m.creation_date()), "enabled": m.enabled(),
        "description": m.description(), "keyUsage": m.key_usage().map(|x| x.as_str()),
        "keyState": m.key_state().map(|x| x.as_str()),
        "deletionDate": time(m.deletion_date()),
        "pendingDeletionWindowInDays": m.pending_deletion_window_in_days(),
        "origin": m.origin().map(|x| x.as_str()),
        "keyManager": m.key_manager().map(|x| x.as_str()),
        "keySpec": m.key_spec().map(|x| x.as_str()),
        "encryptionAlgorithms": m.encryption_algorithms().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "multiRegion": m.multi_region(),
    })
}

/// Whether AWS rotates this key's material on a schedule when asked to.
fn rotates(m: &KeyMetadata) -> bool {
    m.key_manager() == Some(&KeyManagerType::Customer)
        && m.key_spec() == Some(&KeySpec::SymmetricDefault)
        && m.origin() == Some(&OriginType::AwsKms)
        && m.key_state() == Some(&KeyState::Enabled)
}

async fn key(
    client: &aws_sdk_kms::Client,
    ctx: &Context,
    id: &str,
    aliases: &HashMap<String, String>,
) -> ItemOutcome {
    macro_rules! call {
        ($op:literal, $req:expr) => {{
            let out = {
                let _p = ctx.permit().await;
                $req.send().await
            };
            match out {
                Ok(o) => o,
                Err(e) if gone(e.code()) => return ItemOutcome::Gone,
                Err(e) => return ItemOutcome::Failed(format!("{} failed: {}", $op, describe(&e))),
            }
        }};
    }
    let described = call!("kms:DescribeKey", client.describe_key().key_id(id));
    let Some(m) = described.key_metadata() else {
        return ItemOutcome::Failed("kms:DescribeKey answered without key metadata".into());
    };
    let policy = call!(
        "kms:GetKeyPolicy",
        client.get_key_policy().key_id(id).policy_name("default")
    );
    let mut supplementary = json!({ "Policy": policy.policy() });
    if rotates(m) {
        let r = call!(
            "kms:GetKeyRotationStatus",
            client.get_key_rotation_status().key_id(id)
        );
        supplementary["KeyRotationStatus"] = Value::Bool(r.key_rotation_enabled());
    }
    let mut tags = BTreeMap::new();
    if m.key_manager() == Some(&KeyManagerType::Customer) {
        let t = call!("kms:ListResourceTags", client.list_resource_tags().key_id(id));
        for tag in t.tags() {
            tags.insert(tag.tag_key().to_owned(), tag.tag_value().to_owned());
        }
    }
    let arn = m
        .arn()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("arn:aws:kms:{}:{}:key/{id}", ctx.region, ctx.account));
    let doc = ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id,
        name: aliases.get(id).map(String::as_str),
        arn,
        configuration: metadata(m),
        supplementary,
        relationships: Vec::new(),
        tags,
    };
    match doc.observe() {
        Ok(o) => ItemOutcome::Item(Box::new(o)),
        Err(e) => ItemOutcome::Failed(e),
    }
}

impl AwsLister for Keys {
    fn service(&self) -> &'static str {
        "kms"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_kms, ctx);
        let pages = client.list_keys().limit(1000).into_paginator().send();
        let ids: Vec<String> = all_pages(ctx, "kms:ListKeys", pages)
            .await?
            .into_iter()
            .flat_map(|p| p.keys.unwrap_or_default())
            .filter_map(|k| k.key_id)
            .collect();
        // A key's first alias names it for people (`alias/payments`).
        let pages = client.list_aliases().limit(100).into_paginator().send();
        let mut aliases: HashMap<String, String> = HashMap::new();
        for a in all_pages(ctx, "kms:ListAliases", pages)
            .await?
            .into_iter()
            .flat_map(|p| p.aliases.unwrap_or_default())
        {
            if let (Some(key), Some(name)) = (a.target_key_id, a.alias_name) {
                aliases.entry(key).or_insert(name);
            }
        }
        let (client, aliases) = (&client, &aliases);
        Ok(each_item(ctx, RESOURCE_TYPE, ids, |id| async move {
            key(client, ctx, &id, aliases).await
        })
        .await)
    }
}
