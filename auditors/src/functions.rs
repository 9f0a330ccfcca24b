//! The helper library as Rhai functions. Every function takes what rules naturally
//! have at hand (parts of the item config) and fails with a clear message on input
//! it cannot read, which surfaces as a rule error.

use std::rc::Rc;

use chrono::{DateTime, Utc};
use rhai::{Array, Dynamic, EvalAltResult, Map};
use serde_json::Value;

use crate::engine::severity_for;
use crate::helpers::{arn, cidr, policy, ports, privesc};
use crate::memo;
use crate::shapes;

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn err<T>(message: String) -> Fallible<T> {
    Err(message.into())
}

/// [`policy_arg`] judged against the boundary in a rule's `ctx` (`ctx.boundary`).
fn policy_in(doc: &Dynamic, ctx: &Map) -> Fallible<Rc<policy::Policy>> {
    let Some(b) = ctx.get("boundary") else {
        return policy_arg(doc);
    };
    memo::policy(doc, b, || {
        let mut p = parse_policy(doc)?;
        p.boundary = rhai::serde::from_dynamic(b)
            .map_err(|e| format!("ctx.boundary is not a boundary: {e}"))?;
        Ok(p)
    })
}

fn public_statements(p: &policy::Policy) -> Array {
    p.internet_accessible_statements()
        .into_iter()
        .map(|i| {
            let s = &p.statements[i];
            let mut m = Map::new();
            m.insert("index".into(), (i as i64).into());
            m.insert(
                "sid".into(),
                s.sid.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            let actions: Array = s
                .action
                .clone()
                .unwrap_or_else(|| vec!["*".into()])
                .into_iter()
                .map(Dynamic::from)
                .collect();
            m.insert("actions".into(), actions.into());
            m.into()
        })
        .collect()
}

/// A policy argument: a parsed document (map) or its text, raw or URL-encoded;
/// parsed once per thread while it stays in `memo`'s table.
fn policy_arg(doc: &Dynamic) -> Fallible<Rc<policy::Policy>> {
    memo::policy(doc, &Dynamic::UNIT, || parse_policy(doc))
}

fn parse_policy(doc: &Dynamic) -> Fallible<policy::Policy> {
    let value: Value = rhai::serde::from_dynamic(doc)?;
    let decoded = guardrail_model::policy::decode_policy_value(&value)
        .map_err(|e| format!("not a policy document: {e}"))?;
    if decoded.is_null() {
        return Ok(policy::Policy::default());
    }
    policy::Policy::parse(&decoded).map_err(|e| format!("malformed policy document: {e}").into())
}

fn to_dynamic(v: &Value) -> Fallible<Dynamic> {
    rhai::serde::to_dynamic(v)
}

fn principal_map(p: &policy::PrincipalRef) -> Dynamic {
    let mut m = Map::new();
    m.insert("kind".into(), p.kind.clone().into());
    m.insert("value".into(), p.value.clone().into());
    m.insert(
        "account".into(),
        p.account.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("statement".into(), (p.statement as i64).into());
    m.insert("restricted".into(), p.restricted.into());
    m.into()
}

fn opt_int(d: &Dynamic) -> Option<i64> {
    if let Ok(i) = d.as_int() {
        return Some(i);
    }
    d.clone()
        .into_string()
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn parse_time(s: &str) -> Fallible<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|n| n.and_utc())
        })
        .map_err(|_| format!("not a timestamp: {s:?} (expected RFC 3339)").into())
}

pub fn register(e: &mut rhai::Engine) {
    // IAM policies.
    e.register_fn(
        "policy_internet_accessible",
        |doc: Dynamic| -> Fallible<bool> {
            Ok(!policy_arg(&doc)?
                .internet_accessible_statements()
                .is_empty())
        },
    );
    e.register_fn(
        "policy_public_statements",
        |doc: Dynamic| -> Fallible<Array> { Ok(public_statements(&*policy_arg(&doc)?)) },
    );
    // With the rule's ctx: organisation and network conditions judged against ours.
    e.register_fn(
        "policy_public_statements",
        |doc: Dynamic, ctx: Map| -> Fallible<Array> {
            Ok(public_statements(&*policy_in(&doc, &ctx)?))
        },
    );
    e.register_fn(
        "policy_cross_account",
        |doc: Dynamic, own: &str, ctx: Map| -> Fallible<Array> {
            Ok(policy_in(&doc, &ctx)?
                .cross_account_principals(own)
                .iter()
                .map(principal_map)
                .collect())
        },
    );
    e.register_fn(
        "policy_full_access",
        |doc: Dynamic, service: &str| -> Fallible<bool> {
            Ok(!policy_arg(&doc)?.full_access_statements(service).is_empty())
        },
    );
    e.register_fn(
        "policy_allows",
        |doc: Dynamic, action: &str, resource: &str| -> Fallible<bool> {
            Ok(policy_arg(&doc)?.allows(action, resource))
        },
    );
    // Which of `actions` the policy allows on `resource`, in the order given: one call
    // where a rule asked action by action.
    e.register_fn(
        "policy_allowed_among",
        |doc: Dynamic, actions: Array, resource: &str| -> Fallible<Array> {
            let p = policy_arg(&doc)?;
            Ok(actions
                .into_iter()
                .filter(|a| {
                    a.read_lock::<rhai::ImmutableString>()
                        .is_some_and(|a| p.allows(a.as_str(), resource))
                })
                .collect())
        },
    );
    e.register_fn("policy_principals", |doc: Dynamic| -> Fallible<Array> {
        Ok(policy_arg(&doc)?
            .principals()
            .iter()
            .map(principal_map)
            .collect())
    });
    e.register_fn(
        "policy_cross_account",
        |doc: Dynamic, own: &str| -> Fallible<Array> {
            Ok(policy_arg(&doc)?
                .cross_account_principals(own)
                .iter()
                .map(principal_map)
                .collect())
        },
    );
    e.register_fn(
        "policy_allowed_actions",
        |doc: Dynamic| -> Fallible<Array> {
            Ok(policy_arg(&doc)?
                .allowed_actions()
                .into_iter()
                .map(Dynamic::from)
                .collect())
        },
    );
    e.register_fn(
        "policy_escalation_paths",
        |doc: Dynamic, account: &str| -> Fallible<Array> {
            let p = policy_arg(&doc)?;
            let found = privesc::escalation_paths(&p, account)?;
            Ok(found
                .iter()
                .map(|g| {
                    let statements: Vec<String> = g
                        .statements
                        .iter()
                        .map(
                            |&i| match p.statements.get(i).and_then(|s| s.sid.as_deref()) {
                                Some(sid) => format!("Statement[{i}] (Sid {sid})"),
                                None => format!("Statement[{i}]"),
                            },
                        )
                        .collect();
                    let actions: Vec<&str> =
                        g.path.steps.iter().map(|s| s.action.as_str()).collect();
                    let mut m = Map::new();
                    m.insert("id".into(), g.path.id.clone().into());
                    m.insert("score".into(), g.path.score.into());
                    m.insert("explanation".into(), g.path.explanation.clone().into());
                    m.insert("reference".into(), g.path.reference.clone().into());
                    m.insert("actions".into(), actions.join(" + ").into());
                    m.insert("statements".into(), statements.join(", ").into());
                    m.into()
                })
                .collect())
        },
    );
    e.register_fn(
        "policy_not_action_grants",
        |doc: Dynamic| -> Fallible<Array> {
            Ok(policy_arg(&doc)?
                .not_action_grants()
                .into_iter()
                .map(|g| {
                    let mut m = Map::new();
                    m.insert("statement".into(), (g.statement as i64).into());
                    m.insert("except".into(), g.except.join(", ").into());
                    m.insert("admin_equivalent".into(), g.admin_equivalent.into());
                    m.into()
                })
                .collect())
        },
    );
    e.register_fn("policy_decode", |doc: Dynamic| -> Fallible<Dynamic> {
        let value: Value = rhai::serde::from_dynamic(&doc)?;
        match guardrail_model::policy::decode_policy_value(&value) {
            Ok(v) => to_dynamic(&v),
            Err(e) => err(format!("not a policy document: {e}")),
        }
    });

    // CIDRs.
    let parse = |s: &str| -> Fallible<cidr::Cidr> {
        cidr::Cidr::parse(s).ok_or_else(|| format!("not a CIDR: {s:?}").into())
    };
    e.register_fn("cidr_valid", |s: &str| cidr::Cidr::parse(s).is_some());
    e.register_fn("cidr_is_internet", move |s: &str| -> Fallible<bool> {
        Ok(parse(s)?.is_internet())
    });
    e.register_fn("cidr_is_public", move |s: &str| -> Fallible<bool> {
        Ok(parse(s)?.is_public())
    });
    e.register_fn("cidr_prefix", move |s: &str| -> Fallible<i64> {
        Ok(i64::from(parse(s)?.prefix()))
    });
    e.register_fn(
        "cidr_contains",
        move |outer: &str, inner: &str| -> Fallible<bool> {
            Ok(parse(outer)?.contains(&parse(inner)?))
        },
    );
    e.register_fn("cidr_within_any", |s: &str, ranges: Array| -> bool {
        let ranges: Vec<String> = ranges
            .into_iter()
            .filter_map(|r| r.into_string().ok())
            .collect();
        cidr::within_any(s, &ranges)
    });

    // Security group rule ports.
    e.register_fn(
        "rule_includes_port",
        |protocol: Dynamic, from: Dynamic, to: Dynamic, port: i64| -> bool {
            let protocol = protocol.to_string();
            ports::rule_includes_port(&protocol, opt_int(&from), opt_int(&to), port)
        },
    );
    // Whether the rule includes any of `ports`: one call where a rule asked port by
    // port (ten database ports were ten calls a row).
    e.register_fn(
        "rule_includes_any_port",
        |protocol: Dynamic, from: Dynamic, to: Dynamic, ports: Array| -> bool {
            let protocol = protocol.to_string();
            let (from, to) = (opt_int(&from), opt_int(&to));
            ports
                .iter()
                .filter_map(|p| p.as_int().ok())
                .any(|port| ports::rule_includes_port(&protocol, from, to, port))
        },
    );
    e.register_fn(
        "rule_port_count",
        |protocol: Dynamic, from: Dynamic, to: Dynamic| -> i64 {
            ports::rule_port_count(&protocol.to_string(), opt_int(&from), opt_int(&to))
        },
    );
    e.register_fn("rule_all_traffic", |protocol: Dynamic| {
        ports::rule_is_all_traffic(&protocol.to_string())
    });

    // ARNs.
    e.register_fn("arn_parse", |s: &str| -> Dynamic {
        match arn::parse(s) {
            Some(a) => {
                let mut m = Map::new();
                m.insert("partition".into(), a.partition.into());
                m.insert("service".into(), a.service.into());
                m.insert("region".into(), a.region.into());
                m.insert("account".into(), a.account.into());
                m.insert("resource".into(), a.resource.into());
                m.into()
            }
            None => Dynamic::UNIT,
        }
    });
    e.register_fn("principal_account", |s: &str| -> Dynamic {
        arn::principal_account(s).map_or(Dynamic::UNIT, Dynamic::from)
    });

    // AWS shapes.
    e.register_fn("iam_policy_documents", |item: Map| -> Fallible<Array> {
        let t = item.get("type").map(|d| d.to_string()).unwrap_or_default();
        let config: Value =
            rhai::serde::from_dynamic(&item.get("config").cloned().unwrap_or(Dynamic::UNIT))?;
        shapes::iam_policy_documents(&t, &config)
            .iter()
            .map(to_dynamic)
            .collect()
    });
    e.register_fn(
        "sg_permissions",
        |config: Dynamic, direction: &str| -> Fallible<Array> {
            let config: Value = rhai::serde::from_dynamic(&config)?;
            shapes::sg_permissions(&config, direction)
                .iter()
                .map(to_dynamic)
                .collect()
        },
    );
    e.register_fn("s3_grants", |config: Dynamic| -> Fallible<Array> {
        let config: Value = rhai::serde::from_dynamic(&config)?;
        shapes::s3_grants(&config).iter().map(to_dynamic).collect()
    });

    // Scores and time.
    e.register_fn("severity_for", |score: i64| severity_for(score).to_owned());
    e.register_fn("days_between", |from: &str, to: &str| -> Fallible<i64> {
        Ok((parse_time(to)? - parse_time(from)?).num_days())
    });
}

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, Limits};

    fn eval<T: Clone + Send + Sync + 'static>(script: &str) -> T {
        let e = Engine::new(Limits::default());
        e.rhai_for_tests()
            .eval::<T>(script)
            .unwrap_or_else(|err| panic!("{script}: {err}"))
    }

    #[test]
    fn helpers_are_callable_from_rules() {
        assert!(eval::<bool>(
            r#"policy_internet_accessible(#{Statement: [#{Effect: "Allow", Principal: "*", Action: "s3:GetObject"}]})"#
        ));
        assert!(!eval::<bool>(
            r#"policy_internet_accessible("%7B%22Statement%22%3A%5B%5D%7D")"#
        ));
        assert!(eval::<bool>(
            r#"policy_full_access(#{Statement: #{Effect: "Allow", Action: "*", Resource: "*"}}, "*")"#
        ));
        assert_eq!(
            eval::<rhai::Array>(
                r#"policy_allowed_among(#{Statement: [#{Effect: "Allow", Action: "ec2:Revoke*", Resource: "*"}]}, ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", 7], "arn:aws:ec2:*:1:security-group/*")"#
            )
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
            ["ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"]
        );
        assert_eq!(
            eval::<i64>(
                r#"policy_cross_account(#{Statement: [#{Effect: "Allow", Principal: #{AWS: "arn:aws:iam::999999999999:root"}, Action: "sts:AssumeRole"}]}, "111111111111").len()"#
            ),
            1
        );
        assert!(eval::<bool>(
            r#"cidr_is_internet("::/0") && cidr_is_public("8.8.8.0/24") && !cidr_is_public("10.1.0.0/16")"#
        ));
        assert!(eval::<bool>(
            r#"cidr_within_any("10.1.2.0/24", ["10.0.0.0/8"])"#
        ));
        assert!(eval::<bool>(
            r#"rule_includes_port("-1", (), (), 22) && rule_includes_port("tcp", 20, 30, 22) && !rule_includes_port("icmp", -1, -1, 22)"#
        ));
        assert_eq!(eval::<i64>(r#"rule_port_count("tcp", 0, 65535)"#), 65536);
        assert!(eval::<bool>(
            r#"rule_includes_any_port("tcp", 3000, 3400, [22, 3306]) && !rule_includes_any_port("tcp", 80, 443, [22, 3306]) && !rule_includes_any_port("tcp", 22, 22, [])"#
        ));
        assert_eq!(
            eval::<rhai::ImmutableString>(
                r#"arn_parse("arn:aws:iam::123456789012:role/x").account"#
            ),
            "123456789012"
        );
        assert_eq!(
            eval::<i64>(r#"days_between("2026-01-01T00:00:00Z", "2026-04-11T00:00:00Z")"#),
            100
        );
        assert_eq!(eval::<rhai::ImmutableString>("severity_for(9)"), "critical");
    }

    #[test]
    fn bad_helper_input_is_an_error() {
        let e = Engine::new(Limits::default());
        let r = e
            .rhai_for_tests()
            .eval::<bool>(r#"cidr_is_public("not a cidr")"#);
        assert!(r.unwrap_err().to_string().contains("not a CIDR"));
        let r = e
            .rhai_for_tests()
            .eval::<bool>(r#"policy_internet_accessible("%7B%22Sta")"#);
        assert!(r.unwrap_err().to_string().contains("not a policy document"));
    }
}
