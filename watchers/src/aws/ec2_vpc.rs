//! VPCs of one region, in AWS Config's item shape.

use serde_json::json;

use super::ec2_security_group::ec2_tags;
use super::{all_pages, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct Vpcs;

impl AwsLister for Vpcs {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::EC2::VPC".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let pages = client
            .describe_vpcs()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut listed = Listed::default();
        for page in all_pages(ctx, "ec2:DescribeVpcs", pages).await? {
            for v in page.vpcs() {
                let id = v.vpc_id().unwrap_or_default();
                let (tag_list, tags) = ec2_tags(v.tags());
                listed.items.push(
                    ItemDoc {
                        resource_type: "AWS::EC2::VPC",
                        account: &ctx.account,
                        region: &ctx.region,
                        id,
                        name: tags.get("Name").map(String::as_str),
                        arn: format!("arn:aws:ec2:{}:{}:vpc/{id}", ctx.region, ctx.account),
                        configuration: json!({
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
                            "tags": tag_list,
                        }),
                        supplementary: json!({}),
                        relationships: Vec::new(),
                        tags: tags.clone(),
                    }
                    .observe()?,
                );
            }
        }
        Ok(listed)
    }
}
