//! EC2 instances of one region (public address, security groups, instance profile,
//! metadata service settings), in AWS Config's item shape.

use aws_sdk_ec2::types::{Instance, Tag};
use serde_json::{json, Value};

use super::ec2::Ec2Type;
use super::{all_pages, relationship, time, Context};

pub struct Instances;

impl Ec2Type for Instances {
    type Element = Instance;
    const RESOURCE_TYPE: &'static str = "AWS::EC2::Instance";
    const OPERATION: &'static str = "ec2:DescribeInstances";
    const ARN_KIND: &'static str = "instance";

    async fn describe(client: &aws_sdk_ec2::Client, ctx: &Context) -> Result<Vec<Instance>, String> {
        let pages = client.describe_instances().max_results(1000).into_paginator().send();
        let pages = all_pages(ctx, Self::OPERATION, pages).await?;
        Ok(pages
            .into_iter()
            .flat_map(|p| p.reservations.unwrap_or_default())
            .flat_map(|r| r.instances.unwrap_or_default())
            .collect())
    }

    /// Terminated instances linger in answers for an hour; they are gone.
    fn exists(i: &Instance) -> bool {
        i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated")
    }

    fn id(i: &Instance) -> Option<&str> {
        i.instance_id()
    }

    fn tags(i: &Instance) -> &[Tag] {
        i.tags()
    }

    fn configuration(i: &Instance, id: &str, tags: Value) -> Value {
        let m = i.metadata_options();
        json!({
            "instanceId": id, "imageId": i.image_id(),
            "instanceType": i.instance_type().map(|t| t.as_str()),
            "launchTime": time(i.launch_time()),
            "state": i.state().map(|s| json!({"code": s.code(), "name": s.name().map(|n| n.as_str())})),
            "stateTransitionReason": i.state_transition_reason(),
            "privateIpAddress": i.private_ip_address(), "publicIpAddress": i.public_ip_address(),
            "ipv6Address": i.ipv6_address(),
            "subnetId": i.subnet_id(), "vpcId": i.vpc_id(), "keyName": i.key_name(),
            "securityGroups": i.security_groups().iter().map(|g| json!({"groupId": g.group_id(), "groupName": g.group_name()})).collect::<Vec<_>>(),
            "iamInstanceProfile": i.iam_instance_profile().map(|p| json!({"arn": p.arn(), "id": p.id()})),
            "metadataOptions": m.map(|m| json!({
                "httpTokens": m.http_tokens().map(|t| t.as_str()),
                "httpEndpoint": m.http_endpoint().map(|t| t.as_str()),
                "httpPutResponseHopLimit": m.http_put_response_hop_limit(),
                "instanceMetadataTags": m.instance_metadata_tags().map(|t| t.as_str()),
                "state": m.state().map(|t| t.as_str()),
            })),
            "monitoring": i.monitoring().map(|x| json!({"state": x.state().map(|s| s.as_str())})),
            "networkInterfaces": i.network_interfaces().iter().map(|n| json!({
                "networkInterfaceId": n.network_interface_id(), "subnetId": n.subnet_id(),
                "privateIpAddress": n.private_ip_address(),
                "association": n.association().map(|a| json!({"publicIp": a.public_ip()})),
                "ipv6Addresses": n.ipv6_addresses().iter().map(|a| json!({"ipv6Address": a.ipv6_address()})).collect::<Vec<_>>(),
                "groups": n.groups().iter().map(|g| json!({"groupId": g.group_id(), "groupName": g.group_name()})).collect::<Vec<_>>(),
                "attachment": n.attachment().map(|a| json!({
                    "attachTime": time(a.attach_time()), "deviceIndex": a.device_index(),
                    "status": a.status().map(|s| s.as_str()),
                })),
                "status": n.status().map(|s| s.as_str()),
            })).collect::<Vec<_>>(),
            "blockDeviceMappings": i.block_device_mappings().iter().map(|b| json!({
                "deviceName": b.device_name(),
                "ebs": b.ebs().map(|e| json!({
                    "volumeId": e.volume_id(), "deleteOnTermination": e.delete_on_termination(),
                    "attachTime": time(e.attach_time()), "status": e.status().map(|s| s.as_str()),
                })),
            })).collect::<Vec<_>>(),
            "tags": tags,
        })
    }

    fn relationships(i: &Instance) -> Vec<Value> {
        let mut relationships: Vec<_> = i
            .security_groups()
            .iter()
            .filter_map(|g| {
                relationship(
                    "AWS::EC2::SecurityGroup",
                    g.group_id(),
                    "Is associated with SecurityGroup",
                )
            })
            .collect();
        relationships.extend(relationship(
            "AWS::EC2::Subnet",
            i.subnet_id(),
            "Is contained in Subnet",
        ));
        relationships.extend(relationship(
            "AWS::EC2::VPC",
            i.vpc_id(),
            "Is contained in Vpc",
        ));
        relationships
    }
}
