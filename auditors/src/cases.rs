//! Rule test cases: `<rule>.cases.json` next to `<rule>.rhai`, a list of
//! `{name, item, previous?, context?, network?, expect}`; `expect` lists the findings the rule
//! must return (by key, optionally score and a title fragment), in any order, and
//! nothing else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{ctx_dynamic, item_dynamic, AuditContext, AuditItem};
use crate::engine::{Engine, Rule};

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    item: AuditItem,
    #[serde(default)]
    previous: Option<Value>,
    #[serde(default)]
    context: Option<AuditContext>,
    /// The item's neighbours in its account and region (subnets, route tables,
    /// gateways, ACLs, security groups, instances), for the reachability fact.
    #[serde(default)]
    network: Vec<NetworkNeighbour>,
    expect: Vec<Expected>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkNeighbour {
    #[serde(rename = "type")]
    resource_type: String,
    id: String,
    config: Value,
}

#[derive(Debug, Deserialize)]
struct Expected {
    #[serde(default)]
    key: String,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    title_contains: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub rule_id: String,
    pub case: String,
    pub passed: bool,
    pub message: String,
}

pub fn cases_path(rule: &Rule) -> PathBuf {
    rule.path.with_extension("cases.json")
}

/// Runs a rule's cases. A rule without a cases file fails: every rule carries tests.
pub fn run_cases(engine: &Engine, rule: &Rule) -> Vec<CaseResult> {
    let path = cases_path(rule);
    let result = |case: &str, passed: bool, message: String| CaseResult {
        rule_id: rule.id.clone(),
        case: case.to_owned(),
        passed,
        message,
    };
    let cases: Vec<Case> = match read_cases(&path) {
        Ok(c) => c,
        Err(e) => return vec![result("(cases file)", false, e)],
    };
    if cases.is_empty() {
        return vec![result(
            "(cases file)",
            false,
            format!("{} has no cases", path.display()),
        )];
    }
    cases
        .into_iter()
        .map(|case| {
            let mut item = case.item;
            if item.resource_type.is_empty() {
                item.resource_type = rule.resource_types[0].clone();
            }
            if item.account.is_empty() {
                item.account = "111111111111".into();
            }
            if item.region.is_empty() {
                item.region = "us-east-1".into();
            }
            if item.resource_id.is_empty() {
                item.resource_id = "test-item".into();
            }
            if case.previous.is_some() {
                item.previous = case.previous;
                item.change = "modified".into();
            }
            if crate::network::is_exposed_type(&item.resource_type) {
                let network = crate::network::Network::new(case.network.into_iter().map(|n| {
                    crate::network::NetworkItem {
                        resource_type: n.resource_type,
                        resource_id: n.id,
                        config: n.config,
                    }
                }));
                item.exposure = network.exposure(
                    &item.resource_type,
                    &item.resource_id,
                    &crate::audit::live_config(&item),
                );
            }
            let ctx = case.context.unwrap_or_default();
            let got = engine.evaluate(rule, &item_dynamic(&item), &ctx_dynamic(&ctx, &item));
            match got {
                Err(e) => result(&case.name, false, format!("rule error: {}", e.message)),
                Ok(found) => match compare(&case.expect, &found) {
                    Ok(()) => result(&case.name, true, String::new()),
                    Err(m) => result(&case.name, false, m),
                },
            }
        })
        .collect()
}

fn read_cases(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "no test cases: cannot read {} ({e}); add cases next to the rule",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn compare(expect: &[Expected], found: &[crate::engine::RawFinding]) -> Result<(), String> {
    let mut unmatched: Vec<&crate::engine::RawFinding> = found.iter().collect();
    for e in expect {
        let pos = unmatched.iter().position(|f| {
            f.key == e.key
                && e.score.is_none_or(|s| s == f.score)
                && e.title_contains
                    .as_deref()
                    .is_none_or(|t| f.title.contains(t))
        });
        match pos {
            Some(i) => {
                unmatched.remove(i);
            }
            None => {
                return Err(format!(
                    "expected a finding with key {:?}{}{}; got {}",
                    e.key,
                    e.score
                        .map(|s| format!(" and score {s}"))
                        .unwrap_or_default(),
                    e.title_contains
                        .as_deref()
                        .map(|t| format!(" and title containing {t:?}"))
                        .unwrap_or_default(),
                    describe(found)
                ))
            }
        }
    }
    if !unmatched.is_empty() {
        return Err(format!(
            "unexpected findings: {}",
            describe(&unmatched.into_iter().cloned().collect::<Vec<_>>())
        ));
    }
    Ok(())
}

fn describe(found: &[crate::engine::RawFinding]) -> String {
    if found.is_empty() {
        return "no findings".into();
    }
    found
        .iter()
        .map(|f| format!("[{:?} score {} {:?}]", f.key, f.score, f.title))
        .collect::<Vec<_>>()
        .join(", ")
}
