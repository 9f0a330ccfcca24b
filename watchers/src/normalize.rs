//! Per-resource-type normalisation of configuration documents.
//!
//! Three kinds of rule, each a list of paths into the item document
//! (`configuration.rolePolicyList[].policyDocument`, where `[]` means every element):
//! policy documents to decode, fields that are ephemeral, and lists whose order carries
//! no meaning. A new resource type is one more entry in [`RULES`]; a type with no entry
//! still gets the generic treatment (embedded JSON parsed, tag lists sorted).

use guardrail_model::canonical::{sort_unordered, sort_unordered_by};
use guardrail_model::policy::decode_policy_value;
use serde_json::{Map, Value};

/// How one resource type is normalised.
pub struct TypeRules {
    pub resource_type: &'static str,
    pub policies: &'static [&'static str],
    pub ephemeral: &'static [&'static str],
    pub unordered: &'static [&'static str],
}

/// Applied to every type.
const GENERIC_UNORDERED: &[&str] = &["configuration.tags", "relationships"];

pub const RULES: &[TypeRules] = &[
    TypeRules {
        resource_type: "AWS::IAM::User",
        policies: &["configuration.userPolicyList[].policyDocument"],
        ephemeral: &[
            "configuration.passwordLastUsed",
            "configuration.accessKeys[].lastUsed",
            "configuration.accessKeys[].lastUsedDate",
            "configuration.accessKeys[].lastUsedRegion",
            "configuration.accessKeys[].lastUsedService",
        ],
        unordered: &[
            "configuration.userPolicyList",
            "configuration.groupList",
            "configuration.attachedManagedPolicies",
            "configuration.accessKeys",
            "configuration.mfaDevices",
        ],
    },
    TypeRules {
        resource_type: "AWS::SQS::Queue",
        policies: &["configuration.Policy"],
        // Counters, not configuration (the API lister leaves them out; AWS Config may not).
        ephemeral: &[
            "configuration.ApproximateNumberOfMessages",
            "configuration.ApproximateNumberOfMessagesNotVisible",
            "configuration.ApproximateNumberOfMessagesDelayed",
        ],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::SNS::Topic",
        policies: &["configuration.Policy"],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::Lambda::Function",
        policies: &["supplementaryConfiguration.Policy"],
        ephemeral: &[],
        unordered: &[
            "configuration.vpcConfig.subnetIds",
            "configuration.vpcConfig.securityGroupIds",
        ],
    },
    TypeRules {
        resource_type: "AWS::ECR::Repository",
        policies: &["configuration.RepositoryPolicyText"],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::OpenSearch::Domain",
        policies: &["configuration.AccessPolicies"],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::Elasticsearch::Domain",
        policies: &["configuration.accessPolicies"],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::EFS::FileSystem",
        policies: &["configuration.FileSystemPolicy"],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::S3::AccessPoint",
        policies: &["configuration.Policy"],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::EC2::VPNConnection",
        policies: &[],
        // Tunnel state moves without a configuration change.
        ephemeral: &[
            "configuration.vgwTelemetry[].status",
            "configuration.vgwTelemetry[].statusMessage",
            "configuration.vgwTelemetry[].lastStatusChange",
            "configuration.vgwTelemetry[].acceptedRouteCount",
        ],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::KMS::Key",
        policies: &["supplementaryConfiguration.Policy"],
        ephemeral: &[],
        unordered: &["configuration.encryptionAlgorithms"],
    },
    TypeRules {
        resource_type: "AWS::IAM::Role",
        policies: &[
            "configuration.assumeRolePolicyDocument",
            "configuration.rolePolicyList[].policyDocument",
            "configuration.instanceProfileList[].roles[].assumeRolePolicyDocument",
        ],
        ephemeral: &[
            "configuration.roleLastUsed",
            "configuration.instanceProfileList[].roles[].roleLastUsed",
        ],
        unordered: &[
            "configuration.rolePolicyList",
            "configuration.attachedManagedPolicies",
            "configuration.instanceProfileList",
        ],
    },
    TypeRules {
        resource_type: "AWS::IAM::Group",
        policies: &["configuration.groupPolicyList[].policyDocument"],
        ephemeral: &[],
        unordered: &[
            "configuration.groupPolicyList",
            "configuration.attachedManagedPolicies",
        ],
    },
    TypeRules {
        resource_type: "AWS::IAM::Policy",
        policies: &["configuration.policyVersionList[].document"],
        // Approximate counts that move whenever anyone attaches the policy anywhere.
        ephemeral: &[
            "configuration.attachmentCount",
            "configuration.permissionsBoundaryUsageCount",
        ],
        unordered: &["configuration.policyVersionList"],
    },
    TypeRules {
        resource_type: "AWS::S3::Bucket",
        policies: &["supplementaryConfiguration.BucketPolicy.policyText"],
        // Display names of canonical users are references AWS fills in (and is
        // retiring); the canonical ids beside them are the durable identity.
        ephemeral: &[
            "configuration.owner.displayName",
            "supplementaryConfiguration.AccessControlList.owner.displayName",
            "supplementaryConfiguration.AccessControlList.grantList[].grantee.displayName",
        ],
        unordered: &[
            "supplementaryConfiguration.AccessControlList.grantList",
            "supplementaryConfiguration.ServerSideEncryptionConfiguration.rules",
            "supplementaryConfiguration.BucketLifecycleConfiguration.rules",
        ],
    },
    TypeRules {
        resource_type: "AWS::S3::AccountPublicAccessBlock",
        policies: &[],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::EC2::SecurityGroup",
        policies: &[],
        ephemeral: &[],
        // Inner lists first: the outer sort then sees normalised rules.
        unordered: &[
            "configuration.ipPermissions[].ipRanges",
            "configuration.ipPermissions[].ipv4Ranges",
            "configuration.ipPermissions[].ipv6Ranges",
            "configuration.ipPermissions[].prefixListIds",
            "configuration.ipPermissions[].userIdGroupPairs",
            "configuration.ipPermissionsEgress[].ipRanges",
            "configuration.ipPermissionsEgress[].ipv4Ranges",
            "configuration.ipPermissionsEgress[].ipv6Ranges",
            "configuration.ipPermissionsEgress[].prefixListIds",
            "configuration.ipPermissionsEgress[].userIdGroupPairs",
            "configuration.ipPermissions",
            "configuration.ipPermissionsEgress",
        ],
    },
    TypeRules {
        resource_type: "AWS::EC2::Instance",
        policies: &[],
        ephemeral: &[
            "configuration.state",
            "configuration.stateReason",
            "configuration.stateTransitionReason",
            "configuration.launchTime",
            "configuration.usageOperationUpdateTime",
            "configuration.networkInterfaces[].attachment.attachTime",
            "configuration.networkInterfaces[].attachment.status",
            "configuration.networkInterfaces[].status",
            "configuration.blockDeviceMappings[].ebs.attachTime",
            "configuration.blockDeviceMappings[].ebs.status",
        ],
        unordered: &[
            "configuration.securityGroups",
            "configuration.networkInterfaces[].groups",
            "configuration.networkInterfaces[].privateIpAddresses",
            "configuration.networkInterfaces",
            "configuration.blockDeviceMappings",
            "configuration.productCodes",
        ],
    },
    TypeRules {
        resource_type: "AWS::EC2::VPC",
        policies: &[],
        ephemeral: &[
            "configuration.state",
            "configuration.cidrBlockAssociationSet[].cidrBlockState",
            "configuration.ipv6CidrBlockAssociationSet[].ipv6CidrBlockState",
        ],
        unordered: &[
            "configuration.cidrBlockAssociationSet",
            "configuration.ipv6CidrBlockAssociationSet",
        ],
    },
    TypeRules {
        resource_type: "AWS::EC2::Subnet",
        policies: &[],
        ephemeral: &[
            "configuration.state",
            "configuration.availableIpAddressCount",
        ],
        unordered: &["configuration.ipv6CidrBlockAssociationSet"],
    },
    TypeRules {
        resource_type: "AWS::EC2::NetworkAcl",
        policies: &[],
        ephemeral: &[],
        unordered: &["configuration.entries", "configuration.associations"],
    },
    TypeRules {
        resource_type: "AWS::EC2::RouteTable",
        policies: &[],
        ephemeral: &[
            "configuration.routes[].state",
            "configuration.associations[].associationState",
        ],
        unordered: &["configuration.routes", "configuration.associations"],
    },
    TypeRules {
        resource_type: "AWS::EC2::InternetGateway",
        policies: &[],
        ephemeral: &["configuration.attachments[].state"],
        unordered: &["configuration.attachments"],
    },
    TypeRules {
        resource_type: "AWS::EC2::Snapshot",
        policies: &[],
        ephemeral: &[],
        unordered: &["supplementaryConfiguration.CreateVolumePermissions"],
    },
    TypeRules {
        resource_type: "AWS::EC2::Image",
        policies: &[],
        ephemeral: &[],
        unordered: &["supplementaryConfiguration.LaunchPermissions"],
    },
    TypeRules {
        resource_type: "AWS::SecretsManager::Secret",
        policies: &["supplementaryConfiguration.ResourcePolicy"],
        ephemeral: &[],
        unordered: &[],
    },
    TypeRules {
        resource_type: "AWS::EC2::Volume",
        policies: &[],
        ephemeral: &[
            "configuration.state",
            "configuration.attachments[].attachTime",
            "configuration.attachments[].state",
        ],
        unordered: &["configuration.attachments"],
    },
];

pub fn rules_for(resource_type: &str) -> Option<&'static TypeRules> {
    RULES.iter().find(|r| r.resource_type == resource_type)
}

/// A normalisation failure, naming the path that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizeError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Normalises `doc` (the durable part of an item) in place for `resource_type`, and
/// returns the ephemeral fields taken out of it, keyed by their concrete path. A policy
/// document that cannot be read is an error.
pub fn normalize(
    resource_type: &str,
    doc: &mut Value,
) -> Result<Map<String, Value>, NormalizeError> {
    let (ephemeral, mut unreadable) = normalize_lenient(resource_type, doc);
    match unreadable.is_empty() {
        true => Ok(ephemeral),
        false => Err(unreadable.remove(0)),
    }
}

/// [`normalize`], but a policy document that cannot be read stays as it was (raw) and
/// is returned among the failures, so the rest of the item is still normalised.
pub fn normalize_lenient(
    resource_type: &str,
    doc: &mut Value,
) -> (Map<String, Value>, Vec<NormalizeError>) {
    let rules = rules_for(resource_type);
    let mut ephemeral = Map::new();
    let mut failures = Vec::new();
    if let Some(rules) = rules {
        for path in rules.policies {
            for_each_at(doc, path, &mut |steps, v| match decode_policy_value(v) {
                Ok(decoded) => *v = decoded,
                Err(e) => failures.push(NormalizeError {
                    path: render(steps),
                    message: format!("broken IAM policy document: {e}"),
                }),
            });
        }
        // Sort first, comparing elements without their ephemeral fields (so those
        // cannot reorder a list), then take the ephemeral fields out: their recorded
        // paths then index the list as stored, and rules can put them back
        // (`item.live`).
        for path in rules.unordered {
            let inner: Vec<String> = rules
                .ephemeral
                .iter()
                .filter_map(|e| e.strip_prefix(path)?.strip_prefix("[]."))
                .map(str::to_owned)
                .collect();
            if inner.is_empty() {
                sort_at(doc, path);
            } else {
                for_each_at(doc, path, &mut |_, v| {
                    if let Value::Array(items) = v {
                        sort_unordered_by(items, |e| {
                            let mut drop = Map::new();
                            for p in &inner {
                                take_at(e, p, &mut drop);
                            }
                        });
                    }
                });
            }
        }
        for path in rules.ephemeral {
            take_at(doc, path, &mut ephemeral);
        }
    }
    for path in GENERIC_UNORDERED {
        sort_at(doc, path);
    }
    (ephemeral, failures)
}

/// Parses string values that hold JSON objects or arrays (AWS Config writes most
/// supplementary configuration that way). Other strings stay strings.
pub fn parse_embedded_json(map: &mut Map<String, Value>) {
    for v in map.values_mut() {
        if let Value::String(s) = v {
            let t = s.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                    *v = parsed;
                }
            }
        }
    }
}

/// One step of a concrete path.
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// Renders a concrete path (`a.b[2].c`); only done when a caller needs it.
fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Calls `f` with every value at `path`, and the steps that lead to it.
fn for_each_at<'p>(doc: &mut Value, path: &'p str, f: &mut dyn FnMut(&[Step<'p>], &mut Value)) {
    fn walk<'p>(
        v: &mut Value,
        mut segs: std::str::Split<'p, char>,
        steps: &mut Vec<Step<'p>>,
        f: &mut dyn FnMut(&[Step<'p>], &mut Value),
    ) {
        let Some(seg) = segs.next() else {
            f(steps, v);
            return;
        };
        let (name, each) = match seg.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (seg, false),
        };
        let Some(child) = v.as_object_mut().and_then(|m| m.get_mut(name)) else {
            return;
        };
        steps.push(Step::Key(name));
        if each {
            if let Value::Array(items) = child {
                for (i, item) in items.iter_mut().enumerate() {
                    steps.push(Step::Index(i));
                    walk(item, segs.clone(), steps, f);
                    steps.pop();
                }
            }
        } else if !child.is_null() {
            walk(child, segs, steps, f);
        }
        steps.pop();
    }
    walk(doc, path.split('.'), &mut Vec::new(), f);
}

/// Removes every value at `path`, recording it in `out` under its concrete path.
fn take_at(doc: &mut Value, path: &str, out: &mut Map<String, Value>) {
    let Some((parent, field)) = path.rsplit_once('.') else {
        if let Some(v) = doc.as_object_mut().and_then(|m| m.remove(path)) {
            out.insert(path.to_owned(), v);
        }
        return;
    };
    for_each_at(doc, parent, &mut |steps, v| {
        if let Some(taken) = v.as_object_mut().and_then(|m| m.remove(field)) {
            out.insert(format!("{}.{field}", render(steps)), taken);
        }
    });
}

fn sort_at(doc: &mut Value, path: &str) {
    for_each_at(doc, path, &mut |_, v| {
        if let Value::Array(items) = v {
            sort_unordered(items);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_policies_are_decoded_and_last_used_is_ephemeral() {
        let mut doc = json!({"configuration": {
            "roleName": "r",
            "assumeRolePolicyDocument": "%7B%22Statement%22%3A%5B%5D%7D",
            "rolePolicyList": [
                {"policyName": "b", "policyDocument": "{\"Statement\":[]}"},
                {"policyName": "a", "policyDocument": "%7B%7D"}
            ],
            "roleLastUsed": {"lastUsedDate": "2026-11-01T00:00:00Z"}
        }});
        let eph = normalize("AWS::IAM::Role", &mut doc).unwrap();
        let c = &doc["configuration"];
        assert_eq!(c["assumeRolePolicyDocument"], json!({"Statement": []}));
        assert_eq!(c["rolePolicyList"][0]["policyName"], "a");
        assert_eq!(c["rolePolicyList"][0]["policyDocument"], json!({}));
        assert!(c.get("roleLastUsed").is_none());
        assert_eq!(
            eph["configuration.roleLastUsed"]["lastUsedDate"],
            "2026-11-01T00:00:00Z"
        );
    }

    #[test]
    fn broken_policy_names_its_path() {
        let mut doc = json!({"configuration": {"userPolicyList": [
            {"policyName": "ok", "policyDocument": "%7B%7D"},
            {"policyName": "bad", "policyDocument": "%7B%22Statement"}
        ]}});
        let err = normalize("AWS::IAM::User", &mut doc).unwrap_err();
        assert_eq!(err.path, "configuration.userPolicyList[1].policyDocument");
        assert!(err.message.contains("broken IAM policy document"), "{err}");
    }

    #[test]
    fn security_group_rule_order_does_not_matter() {
        let mut a = json!({"configuration": {"ipPermissions": [
            {"fromPort": 443, "ipRanges": ["10.0.0.0/8", "0.0.0.0/0"]},
            {"fromPort": 22, "ipRanges": ["192.168.0.0/16"]}
        ]}});
        let mut b = json!({"configuration": {"ipPermissions": [
            {"fromPort": 22, "ipRanges": ["192.168.0.0/16"]},
            {"fromPort": 443, "ipRanges": ["0.0.0.0/0", "10.0.0.0/8"]}
        ]}});
        normalize("AWS::EC2::SecurityGroup", &mut a).unwrap();
        normalize("AWS::EC2::SecurityGroup", &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn ephemeral_paths_index_lists_as_stored_and_never_reorder_them() {
        let keys = |a: &str, b: &str| {
            json!({"configuration": {"userName": "u", "accessKeys": [
                {"accessKeyId": "AKIAZZZ", "status": "Active", "lastUsedDate": a},
                {"accessKeyId": "AKIAAAA", "status": "Active", "lastUsedDate": b}
            ]}})
        };
        let mut doc = keys("2026-01-01", "2026-11-30");
        let eph = normalize("AWS::IAM::User", &mut doc).unwrap();
        let stored = &doc["configuration"]["accessKeys"];
        // Whatever order storage chose, the recorded path names the key it belongs to.
        for i in 0..2 {
            let id = stored[i]["accessKeyId"].as_str().unwrap();
            let used = &eph[&format!("configuration.accessKeys[{i}].lastUsedDate")];
            let want = if id == "AKIAZZZ" {
                "2026-01-01"
            } else {
                "2026-11-30"
            };
            assert_eq!(used, want, "{eph:?}");
        }
        // Swapping only the ephemeral values changes nothing durable.
        let mut other = keys("2026-11-30", "2026-01-01");
        normalize("AWS::IAM::User", &mut other).unwrap();
        assert_eq!(doc, other);
    }

    #[test]
    fn instance_state_and_s3_grant_names_are_ephemeral() {
        let mut i = json!({"configuration": {"state": {"name": "running"}, "instanceType": "t3.micro",
            "networkInterfaces": [{"attachment": {"attachTime": "x", "deviceIndex": 0}}]}});
        let eph = normalize("AWS::EC2::Instance", &mut i).unwrap();
        assert_eq!(eph.len(), 2);
        assert!(eph.contains_key("configuration.networkInterfaces[0].attachment.attachTime"));
        assert_eq!(
            i["configuration"]["networkInterfaces"][0]["attachment"],
            json!({"deviceIndex": 0})
        );

        let mut b = json!({"supplementaryConfiguration": {"AccessControlList": {
            "owner": {"id": "abc", "displayName": "me"},
            "grantList": [{"grantee": {"id": "abc", "displayName": "me"}, "permission": "FullControl"}]}}});
        let eph = normalize("AWS::S3::Bucket", &mut b).unwrap();
        assert_eq!(eph.len(), 2);
        assert_eq!(
            b["supplementaryConfiguration"]["AccessControlList"]["grantList"][0]["grantee"],
            json!({"id": "abc"})
        );
    }

    #[test]
    fn unknown_types_get_generic_treatment() {
        let mut doc = json!({"configuration": {"tags": [{"key": "b"}, {"key": "a"}]}});
        let eph = normalize("AWS::Lambda::Function", &mut doc).unwrap();
        assert!(eph.is_empty());
        assert_eq!(doc["configuration"]["tags"][0]["key"], "a");
    }

    #[test]
    fn embedded_json_strings_are_parsed() {
        let mut m = json!({"A": "{\"x\":1}", "B": "plain", "C": "[1", "D": true})
            .as_object()
            .unwrap()
            .clone();
        parse_embedded_json(&mut m);
        assert_eq!(m["A"], json!({"x": 1}));
        assert_eq!(m["B"], "plain");
        assert_eq!(m["C"], "[1");
    }
}
