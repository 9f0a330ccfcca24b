//! EBS snapshots this account owns, with who may create volumes from them. AWS Config
//! has no snapshot resource type, so these items are guardrail's own, shaped the way
//! AWS Config shapes EC2 items: `configuration` is the DescribeSnapshots element in
//! camelCase, `supplementaryConfiguration.CreateVolumePermissions` the sharing
//! (`[{"group": "all"}]` for public, `[{"userId": "…"}]` per account).
//!
//! Calls: `ec2:DescribeSnapshots` (owner self, paged), then per snapshot
//! `ec2:DescribeSnapshotAttribute` (createVolumePermission). A snapshot deleted in
//! between is gone; any other failure is a problem of that snapshot only.

use std::collections::HashMap;

use aws_sdk_ec2::types::{Snapshot, SnapshotAttributeName};
use serde_json::{json, Value};

use super::{
    all_pages, detail, each_element, tag_pairs, time, AwsLister, Context, ItemDoc, ItemOutcome,
    Listed, Reach,
};

pub struct Snapshots;

const RESOURCE_TYPE: &str = "AWS::EC2::Snapshot";
const GONE: &[&str] = &["InvalidSnapshot.NotFound"];

fn configuration(s: &Snapshot, id: &str, tags: Value) -> Value {
    json!({
        "snapshotId": id, "volumeId": s.volume_id(), "volumeSize": s.volume_size(),
        "state": s.state().map(|x| x.as_str()), "startTime": time(s.start_time()),
        "encrypted": s.encrypted(), "kmsKeyId": s.kms_key_id(), "ownerId": s.owner_id(),
        "description": s.description(), "storageTier": s.storage_tier().map(|x| x.as_str()),
        "tags": tags,
    })
}

async fn snapshot(client: &aws_sdk_ec2::Client, ctx: &Context, s: &Snapshot, id: &str) -> ItemOutcome {
    let attr = match detail(
        ctx,
        "ec2:DescribeSnapshotAttribute",
        GONE,
        client
            .describe_snapshot_attribute()
            .snapshot_id(id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .send(),
    )
    .await
    {
        Ok(a) => a,
        Err(o) => return o,
    };
    let permissions: Vec<Value> = attr
        .create_volume_permissions()
        .iter()
        .map(|p| match (p.group(), p.user_id()) {
            (Some(g), _) => json!({"group": g.as_str()}),
            (None, u) => json!({"userId": u}),
        })
        .collect();
    let (tag_list, tags) = tag_pairs(s.tags().iter().map(|t| (t.key(), t.value())));
    ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id,
        name: tags.get("Name").map(String::as_str),
        arn: format!("arn:aws:ec2:{}::snapshot/{id}", ctx.region),
        configuration: configuration(s, id, tag_list),
        supplementary: json!({ "CreateVolumePermissions": permissions }),
        relationships: Vec::new(),
        tags: tags.clone(),
    }
    .outcome()
}

impl AwsLister for Snapshots {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec![RESOURCE_TYPE.into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_ec2, ctx);
        let pages = client
            .describe_snapshots()
            .owner_ids("self")
            .max_results(1000)
            .into_paginator()
            .send();
        let by_id: HashMap<String, Snapshot> = all_pages(ctx, "ec2:DescribeSnapshots", pages)
            .await?
            .into_iter()
            .flat_map(|p| p.snapshots.unwrap_or_default())
            .filter_map(|s| Some((s.snapshot_id()?.to_owned(), s)))
            .collect();
        let client = &client;
        Ok(each_element(ctx, RESOURCE_TYPE, &by_id, |id, s| snapshot(client, ctx, s, id)).await)
    }
}
