//! Subnets of one region, in AWS Config's item shape.

use serde_json::json;

use super::ec2_security_group::ec2_tags;
use super::{all_pages, relationship, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct Subnets;

impl AwsLister for Subnets {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::EC2::Subnet".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let pages = client
            .describe_subnets()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut listed = Listed::default();
        for page in all_pages(ctx, "ec2:DescribeSubnets", pages).await? {
            for s in page.subnets() {
                let id = s.subnet_id().unwrap_or_default();
                let (tag_list, tags) = ec2_tags(s.tags());
                listed.items.push(
                    ItemDoc {
                        resource_type: "AWS::EC2::Subnet",
                        account: &ctx.account,
                        region: &ctx.region,
                        id,
                        name: tags.get("Name").map(String::as_str),
                        arn: s.subnet_arn().map_or_else(
                            || format!("arn:aws:ec2:{}:{}:subnet/{id}", ctx.region, ctx.account),
                            str::to_owned,
                        ),
                        configuration: json!({
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
                            "tags": tag_list,
                        }),
                        supplementary: json!({}),
                        relationships: relationship("AWS::EC2::VPC", s.vpc_id(), "Is contained in Vpc")
                            .into_iter()
                            .collect(),
                        tags: tags.clone(),
                    }
                    .observe()?,
                );
            }
        }
        Ok(listed)
    }
}
