//! Route tables of one region, in AWS Config's item shape.

use serde_json::json;

use super::ec2_security_group::ec2_tags;
use super::{all_pages, relationship, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct RouteTables;

impl AwsLister for RouteTables {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::EC2::RouteTable".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let pages = client
            .describe_route_tables()
            .max_results(100)
            .into_paginator()
            .send();
        let mut listed = Listed::default();
        for page in all_pages(ctx, "ec2:DescribeRouteTables", pages).await? {
            for t in page.route_tables() {
                let id = t.route_table_id().unwrap_or_default();
                let (tag_list, tags) = ec2_tags(t.tags());
                listed.items.push(
                    ItemDoc {
                        resource_type: "AWS::EC2::RouteTable",
                        account: &ctx.account,
                        region: &ctx.region,
                        id,
                        name: tags.get("Name").map(String::as_str),
                        arn: format!("arn:aws:ec2:{}:{}:route-table/{id}", ctx.region, ctx.account),
                        configuration: json!({
                            "routeTableId": id, "vpcId": t.vpc_id(), "ownerId": t.owner_id(),
                            "routes": t.routes().iter().map(|r| json!({
                                "destinationCidrBlock": r.destination_cidr_block(),
                                "destinationIpv6CidrBlock": r.destination_ipv6_cidr_block(),
                                "destinationPrefixListId": r.destination_prefix_list_id(),
                                "gatewayId": r.gateway_id(), "natGatewayId": r.nat_gateway_id(),
                                "instanceId": r.instance_id(), "networkInterfaceId": r.network_interface_id(),
                                "transitGatewayId": r.transit_gateway_id(),
                                "vpcPeeringConnectionId": r.vpc_peering_connection_id(),
                                "origin": r.origin().map(|o| o.as_str()), "state": r.state().map(|s| s.as_str()),
                            })).collect::<Vec<_>>(),
                            "associations": t.associations().iter().map(|a| json!({
                                "main": a.main(), "routeTableAssociationId": a.route_table_association_id(),
                                "routeTableId": a.route_table_id(), "subnetId": a.subnet_id(), "gatewayId": a.gateway_id(),
                                "associationState": a.association_state().and_then(|s| s.state()).map(|s| s.as_str()),
                            })).collect::<Vec<_>>(),
                            "tags": tag_list,
                        }),
                        supplementary: json!({}),
                        relationships: relationship("AWS::EC2::VPC", t.vpc_id(), "Is contained in Vpc")
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
