//! VPCs of one region, in AWS Config's item shape.

use aws_sdk_ec2::types::{Tag, Vpc};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, Context};

pub struct Vpcs;

impl Ec2Type for Vpcs {
    type Element = Vpc;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::VPC";
    const OPERATION: &'static str = "ec2:DescribeVpcs";
    const ARN_KIND: &'static str = "vpc";

    async fn describe(client: &aws_sdk_ec2::Client, ctx: &Context) -> Result<Vec<Vpc>, String> {
        let pages = client.describe_vpcs().max_results(1000).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages.into_iter().flat_map(|p| p.vpcs.unwrap_or_default()).collect())
    }

    fn id(v: &Vpc) -> Option<&str> {
        v.vpc_id()
    }

    fn tags(v: &Vpc) -> &[Tag] {
        v.tags()
    }

    fn configuration(v: &Vpc, id: &str, tags: Value) -> Value {
        json!({
            "vpcId": id, "cidrBlock": v.cidr_block(), "dhcpOptionsId": v.dhcp_options_id(),
            "state": v.state().map(|s| s.as_str()), "ownerId": v.owner_id(),
            "instanceTenancy": v.instance_tenancy().map(|t| t.as_str()),
            "isDefault": v.is_default(),
            "cidrBlockAssociationSet": v.cidr_block_association_set().iter().map(|a| json!({
                "associationId": a.association_id(), "cidrBlock": a.cidr_block(),
                "cidrBlockState": a.cidr_block_state().and_then(|s| s.state()).map(|s| s.as_str()),
            })).collect::<Vec<_>>(),
            "ipv6CidrBlockAssociationSet": v.ipv6_cidr_block_association_set().iter().map(|a| json!({
                "associationId": a.association_id(), "ipv6CidrBlock": a.ipv6_cidr_block(),
                "ipv6CidrBlockState": a.ipv6_cidr_block_state().and_then(|s| s.state()).map(|s| s.as_str()),
            })).collect::<Vec<_>>(),
            "tags": tags,
        })
    }
}
