//! Any resource type AWS Config records, through the Config API: per account and
//! region (ListDiscoveredResources + BatchGetResourceConfig), or for a whole
//! organisation through an aggregator (the Aggregate* variants). Items are read by the
//! same code as delivery files, so they have exactly the file source's shape.

use aws_sdk_config::types::{
    AggregateResourceIdentifier, BaseConfigurationItem, ResourceKey, ResourceType,
};
use aws_sdk_config::Client;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::{describe, time, AwsLister, Context, Listed, Problem, Reach};
use crate::config_deliveries::{read_item, ItemState};

/// BatchGetResourceConfig takes at most 100 keys.
const BATCH: usize = 100;

pub struct ConfigRecorded {
    types: Vec<String>,
    aggregator: Option<String>,
}

impl ConfigRecorded {
    pub fn new(types: Vec<String>, aggregator: Option<String>) -> ConfigRecorded {
        ConfigRecorded { types, aggregator }
    }
}

/// A Config API item as the snapshot files spell it, so [`read_item`] reads both.
pub fn item_json(i: &BaseConfigurationItem) -> Value {
    let supplementary: Map<String, Value> = i
        .supplementary_configuration()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "version": i.version(),
        "accountId": i.account_id(),
        "configurationItemCaptureTime": time(i.configuration_item_capture_time()),
        "configurationItemStatus": i.configuration_item_status().map(|s| s.as_str()),
        "configurationStateId": i.configuration_state_id(),
        "arn": i.arn(),
        "resourceType": i.resource_type().map(|t| t.as_str()),
        "resourceId": i.resource_id(),
        "resourceName": i.resource_name(),
        "awsRegion": i.aws_region(),
        "availabilityZone": i.availability_zone(),
        "resourceCreationTime": time(i.resource_creation_time()),
        // A JSON string, as in the files; read_item parses it.
        "configuration": i.configuration(),
        "supplementaryConfiguration": supplementary,
    })
}

fn read(items: &[BaseConfigurationItem], listed: &mut Listed, t: &str, region: Option<&str>) {
    let now = Utc::now();
    for (n, i) in items.iter().enumerate() {
        match read_item(item_json(i), n, now, false) {
            Ok(ItemState::Present(o)) => listed.items.push(o),
            // Deleted and not-recorded resources are left out of a listing; a complete
            // listing without them is what records their deletion.
            Ok(_) => {}
            Err(e) => listed.problems.push(Problem {
                resource_type: t.to_owned(),
                region: region.map(str::to_owned),
                item: Some(e.item),
                message: e.message,
            }),
        }
    }
}

impl ConfigRecorded {
    async fn per_account(
        &self,
        client: &Client,
        ctx: &Context,
        t: &str,
    ) -> Result<Vec<BaseConfigurationItem>, String> {
        let mut pages = client
            .list_discovered_resources()
            .resource_type(ResourceType::from(t))
            .include_deleted_resources(false)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        loop {
            let page = {
                let _p = ctx.permit().await;
                pages.next().await
            };
            let Some(page) = page else { break };
            let page = page.map_err(|e| {
                format!(
                    "config:ListDiscoveredResources {t} in {} failed: {}",
                    ctx.region,
                    describe(&e)
                )
            })?;
            for r in page.resource_identifiers() {
                if let Some(id) = r.resource_id() {
                    let key = ResourceKey::builder()
                        .resource_type(ResourceType::from(t))
                        .resource_id(id)
                        .build()
                        .map_err(|e| e.to_string())?;
                    keys.push(key);
                }
            }
        }
        let mut items = Vec::new();
        for chunk in keys.chunks(BATCH) {
            let out = {
                let _p = ctx.permit().await;
                client
                    .batch_get_resource_config()
                    .set_resource_keys(Some(chunk.to_vec()))
                    .send()
                    .await
            }
            .map_err(|e| {
                format!(
                    "config:BatchGetResourceConfig {t} in {} failed: {}",
                    ctx.region,
                    describe(&e)
                )
            })?;
            // Keys AWS could not answer for now would otherwise look deleted.
            if !out.unprocessed_resource_keys().is_empty() {
                return Err(format!(
                    "config:BatchGetResourceConfig {t} in {} left {} keys unprocessed (throttled); retried next sweep",
                    ctx.region,
                    out.unprocessed_resource_keys().len()
                ));
            }
            items.extend(out.base_configuration_items().iter().cloned());
        }
        Ok(items)
    }

    async fn aggregated(
        &self,
        client: &Client,
        ctx: &Context,
        aggregator: &str,
        t: &str,
    ) -> Result<Vec<BaseConfigurationItem>, String> {
        let mut pages = client
            .list_aggregate_discovered_resources()
            .configuration_aggregator_name(aggregator)
            .resource_type(ResourceType::from(t))
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        loop {
            let page = {
                let _p = ctx.permit().await;
                pages.next().await
            };
            let Some(page) = page else { break };
            let page = page.map_err(|e| {
                format!(
                    "config:ListAggregateDiscoveredResources {t} ({aggregator}) failed: {}",
                    describe(&e)
                )
            })?;
            ids.extend(page.resource_identifiers().iter().cloned());
        }
        let mut items = Vec::new();
        for chunk in ids.chunks(BATCH) {
            let keys: Vec<AggregateResourceIdentifier> = chunk.to_vec();
            let out = {
                let _p = ctx.permit().await;
                client
                    .batch_get_aggregate_resource_config()
                    .configuration_aggregator_name(aggregator)
                    .set_resource_identifiers(Some(keys))
                    .send()
                    .await
            }
            .map_err(|e| {
                format!(
                    "config:BatchGetAggregateResourceConfig {t} ({aggregator}) failed: {}",
                    describe(&e)
                )
            })?;
            if !out.unprocessed_resource_identifiers().is_empty() {
                return Err(format!(
                    "config:BatchGetAggregateResourceConfig {t} ({aggregator}) left {} identifiers unprocessed; retried next sweep",
                    out.unprocessed_resource_identifiers().len()
                ));
            }
            items.extend(out.base_configuration_items().iter().cloned());
        }
        Ok(items)
    }
}

impl AwsLister for ConfigRecorded {
    fn service(&self) -> &'static str {
        "config"
    }

    fn resource_types(&self) -> Vec<String> {
        self.types.clone()
    }

    fn reach(&self) -> Reach {
        if self.aggregator.is_some() {
            Reach::Aggregated
        } else {
            Reach::Regional
        }
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_config, ctx);
        let mut listed = Listed::default();
        // One type failing leaves only that type incomplete.
        for t in &self.types {
            let got = match &self.aggregator {
                Some(a) => self.aggregated(&client, ctx, a, t).await,
                None => self.per_account(&client, ctx, t).await,
            };
            match got {
                Ok(items) => {
                    let region = self.aggregator.is_none().then_some(ctx.region.as_str());
                    read(&items, &mut listed, t, region);
                }
                Err(message) => listed.problems.push(Problem {
                    resource_type: t.clone(),
                    // Through an aggregator the failure covers every account and region.
                    region: self.aggregator.is_none().then(|| ctx.region.clone()),
                    item: None,
                    message,
                }),
            }
        }
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_config::types::ConfigurationItemStatus;
    use guardrail_model::Observation;

    /// Observations the Config API would give for `items`.
    fn observations(items: &[BaseConfigurationItem]) -> (Vec<Observation>, Vec<String>) {
        let mut listed = Listed::default();
        read(items, &mut listed, "", None);
        (
            listed.items,
            listed.problems.into_iter().map(|p| p.message).collect(),
        )
    }

    #[test]
    fn api_items_read_like_snapshot_items() {
        let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let item = BaseConfigurationItem::builder()
            .account_id("111111111111")
            .aws_region("global")
            .resource_type(ResourceType::from("AWS::IAM::Role"))
            .resource_id("AROAEXAMPLE")
            .resource_name("app")
            .arn("arn:aws:iam::111111111111:role/app")
            .configuration_item_status(ConfigurationItemStatus::Ok)
            .configuration_state_id("1700000000000")
            .configuration(
                json!({"roleName": "app", "assumeRolePolicyDocument": policy}).to_string(),
            )
            .supplementary_configuration("Extra", "{\"a\":1}")
            .build();
        let (obs, errors) = observations(&[item]);
        assert!(errors.is_empty(), "{errors:?}");
        let o = &obs[0];
        assert_eq!(o.key.resource_type, "AWS::IAM::Role");
        assert_eq!(o.key.region, "global");
        assert_eq!(o.name.as_deref(), Some("app"));
        // The URL-encoded trust policy is decoded as in delivery files.
        assert_eq!(
            o.config["configuration"]["assumeRolePolicyDocument"]["Statement"][0]["Principal"]
                ["Service"],
            "ec2.amazonaws.com"
        );
        assert_eq!(o.config["supplementaryConfiguration"]["Extra"]["a"], 1);
    }

    #[test]
    fn deleted_items_are_left_out() {
        let item = BaseConfigurationItem::builder()
            .account_id("111111111111")
            .aws_region("us-east-1")
            .resource_type(ResourceType::from("AWS::S3::Bucket"))
            .resource_id("gone")
            .configuration_item_status(ConfigurationItemStatus::ResourceDeleted)
            .build();
        let (obs, errors) = observations(&[item]);
        assert!(obs.is_empty() && errors.is_empty());
    }
}
