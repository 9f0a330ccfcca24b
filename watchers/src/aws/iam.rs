//! IAM users, roles, groups and customer managed policies, from
//! GetAccountAuthorizationDetails (one paginated call for all four), in AWS Config's
//! item shape.

use std::collections::BTreeMap;

use aws_sdk_iam::types::{AttachedPolicy, EntityType, PolicyDetail, Tag};
use chrono::Utc;
use guardrail_model::{ItemKey, Observation};
use serde_json::{json, Value};

use super::{describe, AwsLister, Context};
use crate::normalize::normalize;

pub struct Iam;

fn time(t: Option<&aws_smithy_types::DateTime>) -> Value {
    t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

fn inline(list: &[PolicyDetail]) -> Value {
    list.iter()
        .map(|p| json!({"policyName": p.policy_name(), "policyDocument": p.policy_document()}))
        .collect()
}

fn attached(list: &[AttachedPolicy]) -> Value {
    list.iter()
        .map(|p| json!({"policyName": p.policy_name(), "policyArn": p.policy_arn()}))
        .collect()
}

fn tags(list: &[Tag]) -> (Value, BTreeMap<String, String>) {
    let map: BTreeMap<String, String> = list
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    (
        list.iter()
            .map(|t| json!({"key": t.key(), "value": t.value()}))
            .collect(),
        map,
    )
}

fn observation(
    ctx: &Context,
    resource_type: &str,
    id: &str,
    name: &str,
    arn: &str,
    configuration: Value,
    tags: BTreeMap<String, String>,
) -> Result<Observation, String> {
    let mut doc = json!({"configuration": configuration, "supplementaryConfiguration": {}});
    let ephemeral =
        normalize(resource_type, &mut doc).map_err(|e| format!("{resource_type} {name}: {e}"))?;
    Ok(Observation {
        key: ItemKey {
            account: ctx.account.clone(),
            region: "global".into(),
            resource_type: resource_type.into(),
            resource_id: id.into(),
        },
        arn: Some(arn.into()),
        name: Some(name.into()),
        tags,
        config: doc,
        ephemeral: Value::Object(ephemeral),
        observed_at: Utc::now(),
    })
}

impl AwsLister for Iam {
    fn resource_types(&self) -> Vec<&'static str> {
        vec![
            "AWS::IAM::User",
            "AWS::IAM::Role",
            "AWS::IAM::Group",
            "AWS::IAM::Policy",
        ]
    }

    fn global(&self) -> bool {
        true
    }

    async fn list(&self, ctx: &Context) -> Result<Vec<Observation>, String> {
        let client = aws_sdk_iam::Client::new(&ctx.config);
        let mut pages = client
            .get_account_authorization_details()
            .filter(EntityType::User)
            .filter(EntityType::Role)
            .filter(EntityType::Group)
            .filter(EntityType::LocalManagedPolicy)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "iam:GetAccountAuthorizationDetails failed: {}",
                    describe(&e)
                )
            })?;
            for u in page.user_detail_list() {
                let (tag_list, tag_map) = tags(u.tags());
                let conf = json!({
                    "path": u.path(), "userName": u.user_name(), "userId": u.user_id(), "arn": u.arn(),
                    "createDate": time(u.create_date()),
                    "userPolicyList": inline(u.user_policy_list()),
                    "groupList": u.group_list(),
                    "attachedManagedPolicies": attached(u.attached_managed_policies()),
                    "permissionsBoundary": u.permissions_boundary().map(|b| json!({"permissionsBoundaryArn": b.permissions_boundary_arn()})),
                    "tags": tag_list,
                });
                out.push(observation(
                    ctx,
                    "AWS::IAM::User",
                    u.user_id().unwrap_or_default(),
                    u.user_name().unwrap_or_default(),
                    u.arn().unwrap_or_default(),
                    conf,
                    tag_map,
                )?);
            }
            for r in page.role_detail_list() {
                let (tag_list, tag_map) = tags(r.tags());
                let conf = json!({
                    "path": r.path(), "roleName": r.role_name(), "roleId": r.role_id(), "arn": r.arn(),
                    "createDate": time(r.create_date()),
                    "assumeRolePolicyDocument": r.assume_role_policy_document(),
                    "instanceProfileList": r.instance_profile_list().iter().map(|p| json!({"instanceProfileName": p.instance_profile_name(), "arn": p.arn()})).collect::<Vec<_>>(),
                    "rolePolicyList": inline(r.role_policy_list()),
                    "attachedManagedPolicies": attached(r.attached_managed_policies()),
                    "permissionsBoundary": r.permissions_boundary().map(|b| json!({"permissionsBoundaryArn": b.permissions_boundary_arn()})),
                    "roleLastUsed": r.role_last_used().map(|l| json!({"lastUsedDate": time(l.last_used_date()), "region": l.region()})),
                    "tags": tag_list,
                });
                out.push(observation(
                    ctx,
                    "AWS::IAM::Role",
                    r.role_id().unwrap_or_default(),
                    r.role_name().unwrap_or_default(),
                    r.arn().unwrap_or_default(),
                    conf,
                    tag_map,
                )?);
            }
            for g in page.group_detail_list() {
                let conf = json!({
                    "path": g.path(), "groupName": g.group_name(), "groupId": g.group_id(), "arn": g.arn(),
                    "createDate": time(g.create_date()),
                    "groupPolicyList": inline(g.group_policy_list()),
                    "attachedManagedPolicies": attached(g.attached_managed_policies()),
                });
                out.push(observation(
                    ctx,
                    "AWS::IAM::Group",
                    g.group_id().unwrap_or_default(),
                    g.group_name().unwrap_or_default(),
                    g.arn().unwrap_or_default(),
                    conf,
                    BTreeMap::new(),
                )?);
            }
            for p in page.policies() {
                let conf = json!({
                    "policyName": p.policy_name(), "policyId": p.policy_id(), "arn": p.arn(), "path": p.path(),
                    "defaultVersionId": p.default_version_id(),
                    "attachmentCount": p.attachment_count(),
                    "permissionsBoundaryUsageCount": p.permissions_boundary_usage_count(),
                    "isAttachable": p.is_attachable(),
                    "description": p.description(),
                    "createDate": time(p.create_date()),
                    "updateDate": time(p.update_date()),
                    "policyVersionList": p.policy_version_list().iter().map(|v| json!({
                        "document": v.document(), "versionId": v.version_id(),
                        "isDefaultVersion": v.is_default_version(), "createDate": time(v.create_date()),
                    })).collect::<Vec<_>>(),
                });
                out.push(observation(
                    ctx,
                    "AWS::IAM::Policy",
                    p.policy_id().unwrap_or_default(),
                    p.policy_name().unwrap_or_default(),
                    p.arn().unwrap_or_default(),
                    conf,
                    BTreeMap::new(),
                )?);
            }
        }
        Ok(out)
    }
}
