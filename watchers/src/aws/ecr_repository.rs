//! ECR repositories of one region with their repository policy, in AWS Config's item
//! shape (AWS Config records the CloudFormation-like properties): `configuration` has
//! `RepositoryName`, `Arn`, `RepositoryUri`, `ImageTagMutability`,
//! `ImageScanningConfiguration.ScanOnPush`, `EncryptionConfiguration` and
//! `RepositoryPolicyText`; the id is the repository name.
//!
//! Calls: `ecr:DescribeRepositories` (paged), then per repository
//! `ecr:GetRepositoryPolicy` (none set: RepositoryPolicyNotFoundException) and
//! `ecr:ListTagsForResource`. A repository deleted in between is gone; any other
//! failure is a problem of that repository only.

use std::collections::HashMap;

use aws_sdk_ecr::types::Repository;
use serde_json::{json, Value};

use super::{
    all_pages, detail, detail_or_absent, each_element, AwsLister, Context, ItemDoc, ItemOutcome,
    Listed, Reach,
};

pub struct Repositories;

const RESOURCE_TYPE: &str = "AWS::ECR::Repository";
const GONE: &[&str] = &["RepositoryNotFoundException"];

fn configuration(r: &Repository, name: &str, policy: Option<&str>) -> Value {
    json!({
        "RepositoryName": name, "Arn": r.repository_arn(), "RepositoryUri": r.repository_uri(),
        "RegistryId": r.registry_id(),
        "ImageTagMutability": r.image_tag_mutability().map(|x| x.as_str()),
        "ImageScanningConfiguration": r.image_scanning_configuration().map(|s| json!({
            "ScanOnPush": s.scan_on_push(),
        })),
        "EncryptionConfiguration": r.encryption_configuration().map(|e| json!({
            "EncryptionType": e.encryption_type().as_str(), "KmsKey": e.kms_key(),
        })),
        "RepositoryPolicyText": policy,
    })
}

async fn repository(
    client: &aws_sdk_ecr::Client,
    ctx: &Context,
    r: &Repository,
    name: &str,
) -> ItemOutcome {
    let policy = match detail_or_absent(
        ctx,
        "ecr:GetRepositoryPolicy",
        GONE,
        &["RepositoryPolicyNotFoundException"],
        client.get_repository_policy().repository_name(name).send(),
    )
    .await
    {
        Ok(p) => p.and_then(|p| p.policy_text().map(str::to_owned)),
        Err(o) => return o,
    };
    let arn = r.repository_arn().map(str::to_owned).unwrap_or_else(|| {
        format!("arn:aws:ecr:{}:{}:repository/{name}", ctx.region, ctx.account)
    });
    let tags = match detail(
        ctx,
        "ecr:ListTagsForResource",
        GONE,
        client.list_tags_for_resource().resource_arn(&arn).send(),
    )
    .await
    {
        Ok(t) => t
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        Err(o) => return o,
    };
    ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id: name,
        name: Some(name),
        arn,
        configuration: configuration(r, name, policy.as_deref()),
        supplementary: json!({}),
        relationships: Vec::new(),
        tags,
    }
    .outcome()
}

impl AwsLister for Repositories {
    fn service(&self) -> &'static str {
        "ecr"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_ecr, ctx);
        let pages = client
            .describe_repositories()
            .max_results(1000)
            .into_paginator()
            .send();
        let by_name: HashMap<String, Repository> =
            all_pages(ctx, "ecr:DescribeRepositories", pages)
                .await?
                .into_iter()
                .flat_map(|p| p.repositories.unwrap_or_default())
                .filter_map(|r| Some((r.repository_name()?.to_owned(), r)))
                .collect();
        let client = &client;
        Ok(each_element(ctx, RESOURCE_TYPE, &by_name, |name, r| repository(client, ctx, r, name)).await)
    }
}
