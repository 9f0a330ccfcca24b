//! Network ACLs of one region, in AWS Config's item shape.

use aws_sdk_ec2::types::{NetworkAcl, Tag};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, relationship, Context};

pub struct NetworkAcls;

impl Ec2Type for NetworkAcls {
    type Element = NetworkAcl;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::NetworkAcl";
    const OPERATION: &'static str = "ec2:DescribeNetworkAcls";
    const ARN_KIND: &'static str = "network-acl";

    async fn describe(
        client: &aws_sdk_ec2::Client,
        ctx: &Context,
    ) -> Result<Vec<NetworkAcl>, String> {
        let pages = client.describe_network_acls().max_results(1000).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages.into_iter().flat_map(|p| p.network_acls.unwrap_or_default()).collect())
    }

    fn id(a: &NetworkAcl) -> Option<&str> {
        a.network_acl_id()
    }

    fn tags(a: &NetworkAcl) -> &[Tag] {
        a.tags()
    }

    fn configuration(a: &NetworkAcl, id: &str, tags: Value) -> Value {
        json!({
            "networkAclId": id, "vpcId": a.vpc_id(), "isDefault": a.is_default(),
            "ownerId": a.owner_id(),
            "entries": a.entries().iter().map(|e| json!({
                "ruleNumber": e.rule_number(), "protocol": e.protocol(),
                "ruleAction": e.rule_action().map(|r| r.as_str()), "egress": e.egress(),
                "cidrBlock": e.cidr_block(), "ipv6CidrBlock": e.ipv6_cidr_block(),
                "portRange": e.port_range().map(|p| json!({"from": p.from(), "to": p.to()})),
                "icmpTypeCode": e.icmp_type_code().map(|i| json!({"type": i.r#type(), "code": i.code()})),
            })).collect::<Vec<_>>(),
            "associations": a.associations().iter().map(|s| json!({
                "networkAclAssociationId": s.network_acl_association_id(),
                "networkAclId": s.network_acl_id(), "subnetId": s.subnet_id(),
            })).collect::<Vec<_>>(),
            "tags": tags,
        })
    }

    fn relationships(a: &NetworkAcl) -> Vec<Value> {
        relationship("AWS::EC2::VPC", a.vpc_id(), "Is contained in Vpc")
            .into_iter()
            .collect()
    }
}
