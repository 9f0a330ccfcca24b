//! CloudTrail trails whose home is this region, in AWS Config's item shape
//! (`configuration` as DescribeTrails answers: `name`, `trailARN`, `homeRegion`,
//! `isMultiRegionTrail`, `logFileValidationEnabled`, `kmsKeyId`,
//! `cloudWatchLogsLogGroupArn`, `s3BucketName`, ...), plus what AWS Config's item lacks:
//! `supplementaryConfiguration.TrailStatus.isLogging` from `cloudtrail:GetTrailStatus`,
//! the first fact a reviewer asks ("is it on?").
//!
//! Calls: `cloudtrail:DescribeTrails` (shadow trails excluded, so each trail is listed
//! once, in its home region), then per trail `cloudtrail:GetTrailStatus` and
//! `cloudtrail:ListTags`.

use std::collections::BTreeMap;

use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::types::Trail;
use serde_json::json;

use super::{describe, each_item, AwsLister, Context, ItemDoc, ItemOutcome, Listed, Reach};

pub struct Trails;

const RESOURCE_TYPE: &str = "AWS::CloudTrail::Trail";

fn gone(code: Option<&str>) -> bool {
    code == Some("TrailNotFoundException")
}

async fn trail(client: &aws_sdk_cloudtrail::Client, ctx: &Context, t: &Trail) -> ItemOutcome {
    let Some(arn) = t.trail_arn() else {
        return ItemOutcome::Failed("cloudtrail:DescribeTrails answered a trail without an ARN".into());
    };
    let status = {
        let _p = ctx.permit().await;
        client.get_trail_status().name(arn).send().await
    };
    let status = match status {
        Ok(s) => s,
        Err(e) if gone(e.code()) => return ItemOutcome::Gone,
        Err(e) => {
            return ItemOutcome::Failed(format!(
                "cloudtrail:GetTrailStatus failed: {}",
                describe(&e)
            ))
        }
    };
    let tags = {
        let _p = ctx.permit().await;
        client.list_tags().resource_id_list(arn).send().await
    };
    let tags: BTreeMap<String, String> = match tags {
        Ok(o) => o
            .resource_tag_list()
            .iter()
            .flat_map(|r| r.tags_list())
            .filter_map(|t| Some((t.key().to_owned(), t.value()?.to_owned())))
            .collect(),
        Err(e) if gone(e.code()) => return ItemOutcome::Gone,
        Err(e) => return ItemOutcome::Failed(format!("cloudtrail:ListTags failed: {}", describe(&e))),
    };
    let name = t.name().unwrap_or(arn);
    let doc = ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id: name,
        name: Some(name),
        arn: arn.to_owned(),
        configuration: json!({
            "name": t.name(), "trailARN": arn, "homeRegion": t.home_region(),
            "s3BucketName": t.s3_bucket_name(), "s3KeyPrefix": t.s3_key_prefix(),
            "snsTopicARN": t.sns_topic_arn(),
            "includeGlobalServiceEvents": t.include_global_service_events(),
            "isMultiRegionTrail": t.is_multi_region_trail(),
            "isOrganizationTrail": t.is_organization_trail(),
            "logFileValidationEnabled": t.log_file_validation_enabled(),
            "cloudWatchLogsLogGroupArn": t.cloud_watch_logs_log_group_arn(),
            "cloudWatchLogsRoleArn": t.cloud_watch_logs_role_arn(),
            "kmsKeyId": t.kms_key_id(),
            "hasCustomEventSelectors": t.has_custom_event_selectors(),
            "hasInsightSelectors": t.has_insight_selectors(),
        }),
        supplementary: json!({ "TrailStatus": { "isLogging": status.is_logging() } }),
        relationships: Vec::new(),
        tags,
    };
    match doc.observe() {
        Ok(o) => ItemOutcome::Item(Box::new(o)),
        Err(e) => ItemOutcome::Failed(e),
    }
}

impl AwsLister for Trails {
    fn service(&self) -> &'static str {
        "cloudtrail"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_cloudtrail, ctx);
        let out = {
            let _p = ctx.permit().await;
            client
                .describe_trails()
                .include_shadow_trails(false)
                .send()
                .await
        }
        .map_err(|e| format!("cloudtrail:DescribeTrails failed: {}", describe(&e)))?;
        // Only trails at home here: a multi-region trail is one item, in its home region.
        let trails: BTreeMap<String, Trail> = out
            .trail_list()
            .iter()
            .filter(|t| t.home_region().is_none_or(|r| r == ctx.region))
            .filter_map(|t| Some((t.trail_arn()?.to_owned(), t.clone())))
            .collect();
        let client = &client;
        let trails = &trails;
        Ok(each_item(ctx, RESOURCE_TYPE, trails.keys().cloned().collect(), |arn| async move {
            match trails.get(&arn) {
                Some(t) => trail(client, ctx, t).await,
                None => ItemOutcome::Gone,
            }
        })
        .await)
    }
}
