//! EC2 security groups of one region, in AWS Config's item shape.

use aws_sdk_ec2::types::IpPermission;
use serde_json::{json, Value};

use super::{all_pages, tag_pairs, AwsLister, Context, ItemDoc, Listed, Reach};

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
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::EC2::SecurityGroup".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let pages = client
            .describe_security_groups()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut listed = Listed::default();
        for page in all_pages(ctx, "ec2:DescribeSecurityGroups", pages).await? {
            for g in page.security_groups() {
                let id = g.group_id().unwrap_or_default();
                let (tag_list, tags) = ec2_tags(g.tags());
                listed.items.push(
                    ItemDoc {
                        resource_type: "AWS::EC2::SecurityGroup",
                        account: &ctx.account,
                        region: &ctx.region,
                        id,
                        name: g.group_name(),
                        arn: format!(
                            "arn:aws:ec2:{}:{}:security-group/{id}",
                            ctx.region, ctx.account
                        ),
                        configuration: json!({
                            "groupId": id, "groupName": g.group_name(), "description": g.description(),
                            "ownerId": g.owner_id(), "vpcId": g.vpc_id(),
                            "ipPermissions": permissions(g.ip_permissions()),
                            "ipPermissionsEgress": permissions(g.ip_permissions_egress()),
                            "tags": tag_list,
                        }),
                        supplementary: json!({}),
                        relationships: Vec::new(),
                        tags,
                    }
                    .observe()?,
                );
            }
        }
        Ok(listed)
    }
}

/// EC2 tags in AWS Config's `[{key, value}]` form, and as a map.
pub fn ec2_tags(
    list: &[aws_sdk_ec2::types::Tag],
) -> (Value, std::collections::BTreeMap<String, String>) {
    tag_pairs(list.iter().map(|t| (t.key(), t.value())))
}
