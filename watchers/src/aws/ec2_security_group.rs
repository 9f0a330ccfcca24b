//! EC2 security groups of one region, in AWS Config's item shape.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{IpPermission, SecurityGroup, Tag};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, detail_or_absent, Context, ItemOutcome};

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

impl Ec2Type for SecurityGroups {
    type Element = SecurityGroup;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::SecurityGroup";
    const OPERATION: &'static str = "ec2:DescribeSecurityGroups";
    const ARN_KIND: &'static str = "security-group";

    async fn describe(
        client: &aws_sdk_ec2::Client,
        ctx: &Context,
    ) -> Result<Vec<SecurityGroup>, String> {
        let pages = client.describe_security_groups().max_results(1000).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages.into_iter().flat_map(|p| p.security_groups.unwrap_or_default()).collect())
    }

    async fn describe_one(
        client: &aws_sdk_ec2::Client,
        ctx: &Context,
        id: &str,
    ) -> Option<Result<Option<SecurityGroup>, String>> {
        let answer = detail_or_absent(
            ctx,
            Self::OPERATION,
            &[],
            &["InvalidGroup.NotFound", "InvalidGroupId.NotFound"],
            client.describe_security_groups().group_ids(id).send(),
        )
        .await;
        Some(match answer {
            Ok(Some(out)) => Ok(out.security_groups.unwrap_or_default().into_iter().next()),
            Ok(None) => Ok(None),
            Err(ItemOutcome::Failed(e)) => Err(e),
            Err(_) => Ok(None),
        })
    }

    fn id(g: &SecurityGroup) -> Option<&str> {
        g.group_id()
    }

    fn tags(g: &SecurityGroup) -> &[Tag] {
        g.tags()
    }

    /// A security group's name is its group name, as AWS Config records it.
    fn name(g: &SecurityGroup, _tags: &BTreeMap<String, String>) -> Option<String> {
        g.group_name().map(str::to_owned)
    }

    fn configuration(g: &SecurityGroup, id: &str, tags: Value) -> Value {
        json!({
            "groupId": id, "groupName": g.group_name(), "description": g.description(),
            "ownerId": g.owner_id(), "vpcId": g.vpc_id(),
            "ipPermissions": permissions(g.ip_permissions()),
            "ipPermissionsEgress": permissions(g.ip_permissions_egress()),
            "tags": tags,
        })
    }
}
