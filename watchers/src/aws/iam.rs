//! IAM users, roles, groups and managed policies, in AWS Config's item shape.
//!
//! GetAccountAuthorizationDetails returns all four with their inline and attached
//! policies in a few pages, instead of five calls per principal. What it leaves out is
//! fetched per item with bounded concurrency: users' access keys (with last use), MFA
//! devices and login profile; roles' session duration and description (ListRoles); and
//! the AWS managed policies that something actually attaches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::{
    AttachedPolicy, EntityType, GroupDetail, ManagedPolicyDetail, PolicyDetail, RoleDetail, Tag,
    UserDetail,
};
use aws_sdk_iam::Client;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{
    all_pages, describe, tag_pairs, time, AwsLister, Context, ItemDoc, Listed, Problem, Reach,
    ReadOne,
};

pub struct Iam;

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
    tag_pairs(list.iter().map(|t| (Some(t.key()), Some(t.value()))))
}

fn is_aws_managed(arn: &str) -> bool {
    // arn:<partition>:iam::aws:policy/...
    arn.split(':').nth(4) == Some("aws")
}

/// An IAM item: global, with no supplementary configuration or relationships.
fn iam_item(
    ctx: &Context,
    resource_type: &'static str,
    id: &str,
    name: Option<&str>,
    arn: String,
    configuration: Value,
    tags: BTreeMap<String, String>,
) -> Result<guardrail_model::Observation, String> {
    // An answer without its id (moto and some real answers omit PolicyId) must not
    // collapse different resources into one item: the ARN is unique, as for the AWS
    // managed policies. Neither is an error the ingestor rejects.
    let id = if id.trim().is_empty() {
        arn.as_str()
    } else {
        id
    };
    if id.trim().is_empty() {
        return Err(format!(
            "{resource_type} {} has neither an id nor an ARN in the answer; skipped",
            name.unwrap_or("(no name)")
        ));
    }
    let id = id.to_owned();
    ItemDoc {
        resource_type,
        account: &ctx.account,
        region: "global",
        id: &id,
        name,
        arn,
        configuration,
        supplementary: json!({}),
        relationships: Vec::new(),
        tags,
    }
    .observe()
}

/// The AWS managed policies among `attached`.
fn aws_managed_arns(attached: &[AttachedPolicy]) -> impl Iterator<Item = String> + '_ {
    attached
        .iter()
        .filter_map(|p| p.policy_arn())
        .filter(|a| is_aws_managed(a))
        .map(str::to_owned)
}

/// What a user's detail calls add: access keys with last use, MFA devices, login profile.
async fn user_extras(client: &Client, ctx: &Context, user: &str) -> Result<Value, String> {
    let fail = |op: &str, e: String| format!("iam:{op} for user {user} failed: {e}");
    let keys = client
        .list_access_keys()
        .user_name(user)
        .into_paginator()
        .items()
        .send();
    let mut access_keys = Vec::new();
    for k in all_pages(ctx, &format!("iam:ListAccessKeys for user {user}"), keys).await? {
        let id = k.access_key_id().unwrap_or_default();
        let used = {
            let _p = ctx.permit().await;
            client
                .get_access_key_last_used()
                .access_key_id(id)
                .send()
                .await
        }
        .map_err(|e| fail("GetAccessKeyLastUsed", describe(&e)))?;
        let last = used.access_key_last_used();
        access_keys.push(json!({
            "accessKeyId": id,
            "status": k.status().map(|s| s.as_str()),
            "createDate": time(k.create_date()),
            "lastUsedDate": time(last.and_then(|l| l.last_used_date())),
            "lastUsedService": last.map(|l| l.service_name()),
            "lastUsedRegion": last.map(|l| l.region()),
        }));
    }
    let mfa = client
        .list_mfa_devices()
        .user_name(user)
        .into_paginator()
        .items()
        .send();
    let mut devices = Vec::new();
    for d in all_pages(ctx, &format!("iam:ListMFADevices for user {user}"), mfa).await? {
        devices.push(
            json!({"serialNumber": d.serial_number(), "enableDate": time(Some(d.enable_date()))}),
        );
    }
    let profile = {
        let _p = ctx.permit().await;
        client.get_login_profile().user_name(user).send().await
    };
    let login = match profile {
        Ok(p) => p.login_profile().map_or(Value::Null, |l| {
            json!({"createDate": time(Some(l.create_date())), "passwordResetRequired": l.password_reset_required()})
        }),
        // No console password is an answer, not an error.
        Err(e) if e.code() == Some("NoSuchEntity") => Value::Null,
        Err(e) => return Err(fail("GetLoginProfile", describe(&e))),
    };
    Ok(json!({"accessKeys": access_keys, "mfaDevices": devices, "loginProfile": login}))
}

fn user_doc(
    ctx: &Context,
    u: &UserDetail,
    extras: Value,
) -> Result<guardrail_model::Observation, String> {
    let (tag_list, tag_map) = tags(u.tags());
    let mut conf = json!({
        "path": u.path(), "userName": u.user_name(), "userId": u.user_id(), "arn": u.arn(),
        "createDate": time(u.create_date()),
        "userPolicyList": inline(u.user_policy_list()),
        "groupList": u.group_list(),
        "attachedManagedPolicies": attached(u.attached_managed_policies()),
        "permissionsBoundary": u.permissions_boundary().map(|b| json!({"permissionsBoundaryArn": b.permissions_boundary_arn()})),
        "tags": tag_list,
    });
    if let (Value::Object(c), Value::Object(x)) = (&mut conf, extras) {
        c.extend(x);
    }
    iam_item(
        ctx,
        "AWS::IAM::User",
        u.user_id().unwrap_or_default(),
        u.user_name(),
        u.arn().unwrap_or_default().to_owned(),
        conf,
        tag_map,
    )
}

/// Session duration and description by role name, which the details call omits.
async fn role_settings(client: &Client, ctx: &Context) -> Result<HashMap<String, Value>, String> {
    // AWS's default page of 100 roles; an account with thousands pages through them.
    let pages = client.list_roles().max_items(100).into_paginator().send();
    let mut out = HashMap::new();
    for page in all_pages(ctx, "iam:ListRoles", pages).await? {
        for r in page.roles() {
            out.insert(
                r.role_name().to_owned(),
                json!({"maxSessionDuration": r.max_session_duration(), "description": r.description()}),
            );
        }
    }
    Ok(out)
}

/// An AWS managed policy with its default version's document.
async fn aws_managed_policy(
    client: &Client,
    ctx: &Context,
    arn: &str,
) -> Result<guardrail_model::Observation, String> {
    let policy = {
        let _p = ctx.permit().await;
        client.get_policy().policy_arn(arn).send().await
    }
    .map_err(|e| format!("iam:GetPolicy {arn} failed: {}", describe(&e)))?;
    let p = policy
        .policy()
        .ok_or_else(|| format!("iam:GetPolicy {arn} returned no policy"))?;
    let version = p.default_version_id().unwrap_or_default();
    let v = {
        let _p = ctx.permit().await;
        client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
    }
    .map_err(|e| {
        format!(
            "iam:GetPolicyVersion {arn} {version} failed: {}",
            describe(&e)
        )
    })?;
    let doc = v.policy_version();
    let conf = json!({
        "policyName": p.policy_name(), "policyId": p.policy_id(), "arn": p.arn(), "path": p.path(),
        "defaultVersionId": p.default_version_id(),
        "attachmentCount": p.attachment_count(),
        "permissionsBoundaryUsageCount": p.permissions_boundary_usage_count(),
        "isAttachable": p.is_attachable(),
        "description": p.description(),
        "createDate": time(p.create_date()),
        "updateDate": time(p.update_date()),
        "policyVersionList": [{
            "document": doc.and_then(|d| d.document()),
            "versionId": doc.and_then(|d| d.version_id()),
            "isDefaultVersion": true,
            "createDate": time(doc.and_then(|d| d.create_date())),
        }],
    });
    iam_item(
        ctx,
        "AWS::IAM::Policy",
        p.policy_id().unwrap_or(arn),
        p.policy_name(),
        arn.to_owned(),
        conf,
        BTreeMap::new(),
    )
}

fn role_doc(
    ctx: &Context,
    r: &RoleDetail,
    extra: &Value,
) -> Result<guardrail_model::Observation, String> {
    let (tag_list, tag_map) = tags(r.tags());
    let conf = json!({
        "path": r.path(), "roleName": r.role_name(), "roleId": r.role_id(), "arn": r.arn(),
        "createDate": time(r.create_date()),
        "description": extra.get("description"),
        "maxSessionDuration": extra.get("maxSessionDuration"),
        "assumeRolePolicyDocument": r.assume_role_policy_document(),
        "instanceProfileList": r.instance_profile_list().iter().map(|p| json!({"instanceProfileName": p.instance_profile_name(), "arn": p.arn()})).collect::<Vec<_>>(),
        "rolePolicyList": inline(r.role_policy_list()),
        "attachedManagedPolicies": attached(r.attached_managed_policies()),
        "permissionsBoundary": r.permissions_boundary().map(|b| json!({"permissionsBoundaryArn": b.permissions_boundary_arn()})),
        "roleLastUsed": r.role_last_used().map(|l| json!({"lastUsedDate": time(l.last_used_date()), "region": l.region()})),
        "tags": tag_list,
    });
    iam_item(
        ctx,
        "AWS::IAM::Role",
        r.role_id().unwrap_or_default(),
        r.role_name(),
        r.arn().unwrap_or_default().to_owned(),
        conf,
        tag_map,
    )
}

fn group_doc(ctx: &Context, g: &GroupDetail) -> Result<guardrail_model::Observation, String> {
    let conf = json!({
        "path": g.path(), "groupName": g.group_name(), "groupId": g.group_id(), "arn": g.arn(),
        "createDate": time(g.create_date()),
        "groupPolicyList": inline(g.group_policy_list()),
        "attachedManagedPolicies": attached(g.attached_managed_policies()),
    });
    iam_item(
        ctx,
        "AWS::IAM::Group",
        g.group_id().unwrap_or_default(),
        g.group_name(),
        g.arn().unwrap_or_default().to_owned(),
        conf,
        BTreeMap::new(),
    )
}

fn policy_doc(
    ctx: &Context,
    p: &ManagedPolicyDetail,
) -> Result<guardrail_model::Observation, String> {
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
    iam_item(
        ctx,
        "AWS::IAM::Policy",
        p.policy_id().unwrap_or_default(),
        p.policy_name(),
        p.arn().unwrap_or_default().to_owned(),
        conf,
        BTreeMap::new(),
    )
}

/// One principal or managed policy, for an event-driven refresh: the details call
/// narrowed to its entity type (the same shape a sweep stores), the one matching
/// `name` (a name, id or ARN) kept. Absent from that complete listing, the item's own
/// Get call must also say NoSuchEntity before it counts as gone.
async fn read_one(client: &Client, ctx: &Context, resource_type: &str, name: &str) -> ReadOne {
    let entity = match resource_type {
        "AWS::IAM::User" => EntityType::User,
        "AWS::IAM::Role" => EntityType::Role,
        "AWS::IAM::Group" => EntityType::Group,
        "AWS::IAM::Policy" => EntityType::LocalManagedPolicy,
        other => return Err(format!("IAM cannot read {other} items one at a time")),
    };
    let pages = client
        .get_account_authorization_details()
        .filter(entity.clone())
        .into_paginator()
        .send();
    let pages = all_pages(ctx, "iam:GetAccountAuthorizationDetails", pages).await?;
    let is = |n: Option<&str>, id: Option<&str>, arn: Option<&str>| {
        [n, id, arn].contains(&Some(name))
    };
    for page in &pages {
        if let Some(u) = page
            .user_detail_list()
            .iter()
            .find(|u| is(u.user_name(), u.user_id(), u.arn()))
        {
            let extras = user_extras(client, ctx, u.user_name().unwrap_or_default()).await?;
            return user_doc(ctx, u, extras).map(Some);
        }
        if let Some(r) = page
            .role_detail_list()
            .iter()
            .find(|r| is(r.role_name(), r.role_id(), r.arn()))
        {
            let role_name = r.role_name().unwrap_or_default();
            let got = {
                let _p = ctx.permit().await;
                client.get_role().role_name(role_name).send().await
            }
            .map_err(|e| format!("iam:GetRole {role_name} failed: {}", describe(&e)))?;
            let extra = got.role().map_or(Value::Null, |r| {
                json!({"maxSessionDuration": r.max_session_duration(), "description": r.description()})
            });
            return role_doc(ctx, r, &extra).map(Some);
        }
        if let Some(g) = page
            .group_detail_list()
            .iter()
            .find(|g| is(g.group_name(), g.group_id(), g.arn()))
        {
            return group_doc(ctx, g).map(Some);
        }
        if let Some(p) = page
            .policies()
            .iter()
            .find(|p| is(p.policy_name(), p.policy_id(), p.arn()))
        {
            return policy_doc(ctx, p).map(Some);
        }
    }
    // Not listed: only the item's own answer may say it is gone.
    let _p = ctx.permit().await;
    let answer = match entity {
        EntityType::User => client.get_user().user_name(name).send().await.map(|_| ()).map_err(|e| (e.code().map(str::to_owned), describe(&e))),
        EntityType::Role => client.get_role().role_name(name).send().await.map(|_| ()).map_err(|e| (e.code().map(str::to_owned), describe(&e))),
        EntityType::Group => client.get_group().group_name(name).send().await.map(|_| ()).map_err(|e| (e.code().map(str::to_owned), describe(&e))),
        _ => client.get_policy().policy_arn(name).send().await.map(|_| ()).map_err(|e| (e.code().map(str::to_owned), describe(&e))),
    };
    match answer {
        Err((Some(code), _)) if code == "NoSuchEntity" => Ok(None),
        Err((_, message)) => Err(format!("{resource_type} {name}: {message}")),
        Ok(()) => Err(format!(
            "{resource_type} {name} exists but the details listing did not include it yet; retried"
        )),
    }
}

impl AwsLister for Iam {
    fn service(&self) -> &'static str {
        "iam"
    }

    fn resource_types(&self) -> Vec<String> {
        [
            "AWS::IAM::User",
            "AWS::IAM::Role",
            "AWS::IAM::Group",
            "AWS::IAM::Policy",
        ]
        .map(String::from)
        .to_vec()
    }

    fn reach(&self) -> Reach {
        Reach::Global
    }

    async fn read_one(&self, ctx: &Context, resource_type: &str, id: &str) -> Option<ReadOne> {
        Some(read_one(&super::lister::client!(aws_sdk_iam, ctx), ctx, resource_type, id).await)
    }

    async fn list(&self, ctx: &Context) -> Result<Listed, String> {
        let client = super::lister::client!(aws_sdk_iam, ctx);
        let pages = client
            .get_account_authorization_details()
            .filter(EntityType::User)
            .filter(EntityType::Role)
            .filter(EntityType::Group)
            .filter(EntityType::LocalManagedPolicy)
            .into_paginator()
            .send();
        let mut users = Vec::new();
        let mut roles = Vec::new();
        let mut groups = Vec::new();
        let mut policies = Vec::new();
        for page in all_pages(ctx, "iam:GetAccountAuthorizationDetails", pages).await? {
            users.extend(page.user_detail_list().iter().cloned());
            roles.extend(page.role_detail_list().iter().cloned());
            groups.extend(page.group_detail_list().iter().cloned());
            policies.extend(page.policies().iter().cloned());
        }
        let settings = role_settings(&client, ctx).await?;
        let mut listed = Listed::default();

        let extras: Vec<(usize, Result<Value, String>)> = stream::iter(users.iter().enumerate())
            .map(|(i, u)| {
                let client = &client;
                async move {
                    (
                        i,
                        user_extras(client, ctx, u.user_name().unwrap_or_default()).await,
                    )
                }
            })
            .buffer_unordered(ctx.fan_out())
            .collect()
            .await;
        for (i, extra) in extras {
            let u = &users[i];
            match extra {
                Ok(x) => listed.items.push(user_doc(ctx, u, x)?),
                // This user keeps its last revision; the others are still recorded.
                Err(message) => listed.problems.push(Problem {
                    resource_type: "AWS::IAM::User".into(),
                    region: None,
                    item: u.user_name().map(str::to_owned),
                    message,
                }),
            }
        }

        let mut aws_managed: BTreeSet<String> = BTreeSet::new();
        for r in &roles {
            aws_managed.extend(aws_managed_arns(r.attached_managed_policies()));
            let extra = settings
                .get(r.role_name().unwrap_or_default())
                .cloned()
                .unwrap_or(Value::Null);
            listed.items.push(role_doc(ctx, r, &extra)?);
        }
        for u in &users {
            aws_managed.extend(aws_managed_arns(u.attached_managed_policies()));
        }
        for g in &groups {
            aws_managed.extend(aws_managed_arns(g.attached_managed_policies()));
            listed.items.push(group_doc(ctx, g)?);
        }
        for p in &policies {
            listed.items.push(policy_doc(ctx, p)?);
        }

        // AWS managed policies only when attached: there are over a thousand, and one
        // nobody attaches grants nothing.
        let managed: Vec<(String, Result<guardrail_model::Observation, String>)> =
            stream::iter(aws_managed)
                .map(|arn| {
                    let client = &client;
                    async move {
                        let r = aws_managed_policy(client, ctx, &arn).await;
                        (arn, r)
                    }
                })
                .buffer_unordered(ctx.fan_out())
                .collect()
                .await;
        for (arn, r) in managed {
            match r {
                Ok(o) => listed.items.push(o),
                Err(message) => listed.problems.push(Problem {
                    resource_type: "AWS::IAM::Policy".into(),
                    region: None,
                    item: Some(arn),
                    message,
                }),
            }
        }
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::is_aws_managed;

    #[test]
    fn aws_managed_policies_by_arn() {
        assert!(is_aws_managed("arn:aws:iam::aws:policy/ReadOnlyAccess"));
        assert!(is_aws_managed(
            "arn:aws-us-gov:iam::aws:policy/service-role/AWSConfigRole"
        ));
        assert!(!is_aws_managed("arn:aws:iam::123456789012:policy/admin"));
    }
}
