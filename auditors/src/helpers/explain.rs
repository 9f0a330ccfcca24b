//! A policy verdict in words, for people who know IAM: per statement, who, what and on
//! which resources, and each condition with whether it restricts who may use the
//! statement and why; then the verdicts rules draw from it (open to anyone, other
//! accounts, administrator access, NotAction, privilege escalation paths). The
//! `guardrail policy explain` command prints it; the reasons come from the same
//! [`Condition::assess`] the verdicts use, so the words cannot drift from the logic.

use serde::Serialize;

use super::policy::{Condition, Effect, Policy, Principals, Statement};
use super::privesc;

#[derive(Debug, Clone, Serialize)]
pub struct ConditionNote {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
    pub restricts: bool,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementNote {
    pub index: usize,
    pub sid: Option<String>,
    pub effect: &'static str,
    pub who: String,
    pub actions: String,
    pub resources: String,
    pub conditions: Vec<ConditionNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub statements: Vec<StatementNote>,
    /// The conclusions, one sentence each.
    pub verdicts: Vec<String>,
}

fn join(list: &[String]) -> String {
    list.join(", ")
}

fn who(s: &Statement) -> String {
    match (&s.principal, &s.not_principal) {
        (_, Some(except)) => format!("anyone except {}", principals_text(except)),
        (Some(p), None) => principals_text(p),
        (None, None) => "the identity the policy is attached to".into(),
    }
}

fn principals_text(p: &Principals) -> String {
    match p {
        Principals::Any => "anyone (Principal \"*\")".into(),
        Principals::Map(m) => m
            .iter()
            .map(|(kind, values)| {
                if values.iter().any(|v| v.trim() == "*") {
                    format!("anyone ({kind}: \"*\")")
                } else {
                    format!("{kind} {}", join(values))
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn actions(s: &Statement) -> String {
    match (&s.action, &s.not_action) {
        (Some(a), _) => join(a),
        (None, Some(except)) => format!("every action except {}", join(except)),
        (None, None) => "no action".into(),
    }
}

fn resources(s: &Statement) -> String {
    match (&s.resource, &s.not_resource) {
        (Some(r), _) => join(r),
        (None, Some(except)) if except.iter().any(|r| r.trim() == "*") => {
            "no resource (NotResource \"*\")".into()
        }
        (None, Some(except)) => format!("every resource except {}", join(except)),
        (None, None) => "the resource the policy is attached to".into(),
    }
}

fn statement_label(p: &Policy, i: usize) -> String {
    match p.statements.get(i).and_then(|s| s.sid.as_deref()) {
        Some(sid) => format!("Statement[{i}] (Sid {sid})"),
        None => format!("Statement[{i}]"),
    }
}

fn labels(p: &Policy, list: &[usize]) -> String {
    list.iter()
        .map(|&i| statement_label(p, i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The analysis of `policy` as owned by `own_account` (`""`: every account is another).
pub fn explain(policy: &Policy, own_account: &str) -> Result<Explanation, String> {
    let statements = policy
        .statements
        .iter()
        .enumerate()
        .map(|(index, s)| StatementNote {
            index,
            sid: s.sid.clone(),
            effect: match s.effect {
                Effect::Allow => "Allow",
                Effect::Deny => "Deny",
            },
            who: who(s),
            actions: actions(s),
            resources: resources(s),
            conditions: s
                .conditions
                .iter()
                .map(|c: &Condition| {
                    let (restricts, why) = if s.effect == Effect::Deny {
                        c.assess_as_deny(&policy.boundary)
                    } else {
                        c.assess(&policy.boundary)
                    };
                    ConditionNote {
                        operator: c.operator.clone(),
                        key: c.key.clone(),
                        values: c.values.clone(),
                        restricts,
                        why,
                    }
                })
                .collect(),
        })
        .collect();
    let mut verdicts = Vec::new();
    let open = policy.internet_accessible_statements();
    let anonymous: Vec<usize> = policy
        .statements
        .iter()
        .enumerate()
        .filter(|(_, s)| s.effect == Effect::Allow && s.is_anonymous())
        .map(|(i, _)| i)
        .collect();
    if !open.is_empty() {
        verdicts.push(format!(
            "Open to anyone, on the internet included: {} (no condition restricts who, and no Deny removes or bounds it).",
            labels(policy, &open)
        ));
    } else if !anonymous.is_empty() {
        verdicts.push(format!(
            "Not open to anyone: {} name everyone, but a condition restricts who or a Deny removes or bounds it.",
            labels(policy, &anonymous)
        ));
    }
    let admin = policy.full_access_statements("*");
    if !admin.is_empty() {
        verdicts.push(format!(
            "Full administrator access (every action on every resource): {}.",
            labels(policy, &admin)
        ));
    }
    for g in policy.not_action_grants() {
        verdicts.push(format!(
            "{} allows every action except {}{}.",
            statement_label(policy, g.statement),
            join(&g.except),
            if g.admin_equivalent {
                "; what remains includes iam:* on every resource, so it is administrator-equivalent"
            } else {
                "; the exceptions keep it short of iam:*"
            }
        ));
    }
    for p in policy.cross_account_principals(own_account) {
        let account = p.account.clone().unwrap_or_default();
        verdicts.push(format!(
            "Account {account} has access through {} ({} {}){}.",
            statement_label(policy, p.statement),
            p.kind,
            p.value,
            if p.restricted {
                ", restricted further by a condition"
            } else {
                ", with no further restriction"
            }
        ));
    }
    for g in privesc::escalation_paths(policy, own_account)? {
        verdicts.push(format!(
            "Privilege escalation {}: the holder {} (needs {}; granted by {}; {}).",
            g.path.id,
            g.path.explanation,
            g.path
                .steps
                .iter()
                .map(|s| s.action.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            labels(policy, &g.statements),
            g.path.reference
        ));
    }
    if verdicts.is_empty() {
        verdicts.push("Nothing to report: no statement is open to anyone, grants administrator access, reaches another account or opens a privilege escalation path.".into());
    }
    Ok(Explanation {
        statements,
        verdicts,
    })
}

impl Explanation {
    /// The analysis as indented text, one statement per block, verdicts last.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.statements {
            let sid = s
                .sid
                .as_deref()
                .map(|x| format!(" (Sid {x})"))
                .unwrap_or_default();
            out.push_str(&format!("Statement[{}]{sid}: {}\n", s.index, s.effect));
            out.push_str(&format!("  who:       {}\n", s.who));
            out.push_str(&format!("  actions:   {}\n", s.actions));
            out.push_str(&format!("  resources: {}\n", s.resources));
            for c in &s.conditions {
                out.push_str(&format!(
                    "  condition: {} {} {}: {} ({})\n",
                    c.operator,
                    c.key,
                    c.values.join(", "),
                    if c.restricts {
                        "restricts"
                    } else {
                        "does not restrict"
                    },
                    c.why
                ));
            }
        }
        out.push_str("Verdicts:\n");
        for v in &self.verdicts {
            out.push_str(&format!("  - {v}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_verdict_names_statements_principals_and_why_conditions_count() {
        let p = Policy::parse(&json!({"Statement": [
            {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
             "Condition": {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
             "Condition": {"StringEquals": {"aws:SourceAccount": "222222222222"}}}
        ]}))
        .unwrap();
        let e = explain(&p, "111111111111").unwrap();
        let c = &e.statements[0].conditions[0];
        assert!(!c.restricts && c.why.contains("absent"), "{c:?}");
        let c = &e.statements[1].conditions[0];
        assert!(c.restricts && c.why.contains("222222222222"), "{c:?}");
        let text = e.to_text();
        assert!(
            text.contains("Open to anyone, on the internet included: Statement[0] (Sid Public)"),
            "{text}"
        );
        assert!(
            text.contains("Account 222222222222 has access through Statement[1]"),
            "{text}"
        );
        let quiet = Policy::parse(
            &json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}),
        )
        .unwrap();
        assert!(explain(&quiet, "1").unwrap().verdicts[0].starts_with("Nothing to report"));
    }
}
