//! Readers for AWS configuration shapes that several rules need, written once in Rust
//! so rules stay short and agree with each other. Input is the item's config as AWS
//! Config records it (and as the API watchers reproduce it).

use serde_json::{json, Value};

/// Every policy document attached to an IAM user, group, role or managed policy:
/// `{name, source, document}` with source `inline`, `managed` (AWS managed, attached;
/// document only for the well-known admin policy) or `version` (a managed policy's
/// default version).
pub fn iam_policy_documents(resource_type: &str, config: &Value) -> Vec<Value> {
    let c = config.get("configuration").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    let inline_key = match resource_type {
        "AWS::IAM::User" => Some("userPolicyList"),
        "AWS::IAM::Group" => Some("groupPolicyList"),
        "AWS::IAM::Role" => Some("rolePolicyList"),
        _ => None,
    };
    if let Some(key) = inline_key {
        for p in c.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.push(json!({
                "name": p.get("policyName"),
                "source": "inline",
                "document": p.get("policyDocument"),
            }));
        }
        for p in c
            .get("attachedManagedPolicies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let arn = p
                .get("policyArn")
                .and_then(Value::as_str)
                .unwrap_or_default();
            // AWS managed policies are not items of their own; the one that matters
            // most is known by name.
            let document = if arn == "arn:aws:iam::aws:policy/AdministratorAccess" {
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
            } else {
                Value::Null
            };
            out.push(json!({"name": p.get("policyName"), "arn": arn, "source": "managed", "document": document}));
        }
    }
    if resource_type == "AWS::IAM::Policy" {
        for v in c
            .get("policyVersionList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let is_default = v
                .get("isDefaultVersion")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || v.get("versionId") == c.get("defaultVersionId");
            if is_default {
                out.push(json!({
                    "name": c.get("policyName"),
                    "source": "version",
                    "version": v.get("versionId"),
                    "document": v.get("document"),
                }));
            }
        }
    }
    out
}

fn int(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Number(n)) => n.as_i64().map_or(Value::Null, |i| json!(i)),
        Some(Value::String(s)) => s.trim().parse::<i64>().map_or(Value::Null, |i| json!(i)),
        _ => Value::Null,
    }
}

/// One row per source of each security group permission:
/// `{protocol, from, to, source, kind, internet}` where kind is `ipv4`, `ipv6`, `group`
/// or `prefix_list`, and `internet` says whether the source is a valid CIDR covering
/// the whole internet of its family (`0.0.0.0/0`, `::/0`; false for groups and prefix
/// lists), the question most rules ask first, answered once here instead of by two
/// helper calls per row in each rule. AWS Config lists IPv4 ranges twice (`ipRanges`
/// strings and `ipv4Ranges` objects); each range appears once here.
pub fn sg_permissions(config: &Value, direction: &str) -> Vec<Value> {
    let key = if direction == "egress" {
        "ipPermissionsEgress"
    } else {
        "ipPermissions"
    };
    let perms = config
        .get("configuration")
        .and_then(|c| c.get(key))
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for p in perms.into_iter().flatten() {
        let protocol = match p.get("ipProtocol") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "-1".into(),
        };
        let base = |source: &str, kind: &str| {
            let internet = matches!(kind, "ipv4" | "ipv6")
                && crate::helpers::cidr::Cidr::parse(source).is_some_and(|c| c.is_internet());
            json!({
                "protocol": protocol,
                "from": int(p.get("fromPort")),
                "to": int(p.get("toPort")),
                "source": source,
                "kind": kind,
                "internet": internet,
            })
        };
        let mut v4: Vec<String> = p
            .get("ipRanges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                r.as_str()
                    .map(str::to_owned)
                    .or_else(|| r.get("cidrIp").and_then(Value::as_str).map(str::to_owned))
            })
            .collect();
        v4.extend(
            p.get("ipv4Ranges")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("cidrIp").and_then(Value::as_str).map(str::to_owned)),
        );
        v4.sort();
        v4.dedup();
        out.extend(v4.iter().map(|c| base(c, "ipv4")));
        for r in p
            .get("ipv6Ranges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(c) = r
                .get("cidrIpv6")
                .and_then(Value::as_str)
                .or_else(|| r.as_str())
            {
                out.push(base(c, "ipv6"));
            }
        }
        for g in p
            .get("userIdGroupPairs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut row = base(
                g.get("groupId").and_then(Value::as_str).unwrap_or_default(),
                "group",
            );
            row["account"] = g.get("userId").cloned().unwrap_or(Value::Null);
            out.push(row);
        }
        for pl in p
            .get("prefixListIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = pl.get("prefixListId").and_then(Value::as_str) {
                out.push(base(id, "prefix_list"));
            }
        }
    }
    out
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// The grants of a bucket ACL as `{grantee, id, permission}`, grantee being
/// `AllUsers`, `AuthenticatedUsers`, `LogDelivery`, `CanonicalUser` or `Email`.
pub fn s3_grants(config: &Value) -> Vec<Value> {
    let acl = config
        .get("supplementaryConfiguration")
        .and_then(|s| s.get("AccessControlList"));
    let grants = acl
        .and_then(|a| a.get("grantList").or_else(|| a.get("grants")))
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for g in grants.into_iter().flatten() {
        let permission = g
            .get("permission")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let grantee = g.get("grantee").unwrap_or(&Value::Null);
        let (kind, id) = match grantee {
            Value::String(s) if s == "AllUsers" || s == ALL_USERS => ("AllUsers", s.clone()),
            Value::String(s) if s == "AuthenticatedUsers" || s == AUTHENTICATED_USERS => {
                ("AuthenticatedUsers", s.clone())
            }
            Value::String(s) if s == "LogDelivery" || s == LOG_DELIVERY => {
                ("LogDelivery", s.clone())
            }
            Value::String(s) => ("CanonicalUser", s.clone()),
            Value::Object(m) => {
                let uri = m
                    .get("uri")
                    .or_else(|| m.get("URI"))
                    .and_then(Value::as_str);
                let id = m
                    .get("id")
                    .or_else(|| m.get("identifier"))
                    .and_then(Value::as_str);
                match (uri, id) {
                    (Some(u), _) if u == ALL_USERS => ("AllUsers", u.to_owned()),
                    (Some(u), _) if u == AUTHENTICATED_USERS => {
                        ("AuthenticatedUsers", u.to_owned())
                    }
                    (Some(u), _) if u == LOG_DELIVERY => ("LogDelivery", u.to_owned()),
                    (_, Some(i)) if i.contains('@') => ("Email", i.to_owned()),
                    (_, Some(i)) => ("CanonicalUser", i.to_owned()),
                    _ => continue,
                }
            }
            _ => continue,
        };
        out.push(json!({"grantee": kind, "id": id, "permission": permission}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_documents_of_each_type() {
        let user = json!({"configuration": {
            "userPolicyList": [{"policyName": "a", "policyDocument": {"Statement": []}}],
            "attachedManagedPolicies": [{"policyName": "AdministratorAccess", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
                                        {"policyName": "ReadOnlyAccess", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]}});
        let docs = iam_policy_documents("AWS::IAM::User", &user);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1]["document"]["Statement"][0]["Action"], "*");
        assert!(docs[2]["document"].is_null());
        let pol = json!({"configuration": {"policyName": "p", "defaultVersionId": "v2", "policyVersionList": [
            {"versionId": "v1", "isDefaultVersion": false, "document": {"old": true}},
            {"versionId": "v2", "isDefaultVersion": true, "document": {"new": true}}]}});
        let docs = iam_policy_documents("AWS::IAM::Policy", &pol);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["document"]["new"], true);
    }

    #[test]
    fn security_group_sources_are_flattened_once() {
        let sg = json!({"configuration": {"ipPermissions": [{
            "ipProtocol": "tcp", "fromPort": 22, "toPort": "22",
            "ipRanges": ["0.0.0.0/0"], "ipv4Ranges": [{"cidrIp": "0.0.0.0/0"}, {"cidrIp": "10.0.0.0/8"}],
            "ipv6Ranges": [{"cidrIpv6": "::/0"}],
            "userIdGroupPairs": [{"groupId": "sg-9", "userId": "999999999999"}],
            "prefixListIds": [{"prefixListId": "pl-1"}]
        }], "ipPermissionsEgress": [{"ipProtocol": "-1", "ipRanges": ["0.0.0.0/0"]}]}});
        let rows = sg_permissions(&sg, "ingress");
        let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
        assert_eq!(sources, ["0.0.0.0/0", "10.0.0.0/8", "::/0", "sg-9", "pl-1"]);
        assert_eq!(rows[0]["to"], 22);
        assert_eq!(rows[3]["account"], "999999999999");
        let egress = sg_permissions(&sg, "egress");
        assert_eq!(egress.len(), 1);
        assert!(egress[0]["from"].is_null());
    }

    #[test]
    fn acl_grantees_in_every_spelling() {
        let b = json!({"supplementaryConfiguration": {"AccessControlList": {"grantList": [
            {"grantee": "AllUsers", "permission": "Read"},
            {"grantee": {"uri": AUTHENTICATED_USERS}, "permission": "Write"},
            {"grantee": {"id": "abc", "displayName": "x"}, "permission": "FullControl"},
            {"grantee": {"identifier": "x@example.com"}, "permission": "Read"}
        ]}}});
        let g = s3_grants(&b);
        let kinds: Vec<&str> = g.iter().map(|r| r["grantee"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["AllUsers", "AuthenticatedUsers", "CanonicalUser", "Email"]
        );
    }
}
