//! Subnets of one region, in AWS Config's item shape.

use aws_sdk_ec2::types::{Subnet, Tag};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, relationship, Context};

pub struct Subnets;

impl Ec2Type for Subnets {
    type Element = Subnet;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::Subnet";
    const OPERATION: &'static str = "ec2:DescribeSubnets";
    const ARN_KIND: &'static str = "subnet";

    async fn describe(client: &aws_sdk_ec2::Client, ctx: &Context) -> Result<Vec<Subnet>, String> {
        let pages = client.describe_subnets().max_results(1000).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages.into_iter().flat_map(|p| p.subnets.unwrap_or_default()).collect())
    }

    fn id(s: &Subnet) -> Option<&str> {
        s.subnet_id()
    }

    fn tags(s: &Subnet) -> &[Tag] {
        s.tags()
    }

    fn arn(s: &Subnet, ctx: &Context, id: &str) -> String {
        s.subnet_arn().map_or_else(
            || format!("arn:aws:ec2:{}:{}:subnet/{id}", ctx.region, ctx.account),
            str::to_owned,
        )
    }

    fn configuration(s: &Subnet, id: &str, tags: Value) -> Value {
        json!({
            "subnetId": id, "vpcId": s.vpc_id(), "cidrBlock": s.cidr_block(),
            "availabilityZone": s.availability_zone(),
            "availableIpAddressCount": s.available_ip_address_count(),
            "defaultForAz": s.default_for_az(),
            "mapPublicIpOnLaunch": s.map_public_ip_on_launch(),
            "assignIpv6AddressOnCreation": s.assign_ipv6_address_on_creation(),
            "state": s.state().map(|x| x.as_str()), "ownerId": s.owner_id(),
            "ipv6CidrBlockAssociationSet": s.ipv6_cidr_block_association_set().iter().map(|a| json!({
                "associationId": a.association_id(), "ipv6CidrBlock": a.ipv6_cidr_block(),
            })).collect::<Vec<_>>(),
            "tags": tags,
        })
    }

    fn relationships(s: &Subnet) -> Vec<Value> {
        relationship("AWS::EC2::VPC", s.vpc_id(), "Is contained in Vpc")
            .into_iter()
            .collect()
    }
}
