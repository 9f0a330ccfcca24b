//! EBS volumes of one region (encryption, attachments), in AWS Config's item shape.

use aws_sdk_ec2::types::{Tag, Volume};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, relationship, time, Context};

pub struct Volumes;

impl Ec2Type for Volumes {
    type Element = Volume;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::Volume";
    const OPERATION: &'static str = "ec2:DescribeVolumes";
    const ARN_KIND: &'static str = "volume";

    async fn describe(client: &aws_sdk_ec2::Client, ctx: &Context) -> Result<Vec<Volume>, String> {
        let pages = client.describe_volumes().max_results(500).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages.into_iter().flat_map(|p| p.volumes.unwrap_or_default()).collect())
    }

    fn id(v: &Volume) -> Option<&str> {
        v.volume_id()
    }

    fn tags(v: &Volume) -> &[Tag] {
        v.tags()
    }

    fn configuration(v: &Volume, id: &str, tags: Value) -> Value {
        json!({
            "volumeId": id, "size": v.size(), "snapshotId": v.snapshot_id(),
            "availabilityZone": v.availability_zone(), "state": v.state().map(|s| s.as_str()),
            "createTime": time(v.create_time()),
            "attachments": v.attachments().iter().map(|a| json!({
                "attachTime": time(a.attach_time()), "device": a.device(),
                "instanceId": a.instance_id(), "state": a.state().map(|s| s.as_str()),
                "volumeId": a.volume_id(), "deleteOnTermination": a.delete_on_termination(),
            })).collect::<Vec<_>>(),
            "volumeType": v.volume_type().map(|t| t.as_str()), "iops": v.iops(),
            "throughput": v.throughput(), "encrypted": v.encrypted(), "kmsKeyId": v.kms_key_id(),
            "multiAttachEnabled": v.multi_attach_enabled(),
            "tags": tags,
        })
    }

    fn relationships(v: &Volume) -> Vec<Value> {
        v.attachments()
            .iter()
            .filter_map(|a| relationship("AWS::EC2::Instance", a.instance_id(), "Is attached to Instance"))
            .collect()
    }
}
