//! SNS topics of one region with their attributes (the topic policy among them) and
//! tags, in AWS Config's item shape: `configuration` holds the topic's attributes under
//! their own names (`TopicArn`, `Policy`, `KmsMasterKeyId`, `DisplayName`, `Owner`,
//! ...); the id is the topic ARN, as AWS Config records it, the name the topic name.
//!
//! Calls: `sns:ListTopics` (paged), then per topic `sns:GetTopicAttributes` and
//! `sns:ListTagsForResource`. A topic deleted in between is gone; any other failure is
//! a problem of that topic only.

use serde_json::{Map, Value};

use super::{
    all_pages, detail, each_item, AwsLister, Context, ItemDoc, ItemOutcome, Listed, Reach,
    ReadOne,
};

pub struct Topics;

const RESOURCE_TYPE: &str = "AWS::SNS::Topic";
const GONE: &[&str] = &["NotFound", "NotFoundException", "ResourceNotFound"];

/// Attributes that move without a configuration change.
const COUNTERS: &[&str] = &[
    "SubscriptionsConfirmed",
    "SubscriptionsPending",
    "SubscriptionsDeleted",
];

async fn topic(client: &aws_sdk_sns::Client, ctx: &Context, arn: &str) -> ItemOutcome {
    let attrs = match detail(
        ctx,
        "sns:GetTopicAttributes",
        GONE,
        client.get_topic_attributes().topic_arn(arn).send(),
    )
    .await
    {
        Ok(a) => a,
        Err(o) => return o,
    };
    let tags = match detail(
        ctx,
        "sns:ListTagsForResource",
        GONE,
        client.list_tags_for_resource().resource_arn(arn).send(),
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
    let mut configuration = Map::new();
    for (k, v) in attrs.attributes().into_iter().flatten() {
        if !COUNTERS.contains(&k.as_str()) {
            configuration.insert(k.clone(), Value::String(v.clone()));
        }
    }
    configuration
        .entry("TopicArn")
        .or_insert_with(|| Value::String(arn.to_owned()));
    let name = arn.rsplit(':').next().unwrap_or(arn);
    ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id: arn,
        name: Some(name),
        arn: arn.to_owned(),
        configuration: Value::Object(configuration),
        supplementary: Value::Object(Map::new()),
        relationships: Vec::new(),
        tags,
    }
    .outcome()
}

impl AwsLister for Topics {
    fn service(&self) -> &'static str {
        "sns"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_sns, ctx);
        let pages = client.list_topics().into_paginator().send();
        let arns: Vec<String> = all_pages(ctx, "sns:ListTopics", pages)
            .await?
            .into_iter()
            .flat_map(|p| p.topics.unwrap_or_default())
            .filter_map(|t| t.topic_arn)
            .collect();
        let client = &client;
        Ok(each_item(ctx, RESOURCE_TYPE, arns, |arn| async move {
            topic(client, ctx, &arn).await
        })
        .await)
    }

    /// By topic ARN (the item id).
    async fn read_one(&self, ctx: &Context, _resource_type: &str, id: &str) -> Option<ReadOne> {
        let client = super::lister::client!(aws_sdk_sns, ctx);
        Some(topic(&client, ctx, id).await.into())
    }
}
