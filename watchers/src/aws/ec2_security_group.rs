//! EC2 security groups of one region, in AWS Config's item shape.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::IpPermission;
use chrono::Utc;
use guardrail_model::{ItemKey, Observation};
use serde_json::{json, Value};

use super::{describe, AwsLister, Context};
use crate::normalize::normalize;

pub struct SecurityGroups;

fn permissions(list: &[IpPermission]) -> Value {
    list.iter()
        .map(|p| {
            let v4: Vec<&str> = p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).collect();
            json!({
                "ipProtocol": p.ip_protocol(),
                "fromPort": p.from_port(),
                "toPort": p.to_port(),
                "ipRanges": v4,
                "ipv4Ranges": v4.iter().map(|c| json!({"cidrIp": c})).collect::<Vec<_>>(),
                "ipv6Ranges": p.ipv6_ranges().iter().map(|r| json!({"cidrIpv6": r.cidr_ipv6()})).collect::<Vec<_>>(),
                "prefixListIds": p.prefix_list_ids().iter().map(|r| json!({"prefixListId": r.prefix_list_id()})).collect::<Vec<_>>(),
                "userIdGroupPairs": p.user_id_group_pairs().iter().map(|g| json!({"groupId": g.group_id(), "userId": g.user_id()})).collect::<Vec<_>>(),
            })
        })
        .collect()
}

impl AwsLister for SecurityGroups {
    fn resource_types(&self) -> Vec<&'static str> {
        vec!["AWS::EC2::SecurityGroup"]
    }

    fn global(&self) -> bool {
        false
    }

    async fn list(&self, ctx: &Context) -> Result<Vec<Observation>, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let mut pages = client.describe_security_groups().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "ec2:DescribeSecurityGroups in {} failed: {}",
                    ctx.region,
                    describe(&e)
                )
            })?;
            for g in page.security_groups() {
                let id = g.group_id().unwrap_or_default().to_owned();
                let tags: BTreeMap<String, String> = g
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect();
                let mut doc = json!({
                    "configuration": {
                        "groupId": id, "groupName": g.group_name(), "description": g.description(),
                        "ownerId": g.owner_id(), "vpcId": g.vpc_id(),
                        "ipPermissions": permissions(g.ip_permissions()),
                        "ipPermissionsEgress": permissions(g.ip_permissions_egress()),
                        "tags": g.tags().iter().map(|t| json!({"key": t.key(), "value": t.value()})).collect::<Vec<_>>(),
                    },
                    "supplementaryConfiguration": {},
                });
                let ephemeral =
                    normalize("AWS::EC2::SecurityGroup", &mut doc).map_err(|e| e.to_string())?;
                out.push(Observation {
                    key: ItemKey {
                        account: ctx.account.clone(),
                        region: ctx.region.clone(),
                        resource_type: "AWS::EC2::SecurityGroup".into(),
                        resource_id: id.clone(),
                    },
                    arn: Some(format!(
                        "arn:aws:ec2:{}:{}:security-group/{id}",
                        ctx.region, ctx.account
                    )),
                    name: g.group_name().map(str::to_owned),
                    tags,
                    config: doc,
                    ephemeral: Value::Object(ephemeral),
                    observed_at: Utc::now(),
                });
            }
        }
        Ok(out)
    }
}
