//! EC2 instances of one region (public address, security groups, instance profile,
//! metadata service settings), in AWS Config's item shape.

use serde_json::json;

use super::ec2_security_group::ec2_tags;
use super::{all_pages, relationship, time, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct Instances;

impl AwsLister for Instances {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::EC2::Instance".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let pages = client
            .describe_instances()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut listed = Listed::default();
        for page in all_pages(ctx, "ec2:DescribeInstances", pages).await? {
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                // Terminated instances linger in answers for an hour; they are gone.
                if i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("terminated") {
                    continue;
                }
                let id = i.instance_id().unwrap_or_default();
                let (tag_list, tags) = ec2_tags(i.tags());
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
                let m = i.metadata_options();
                listed.items.push(
                    ItemDoc {
                        resource_type: "AWS::EC2::Instance",
                        account: &ctx.account,
                        region: &ctx.region,
                        id,
                        name: tags.get("Name").map(String::as_str),
                        arn: format!("arn:aws:ec2:{}:{}:instance/{id}", ctx.region, ctx.account),
                        configuration: json!({
                            "instanceId": id, "imageId": i.image_id(),
                            "instanceType": i.instance_type().map(|t| t.as_str()),
                            "launchTime": time(i.launch_time()),
                            "state": i.state().map(|s| json!({"code": s.code(), "name": s.name().map(|n| n.as_str())})),
                            "stateTransitionReason": i.state_transition_reason(),
                            "privateIpAddress": i.private_ip_address(), "publicIpAddress": i.public_ip_address(),
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
                            "tags": tag_list,
                        }),
                        supplementary: json!({}),
                        relationships,
                        tags: tags.clone(),
                    }
                    .observe()?,
                );
            }
        }
        Ok(listed)
    }
}
