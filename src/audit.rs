//! The audit pass: pages of items from storage → rules on both cores → settings →
//! findings in storage, one transaction per page.

use std::path::Path;

use anyhow::Context as _;
use chrono::Utc;
use guardrail_auditors::{
    audit_items, AuditContext, AuditItem, AuditSettings, Engine, Limits, RuleSet,
};
use guardrail_model::ItemKey;
use guardrail_storage::{
    AuditSummary, ItemAudit, ItemRow, NewFinding, RevisionRow, RuleResult, Store,
};
use serde_json::Value;

use crate::config::Config;

const PAGE: i64 = 500;
const THREADS: usize = 2;

/// One item to audit, with the revision being judged and the config before it.
struct Audited {
    item: ItemRow,
    revision: RevisionRow,
    previous: Option<Value>,
    change: String,
}

pub struct Auditor {
    pub engine: Engine,
    pub rules: RuleSet,
    settings: AuditSettings,
    notify: guardrail_notify::NotifySettings,
    base: AuditContext,
}

impl Auditor {
    pub fn new(rules_dir: &Path, config: &Config) -> anyhow::Result<Auditor> {
        let engine = Engine::new(Limits::default());
        let rules = RuleSet::load(&engine, rules_dir)
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| "loading rules (set --rules DIR or GUARDRAIL_RULES)".to_owned())?;
        Ok(Auditor {
            engine,
            rules,
            settings: config.audit.clone(),
            notify: config.notify.clone(),
            base: AuditContext {
                now: Utc::now(),
                accounts: config.account_infos(),
                internal_cidrs: config.audit.internal_cidrs.clone(),
            },
        })
    }

    /// Picks up changed rule files; see `RuleSet::reload`. Returns the changed ids.
    pub fn reload(&mut self) -> anyhow::Result<Vec<String>> {
        self.rules
            .reload(&self.engine)
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Rules that failed to load are recorded as rule errors: visible, never silent.
    fn record_load_errors(&self, store: &Store) -> anyhow::Result<()> {
        for e in &self.rules.load_errors {
            store.record_rule_error(&e.path, &format!("does not load: {e}"), Utc::now())?;
        }
        Ok(())
    }

    /// Audits what one sweep created or modified.
    pub fn audit_sweep(&self, store: &Store, sweep_id: i64) -> anyhow::Result<AuditSummary> {
        self.record_load_errors(store)?;
        let mut total = AuditSummary::default();
        let mut after = 0;
        loop {
            let mut page = store.sweep_changes(sweep_id, after, PAGE, false)?;
            let Some(last) = page.last() else { break };
            after = last.0.id;
            // A sweep over several deliveries can change an item more than once; judge
            // its latest revision (pages are in revision order, so keep the last).
            let mut seen = std::collections::HashSet::new();
            page.reverse();
            page.retain(|(_, item)| seen.insert(item.id));
            page.reverse();
            let prev_keys: Vec<(i64, i64)> = page
                .iter()
                .filter(|(r, _)| r.change == "modified")
                .map(|(r, i)| (i.id, r.version - 1))
                .collect();
            let previous = store.documents(&prev_keys)?;
            let batch: Vec<Audited> = page
                .into_iter()
                .map(|(r, i)| {
                    let previous = previous
                        .get(&(i.id, r.version - 1))
                        .and_then(|d| serde_json::from_str::<Value>(d).ok())
                        .and_then(|d| d.get("config").cloned());
                    // "created" also covers an item that came back after a deletion.
                    let change = r.change.clone();
                    Audited {
                        item: i,
                        revision: r,
                        previous,
                        change,
                    }
                })
                .collect();
            total.add(&self.audit_batch(store, batch)?);
        }
        total.fixed += store.fix_findings_of_deleted_items(Utc::now())?;
        self.queue_notifications(store)?;
        Ok(total)
    }

    /// Queues notifications for the finding events just recorded. Only writes outbox
    /// rows: sending is the dispatcher's job and never slows a sweep down.
    fn queue_notifications(&self, store: &Store) -> anyhow::Result<()> {
        if !self.notify.routes.is_empty() {
            guardrail_notify::route_events(store, &self.notify, Utc::now())?;
        }
        Ok(())
    }

    /// Re-audits every active item (after a rule or settings change).
    pub fn audit_all(&self, store: &Store) -> anyhow::Result<AuditSummary> {
        self.record_load_errors(store)?;
        let mut total = AuditSummary {
            justifications_lapsed: store.lapse_expired_justifications(Utc::now())?,
            ..AuditSummary::default()
        };
        let mut after = 0;
        loop {
            let page = store.latest_page(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.0.id;
            let batch = page
                .into_iter()
                .map(|(item, revision)| Audited {
                    item,
                    revision,
                    previous: None,
                    change: "audit".into(),
                })
                .collect();
            total.add(&self.audit_batch(store, batch)?);
        }
        total.fixed += store.fix_findings_of_deleted_items(Utc::now())?;
        self.queue_notifications(store)?;
        Ok(total)
    }

    fn audit_batch(&self, store: &Store, batch: Vec<Audited>) -> anyhow::Result<AuditSummary> {
        let items: Vec<AuditItem> = batch
            .iter()
            .map(
                |Audited {
                     item,
                     revision: rev,
                     previous,
                     change,
                 }| {
                    let doc: Value = serde_json::from_str(&rev.document).unwrap_or(Value::Null);
                    AuditItem {
                        item_id: Some(item.id),
                        resource_type: item.resource_type.clone(),
                        resource_id: item.resource_id.clone(),
                        arn: item.arn.clone(),
                        name: item.name.clone(),
                        account: item.account.clone(),
                        region: item.region.clone(),
                        tags: serde_json::from_value(doc.get("tags").cloned().unwrap_or_default())
                            .unwrap_or_default(),
                        config: doc.get("config").cloned().unwrap_or(Value::Null),
                        change: change.clone(),
                        previous: previous.clone(),
                    }
                },
            )
            .collect();
        let ctx = AuditContext {
            now: Utc::now(),
            ..self.base.clone()
        };
        let outcomes = audit_items(&self.engine, &self.rules, &items, &ctx, THREADS);
        let audits: Vec<ItemAudit> = batch
            .iter()
            .zip(outcomes)
            .map(
                |(
                    Audited {
                        item,
                        revision: rev,
                        ..
                    },
                    outcomes,
                )| {
                    let resources: Vec<&str> = [
                        Some(item.resource_id.as_str()),
                        item.name.as_deref(),
                        item.arn.as_deref(),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let results = outcomes
                        .into_iter()
                        .filter(|o| !self.settings.disabled(&o.rule_id, &item.account))
                        .map(|o| {
                            let result = match o.result {
                                Err(e) => RuleResult::Error(e.message),
                                Ok(found) => RuleResult::Findings(
                                    found
                                        .into_iter()
                                        .map(|f| {
                                            let j = self.settings.judge(
                                                &o.rule_id,
                                                &item.account,
                                                &resources,
                                                f,
                                            );
                                            NewFinding {
                                                key: j.finding.key,
                                                kind: j.finding.kind,
                                                title: j.finding.title,
                                                score: j.finding.score,
                                                rule_score: j.rule_score,
                                                severity: j.finding.severity,
                                                detail: j.finding.detail,
                                                remediation: j.finding.remediation,
                                                suppressed_by: j.suppressed_by,
                                            }
                                        })
                                        .collect(),
                                ),
                            };
                            (o.rule_id, result)
                        })
                        .collect();
                    ItemAudit {
                        item_id: item.id,
                        key: ItemKey {
                            account: item.account.clone(),
                            region: item.region.clone(),
                            resource_type: item.resource_type.clone(),
                            resource_id: item.resource_id.clone(),
                        },
                        revision_id: Some(rev.id),
                        results,
                    }
                },
            )
            .collect();
        Ok(store.record_audits(&audits, Utc::now())?)
    }
}
