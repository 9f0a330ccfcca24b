//! Internet gateways of one region, in AWS Config's item shape.

use serde_json::json;

use super::ec2_security_group::ec2_tags;
use super::{all_pages, relationship, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct InternetGateways;

impl AwsLister for InternetGateways {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::EC2::InternetGateway".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let pages = client
            .describe_internet_gateways()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut listed = Listed::default();
        for page in all_pages(ctx, "ec2:DescribeInternetGateways", pages).await? {
            for g in page.internet_gateways() {
                let id = g.internet_gateway_id().unwrap_or_default();
                let (tag_list, tags) = ec2_tags(g.tags());
                listed.items.push(
                    ItemDoc {
                        resource_type: "AWS::EC2::InternetGateway",
                        account: &ctx.account,
                        region: &ctx.region,
                        id,
                        name: tags.get("Name").map(String::as_str),
                        arn: format!(
                            "arn:aws:ec2:{}:{}:internet-gateway/{id}",
                            ctx.region, ctx.account
                        ),
                        configuration: json!({
                            "internetGatewayId": id, "ownerId": g.owner_id(),
                            "attachments": g.attachments().iter().map(|a| json!({
                                "vpcId": a.vpc_id(), "state": a.state().map(|s| s.as_str()),
                            })).collect::<Vec<_>>(),
                            "tags": tag_list,
                        }),
                        supplementary: json!({}),
                        relationships: g
                            .attachments()
                            .iter()
                            .filter_map(|a| {
                                relationship("AWS::EC2::VPC", a.vpc_id(), "Is attached to Vpc")
                            })
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
