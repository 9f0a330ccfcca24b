//! Internet gateways of one region, in AWS Config's item shape.

use aws_sdk_ec2::types::{InternetGateway, Tag};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, relationship, Context};

pub struct InternetGateways;

impl Ec2Type for InternetGateways {
    type Element = InternetGateway;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::InternetGateway";
    const OPERATION: &'static str = "ec2:DescribeInternetGateways";
    const ARN_KIND: &'static str = "internet-gateway";

    async fn describe(
        client: &aws_sdk_ec2::Client,
        ctx: &Context,
    ) -> Result<Vec<InternetGateway>, String> {
        let pages = client.describe_internet_gateways().max_results(1000).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages.into_iter().flat_map(|p| p.internet_gateways.unwrap_or_default()).collect())
    }

    fn id(g: &InternetGateway) -> Option<&str> {
        g.internet_gateway_id()
    }

    fn tags(g: &InternetGateway) -> &[Tag] {
        g.tags()
    }

    fn configuration(g: &InternetGateway, id: &str, tags: Value) -> Value {
        json!({
            "internetGatewayId": id, "ownerId": g.owner_id(),
            "attachments": g.attachments().iter().map(|a| json!({
                "vpcId": a.vpc_id(), "state": a.state().map(|s| s.as_str()),
            })).collect::<Vec<_>>(),
            "tags": tags,
        })
    }

    fn relationships(g: &InternetGateway) -> Vec<Value> {
        g.attachments()
            .iter()
            .filter_map(|a| relationship("AWS::EC2::VPC", a.vpc_id(), "Is attached to Vpc"))
            .collect()
    }
}
