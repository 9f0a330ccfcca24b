//! Secrets Manager secrets of one region with their resource policy, in AWS Config's
//! item shape: `configuration` is what AWS Config records for a secret (`Name`, `ARN`,
//! `KmsKeyId`, `RotationEnabled`, `RotationLambdaARN`, `RotationRules`,
//! `LastRotatedDate`, `Deleted`, ...); the id is the secret ARN. AWS Config does not
//! record the resource policy (a separate resource), which is why this lister exists:
//! it is `supplementaryConfiguration.ResourcePolicy`. Never the secret value.
//!
//! Calls: `secretsmanager:ListSecrets` (paged), then per secret
//! `secretsmanager:GetResourcePolicy`. A secret deleted in between is gone; any other
//! failure is a problem of that secret only.

use std::collections::HashMap;

use aws_sdk_secretsmanager::types::SecretListEntry;
use serde_json::{json, Value};

use super::{
    all_pages, detail, each_element, tag_pairs, time, AwsLister, Context, ItemDoc, ItemOutcome,
    Listed, Reach,
};

pub struct Secrets;

const RESOURCE_TYPE: &str = "AWS::SecretsManager::Secret";
const GONE: &[&str] = &["ResourceNotFoundException"];

fn configuration(s: &SecretListEntry, arn: &str) -> Value {
    json!({
        "ARN": arn, "Name": s.name(), "Description": s.description(),
        // ListSecrets leaves RotationEnabled out for a secret that never rotated; AWS
        // Config records false, and so does this item.
        "KmsKeyId": s.kms_key_id(), "RotationEnabled": s.rotation_enabled().unwrap_or(false),
        "RotationLambdaARN": s.rotation_lambda_arn(),
        "RotationRules": s.rotation_rules().map(|r| json!({
            "AutomaticallyAfterDays": r.automatically_after_days(),
            "ScheduleExpression": r.schedule_expression(),
            "Duration": r.duration(),
        })),
        "LastRotatedDate": time(s.last_rotated_date()),
        "DeletedDate": time(s.deleted_date()),
        "Deleted": s.deleted_date().is_some(),
        "OwningService": s.owning_service(), "PrimaryRegion": s.primary_region(),
    })
}

async fn secret(
    client: &aws_sdk_secretsmanager::Client,
    ctx: &Context,
    s: &SecretListEntry,
    arn: &str,
) -> ItemOutcome {
    let policy = match detail(
        ctx,
        "secretsmanager:GetResourcePolicy",
        GONE,
        client.get_resource_policy().secret_id(arn).send(),
    )
    .await
    {
        Ok(p) => p.resource_policy().map(str::to_owned),
        Err(o) => return o,
    };
    let (_, tags) = tag_pairs(s.tags().iter().map(|t| (t.key(), t.value())));
    let mut supplementary = json!({});
    if let Some(p) = policy {
        supplementary["ResourcePolicy"] = Value::String(p);
    }
    ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id: arn,
        name: s.name(),
        arn: arn.to_owned(),
        configuration: configuration(s, arn),
        supplementary,
        relationships: Vec::new(),
        tags,
    }
    .outcome()
}

impl AwsLister for Secrets {
    fn service(&self) -> &'static str {
        "secretsmanager"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_secretsmanager, ctx);
        let pages = client.list_secrets().max_results(100).into_paginator().send();
        let by_arn: HashMap<String, SecretListEntry> =
            all_pages(ctx, "secretsmanager:ListSecrets", pages)
                .await?
                .into_iter()
                .flat_map(|p| p.secret_list.unwrap_or_default())
                .filter_map(|s| Some((s.arn()?.to_owned(), s)))
                .collect();
        let client = &client;
        Ok(each_element(ctx, RESOURCE_TYPE, &by_arn, |arn, s| secret(client, ctx, s, arn)).await)
    }
}
