//! Route tables of one region, in AWS Config's item shape.

use aws_sdk_ec2::types::{RouteTable, Tag};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, relationship, Context};

pub struct RouteTables;

impl Ec2Type for RouteTables {
    type Element = RouteTable;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::RouteTable";
    const OPERATION: &'static str = "ec2:DescribeRouteTables";
    const ARN_KIND: &'static str = "route-table";

    async fn describe(
        client: &aws_sdk_ec2::Client,
        ctx: &Context,
    ) -> Result<Vec<RouteTable>, String> {
        // DescribeRouteTables allows at most 100 per page.
        let pages = client.describe_route_tables().max_results(100).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages.into_iter().flat_map(|p| p.route_tables.unwrap_or_default()).collect())
    }

    fn id(t: &RouteTable) -> Option<&str> {
        t.route_table_id()
    }

    fn tags(t: &RouteTable) -> &[Tag] {
        t.tags()
    }

    fn configuration(t: &RouteTable, id: &str, tags: Value) -> Value {
        json!({
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
            "tags": tags,
        })
    }

    fn relationships(t: &RouteTable) -> Vec<Value> {
        relationship("AWS::EC2::VPC", t.vpc_id(), "Is contained in Vpc")
            .into_iter()
            .collect()
    }
}
