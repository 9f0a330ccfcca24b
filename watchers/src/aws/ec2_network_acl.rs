//! Network ACLs of one region, in AWS Config's item shape.

use serde_json::json;

use super::ec2_security_group::ec2_tags;
use super::{all_pages, relationship, AwsLister, Context, ItemDoc, Listed, Reach};

pub struct NetworkAcls;

impl AwsLister for NetworkAcls {
    fn service(&self) -> &'static str {
        "ec2"
    }

    fn resource_types(&self) -> Vec<String> {
        vec!["AWS::EC2::NetworkAcl".into()]
    }

    fn reach(&self) -> Reach {
        Reach::Regional
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = aws_sdk_ec2::Client::new(&ctx.config);
        let pages = client
            .describe_network_acls()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut listed = Listed::default();
        for page in all_pages(ctx, "ec2:DescribeNetworkAcls", pages).await? {
            for a in page.network_acls() {
                let id = a.network_acl_id().unwrap_or_default();
                let (tag_list, tags) = ec2_tags(a.tags());
                listed.items.push(
                    ItemDoc {
                        resource_type: "AWS::EC2::NetworkAcl",
                        account: &ctx.account,
                        region: &ctx.region,
                        id,
                        name: tags.get("Name").map(String::as_str),
                        arn: format!("arn:aws:ec2:{}:{}:network-acl/{id}", ctx.region, ctx.account),
                        configuration: json!({
                            "networkAclId": id, "vpcId": a.vpc_id(), "isDefault": a.is_default(),
                            "ownerId": a.owner_id(),
                            "entries": a.entries().iter().map(|e| json!({
                                "ruleNumber": e.rule_number(), "protocol": e.protocol(),
                                "ruleAction": e.rule_action().map(|r| r.as_str()), "egress": e.egress(),
                                "cidrBlock": e.cidr_block(), "ipv6CidrBlock": e.ipv6_cidr_block(),
                                "portRange": e.port_range().map(|p| json!({"from": p.from(), "to": p.to()})),
                                "icmpTypeCode": e.icmp_type_code().map(|i| json!({"type": i.r#type(), "code": i.code()})),
                            })).collect::<Vec<_>>(),
                            "associations": a.associations().iter().map(|s| json!({
                                "networkAclAssociationId": s.network_acl_association_id(),
                                "networkAclId": s.network_acl_id(), "subnetId": s.subnet_id(),
                            })).collect::<Vec<_>>(),
                            "tags": tag_list,
                        }),
                        supplementary: json!({}),
                        relationships: relationship("AWS::EC2::VPC", a.vpc_id(), "Is contained in Vpc")
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
