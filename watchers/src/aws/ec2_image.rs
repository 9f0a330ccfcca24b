//! AMIs this account owns, with who may launch them. AWS Config has no image resource
//! type, so these items are guardrail's own, shaped the way AWS Config shapes EC2
//! items: `configuration` is the DescribeImages element in camelCase (`public` among
//! it), `supplementaryConfiguration.LaunchPermissions` the sharing (`{"group": "all"}`,
//! `{"userId": …}`, `{"organizationArn": …}`, `{"organizationalUnitArn": …}`).
//!
//! Calls: `ec2:DescribeImages` (owner self, paged), then per image
//! `ec2:DescribeImageAttribute` (launchPermission). An image deregistered in between is
//! gone; any other failure is a problem of that image only.

use std::collections::HashMap;

use aws_sdk_ec2::types::{Image, ImageAttributeName};
use serde_json::{json, Value};

use super::{
    all_pages, detail, each_element, tag_pairs, AwsLister, Context, ItemDoc, ItemOutcome, Listed,
    Reach,
};

pub struct Images;

const RESOURCE_TYPE: &str = "AWS::EC2::Image";
const GONE: &[&str] = &["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"];

fn configuration(i: &Image, id: &str, tags: Value) -> Value {
    json!({
        "imageId": id, "name": i.name(), "description": i.description(),
        "public": i.public(), "state": i.state().map(|x| x.as_str()),
        "ownerId": i.owner_id(), "creationDate": i.creation_date(),
        "architecture": i.architecture().map(|x| x.as_str()),
        "imageType": i.image_type().map(|x| x.as_str()),
        "platformDetails": i.platform_details(),
        "rootDeviceType": i.root_device_type().map(|x| x.as_str()),
        "rootDeviceName": i.root_device_name(),
        "virtualizationType": i.virtualization_type().map(|x| x.as_str()),
        "deprecationTime": i.deprecation_time(),
        "blockDeviceMappings": i.block_device_mappings().iter().map(|b| json!({
            "deviceName": b.device_name(),
            "ebs": b.ebs().map(|e| json!({
                "snapshotId": e.snapshot_id(), "encrypted": e.encrypted(),
                "volumeSize": e.volume_size(), "volumeType": e.volume_type().map(|x| x.as_str()),
                "kmsKeyId": e.kms_key_id(),
            })),
        })).collect::<Vec<_>>(),
        "tags": tags,
    })
}

async fn image(client: &aws_sdk_ec2::Client, ctx: &Context, i: &Image, id: &str) -> ItemOutcome {
    let attr = match detail(
        ctx,
        "ec2:DescribeImageAttribute",
        GONE,
        client
            .describe_image_attribute()
            .image_id(id)
            .attribute(ImageAttributeName::LaunchPermission)
            .send(),
    )
    .await
    {
        Ok(a) => a,
        Err(o) => return o,
    };
    let permissions: Vec<Value> = attr
        .launch_permissions()
        .iter()
        .map(|p| {
            if let Some(g) = p.group() {
                json!({"group": g.as_str()})
            } else if let Some(o) = p.organization_arn() {
                json!({"organizationArn": o})
            } else if let Some(ou) = p.organizational_unit_arn() {
                json!({"organizationalUnitArn": ou})
            } else {
                json!({"userId": p.user_id()})
            }
        })
        .collect();
    let (tag_list, tags) = tag_pairs(i.tags().iter().map(|t| (t.key(), t.value())));
    let name = tags.get("Name").map(String::as_str).or(i.name());
    ItemDoc {
        resource_type: RESOURCE_TYPE,
        account: &ctx.account,
        region: &ctx.region,
        id,
        name,
        arn: format!("arn:aws:ec2:{}::image/{id}", ctx.region),
        configuration: configuration(i, id, tag_list),
        supplementary: json!({ "LaunchPermissions": permissions }),
        relationships: Vec::new(),
        tags: tags.clone(),
    }
    .outcome()
}

impl AwsLister for Images {
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
            .describe_images()
            .owners("self")
            .max_results(1000)
            .into_paginator()
            .send();
        let by_id: HashMap<String, Image> = all_pages(ctx, "ec2:DescribeImages", pages)
            .await?
            .into_iter()
            .flat_map(|p| p.images.unwrap_or_default())
            .filter_map(|i| Some((i.image_id()?.to_owned(), i)))
            .collect();
        let client = &client;
        Ok(each_element(ctx, RESOURCE_TYPE, &by_id, |id, i| image(client, ctx, i, id)).await)
    }
}
