//! SQS queues of one region with their attributes (the queue policy among them) and
//! tags, in AWS Config's item shape: `configuration` holds the queue's attributes
//! under their own names (`Policy`, `QueueArn`, `KmsMasterKeyId`,
//! `SqsManagedSseEnabled`, ...) plus `QueueUrl`; the id is the queue URL, the name the
//! queue name. AWS Config records the same attributes, so one rule serves both.
//!
//! The URL an answer gives depends on the endpoint asked (legacy `queue.amazonaws.com`,
//! a VPC endpoint, an emulator's port), so the id is the canonical
//! `https://sqs.<region>.amazonaws.com/<account>/<name>` AWS Config uses: the same queue
//! keeps its identity whichever endpoint listed it (otherwise a sweep through another
//! endpoint would record every queue deleted and created again).
//!
//! Calls: `sqs:ListQueues` (paged), then per queue `sqs:GetQueueAttributes` (All) and
//! `sqs:ListQueueTags`. A queue deleted between the listing and its attributes is
//! gone, not a problem; any other failure is a problem of that queue only.

use std::collections::BTreeMap;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Map, Value};

use super::{
    all_pages, describe, each_item, AwsLister, Context, ItemDoc, ItemOutcome, Listed, Reach,
    ReadOne,
};

pub struct Queues;

const RESOURCE_TYPE: &str = "AWS::SQS::Queue";

/// Attributes that move without a configuration change (message counts); kept out of
/// the versioned document by the `normalize` entry, and left out here entirely when
/// they are only counters.
const COUNTERS: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
];

fn gone(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
    )
}

/// `https://sqs.us-east-1.amazonaws.com/111111111111/orders` → `orders`.
fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// The queue's URL as AWS Config records it, whatever endpoint answered.
fn canonical_url(region: &str, account: &str, name: &str) -> String {
    format!("https://sqs.{region}.amazonaws.com/{account}/{name}")
}

async fn queue(client: &aws_sdk_sqs::Client, ctx: &Context, url: &str) -> ItemOutcome {
    let attrs = {
        let _p = ctx.permit().await;
        client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
    };
    let attrs = match attrs {
        Ok(a) => a,
        Err(e) if gone(e.code()) => return ItemOutcome::Gone,
        Err(e) => {
            return ItemOutcome::Failed(format!(
                "sqs:GetQueueAttributes failed: {}",
                describe(&e)
            ))
        }
    };
    let tags = {
        let _p = ctx.permit().await;
        client.list_queue_tags().queue_url(url).send().await
    };
    let tags: BTreeMap<String, String> = match tags {
        Ok(t) => t
            .tags()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        Err(e) if gone(e.code()) => return ItemOutcome::Gone,
        Err(e) => return ItemOutcome::Failed(format!("sqs:ListQueueTags failed: {}", describe(&e))),
    };
    let name = queue_name(url);
    let id = canonical_url(&ctx.region, &ctx.account, name);
    let mut configuration = Map::new();
    configuration.insert("QueueUrl".into(), Value::String(id.clone()));
    let mut arn = String::new();
    for (k, v) in attrs.attributes().into_iter().flatten() {
        if COUNTERS.contains(&k.as_str()) {
            continue;
        }
        if *k == QueueAttributeName::QueueArn {
            arn = v.clone();
        }
        configuration.insert(k.as_str().to_owned(), Value::String(v.clone()));
    }
    let doc = ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id: &id,
        name: Some(name),
        arn: if arn.is_empty() {
            format!("arn:aws:sqs:{}:{}:{name}", ctx.region, ctx.account)
        } else {
            arn
        },
        configuration: Value::Object(configuration),
        supplementary: Value::Object(Map::new()),
        relationships: Vec::new(),
        tags,
    };
    match doc.observe() {
        Ok(o) => ItemOutcome::Item(Box::new(o)),
        Err(e) => ItemOutcome::Failed(e),
    }
}

impl AwsLister for Queues {
    fn service(&self) -> &'static str {
        "sqs"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_sqs, ctx);
        let pages = client
            .list_queues()
            .max_results(1000)
            .into_paginator()
            .send();
        let urls: Vec<String> = all_pages(ctx, "sqs:ListQueues", pages)
            .await?
            .into_iter()
            .flat_map(|p| p.queue_urls.unwrap_or_default())
            .collect();
        let client = &client;
        Ok(each_item(ctx, RESOURCE_TYPE, urls, |url| async move {
            queue(client, ctx, &url).await
        })
        .await)
    }

    /// By queue URL (the item id, or the URL an event names).
    async fn read_one(&self, ctx: &Context, _resource_type: &str, id: &str) -> Option<ReadOne> {
        let client = super::lister::client!(aws_sdk_sqs, ctx);
        Some(queue(&client, ctx, id).await.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_named_by_the_last_part_of_its_url() {
        assert_eq!(
            queue_name("https://sqs.us-east-1.amazonaws.com/111111111111/orders.fifo"),
            "orders.fifo"
        );
        // Whatever endpoint answered, the queue keeps AWS Config's identity.
        assert_eq!(
            canonical_url(
                "eu-west-1",
                "111111111111",
                queue_name("http://127.0.0.1:5000/111111111111/orders")
            ),
            "https://sqs.eu-west-1.amazonaws.com/111111111111/orders"
        );
        assert!(gone(Some("AWS.SimpleQueueService.NonExistentQueue")));
        assert!(!gone(Some("AccessDenied")));
    }
}
