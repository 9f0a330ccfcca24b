//! Building what a rule sees, once per item, and running an item's rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rhai::{Dynamic, Map};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::engine::{Engine, RawFinding, RuleError, RuleSet};
use crate::shapes;

/// One item to audit: its identity, current config, and the previous revision's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditItem {
    #[serde(default)]
    pub item_id: Option<i64>,
    #[serde(rename = "type", default)]
    pub resource_type: String,
    #[serde(rename = "id", default)]
    pub resource_id: String,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub config: Value,
    /// The config of the revision before this one; `None` for a new item.
    #[serde(default)]
    pub previous: Option<Value>,
    /// "created", "modified", or "audit" (a re-audit without a new revision).
    #[serde(default = "default_change")]
    pub change: String,
}

fn default_change() -> String {
    "audit".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccountInfo {
    #[serde(default)]
    pub name: String,
    /// ours, friendly, third_party (anything else reads as unknown).
    #[serde(default)]
    pub classification: String,
}

/// What rules know about the world beyond the item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditContext {
    #[serde(default = "Utc::now")]
    pub now: DateTime<Utc>,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountInfo>,
    #[serde(default)]
    pub internal_cidrs: Vec<String>,
}

impl Default for AuditContext {
    fn default() -> Self {
        AuditContext {
            now: Utc::now(),
            accounts: BTreeMap::new(),
            internal_cidrs: Vec::new(),
        }
    }
}

fn dynamic(v: &Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

/// Views of the config that several rules need, computed once per item instead of
/// once per rule: `facts.ingress` / `facts.egress` (security group rows, see
/// `sg_permissions`), `facts.policies` (IAM policy documents, see
/// `iam_policy_documents`), `facts.grants` (S3 ACL grants, see `s3_grants`).
fn facts(item: &AuditItem) -> Value {
    let mut f = serde_json::Map::new();
    match item.resource_type.as_str() {
        "AWS::EC2::SecurityGroup" => {
            f.insert(
                "ingress".into(),
                Value::Array(shapes::sg_permissions(&item.config, "ingress")),
            );
            f.insert(
                "egress".into(),
                Value::Array(shapes::sg_permissions(&item.config, "egress")),
            );
        }
        "AWS::IAM::User" | "AWS::IAM::Group" | "AWS::IAM::Role" | "AWS::IAM::Policy" => {
            f.insert(
                "policies".into(),
                Value::Array(shapes::iam_policy_documents(
                    &item.resource_type,
                    &item.config,
                )),
            );
        }
        "AWS::S3::Bucket" => {
            f.insert(
                "grants".into(),
                Value::Array(shapes::s3_grants(&item.config)),
            );
        }
        _ => {}
    }
    Value::Object(f)
}

/// The `item` argument of `check(item, ctx)`.
pub fn item_dynamic(item: &AuditItem) -> Dynamic {
    let diff: Vec<Value> = match &item.previous {
        Some(prev) => guardrail_model::diff(prev, &item.config)
            .into_iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect(),
        None => Vec::new(),
    };
    dynamic(&json!({
        "type": item.resource_type,
        "id": item.resource_id,
        "arn": item.arn,
        "name": item.name,
        "account": item.account,
        "region": item.region,
        "tags": item.tags,
        "config": item.config,
        "previous": item.previous,
        "diff": diff,
        "change": item.change,
        "facts": facts(item),
    }))
}

/// The `ctx` argument: the item's own account, every known account, internal CIDRs,
/// the audit time, and the items linked to this one.
pub fn ctx_dynamic(ctx: &AuditContext, item: &AuditItem) -> Dynamic {
    let own = ctx
        .accounts
        .get(&item.account)
        .cloned()
        .unwrap_or(AccountInfo {
            name: item.account.clone(),
            classification: "ours".into(),
        });
    let mut accounts = Map::new();
    for (id, info) in &ctx.accounts {
        accounts.insert(
            id.as_str().into(),
            dynamic(&json!({"name": info.name, "classification": info.classification})),
        );
    }
    let linked: Vec<Value> = item
        .config
        .get("relationships")
        .and_then(Value::as_array)
        .map(|rels| {
            rels.iter()
                .map(|r| {
                    json!({
                        "type": r.get("resourceType"),
                        "id": r.get("resourceId"),
                        "name": r.get("resourceName"),
                        "relationship": r.get("relationshipName"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert(
        "account".into(),
        dynamic(
            &json!({"id": item.account, "name": own.name, "classification": own.classification}),
        ),
    );
    m.insert("accounts".into(), accounts.into());
    m.insert("internal_cidrs".into(), dynamic(&json!(ctx.internal_cidrs)));
    m.insert("now".into(), ctx.now.to_rfc3339().into());
    m.insert("linked".into(), dynamic(&Value::Array(linked)));
    m.into()
}

/// The result of one rule on one item.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    pub rule_id: String,
    pub result: Result<Vec<RawFinding>, RuleError>,
}

/// Runs every rule for the item's type. Inputs are converted once, not once per rule.
pub fn audit_item(
    engine: &Engine,
    rules: &RuleSet,
    item: &AuditItem,
    ctx: &AuditContext,
) -> Vec<RuleOutcome> {
    let mut rules_for = rules.for_type(&item.resource_type).peekable();
    if rules_for.peek().is_none() {
        return Vec::new();
    }
    // Shared and read-only: each rule gets a cheap handle instead of a deep copy, and
    // none can change what the next one sees.
    let item_d = item_dynamic(item).into_read_only().into_shared();
    let ctx_d = ctx_dynamic(ctx, item).into_read_only().into_shared();
    rules_for
        .map(|rule| RuleOutcome {
            rule_id: rule.id.clone(),
            result: engine.evaluate(rule, &item_d, &ctx_d),
        })
        .collect()
}

/// Audits many items on `threads` threads; results come back in input order.
pub fn audit_items(
    engine: &Engine,
    rules: &RuleSet,
    items: &[AuditItem],
    ctx: &AuditContext,
    threads: usize,
) -> Vec<Vec<RuleOutcome>> {
    let threads = threads.max(1).min(items.len().max(1));
    if threads == 1 {
        return items
            .iter()
            .map(|i| audit_item(engine, rules, i, ctx))
            .collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|i| audit_item(engine, rules, i, ctx))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    // A panic inside a helper is a bug; report it per item rather than abort.
                    Vec::new()
                })
            })
            .collect()
    })
}
