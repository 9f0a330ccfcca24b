//! The audit pass: pages of due items from storage → rules on both cores → settings →
//! findings in storage, one transaction per page.
//!
//! What is due is durable state in storage (`Store::due_audits`): an item whose latest
//! revision has not been judged, was judged by another rule set, or was judged longer
//! ago than `audit.recheck_hours`. A pass after any sweep (or at `serve` start) therefore
//! catches up on everything an interrupted process left unjudged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use guardrail_auditors::audit::AccountInfo;
use guardrail_auditors::network::{self, Network, NetworkItem};
use guardrail_auditors::{
    AuditContext, AuditItem, AuditPass, AuditSettings, Engine, Limits, RuleErrorKind, RuleSet,
    RuleTally,
};
use guardrail_model::{ChangeKind, ItemKey};
use guardrail_storage::{
    AuditSummary, AuditedAs, DueAudit, DueRule, ItemAudit, NewFinding, RuleHealthRow, RuleResult,
    Store,
};
use serde_json::Value;

use crate::config::Config;

const PAGE: i64 = 500;
const THREADS: usize = 2;
/// Rule errors recorded in full per rule and pass; the rest are counted in the rule's
/// health, so one rule failing on every item cannot write a row per item per pass.
const ERRORS_RECORDED_PER_RULE: u64 = 20;
/// The cursor (over revisions) of the last re-judgement of network neighbours.
const NETWORK_CURSOR: &str = "audit:network-paths";
/// Networks (one per account and region) kept during a pass; items come in id order,
/// so scopes interleave, but a pass rarely touches more than this many at a time.
const NETWORKS_KEPT: usize = 64;

/// The stored networks of the scopes a pass has met, built once per scope and pass.
#[derive(Default)]
struct Networks(HashMap<(String, String), Arc<Network>>);

impl Networks {
    fn get(&mut self, store: &Store, account: &str, region: &str) -> anyhow::Result<Arc<Network>> {
        let key = (account.to_owned(), region.to_owned());
        if let Some(n) = self.0.get(&key) {
            return Ok(n.clone());
        }
        if self.0.len() >= NETWORKS_KEPT {
            self.0.clear();
        }
        let started = Instant::now();
        // Read page by page: a scope can hold tens of thousands of groups, and the
        // network keeps only what reachability needs of each. One type at a time: the
        // type index then gives the rows in id order, where a page over all types had
        // the database join and sort every remaining row of the scope for each page
        // (3.5 s before the first page of a 100k audit could be judged).
        const PAGE: i64 = 1000;
        let failure = RefCell::new(None);
        let pages = network::PATH_TYPES.iter().flat_map(|t| {
            pages(
                move |after| store.scope_items(account, region, &[t], after, PAGE),
                |(item, _)| item.id,
                PAGE,
                &failure,
            )
        });
        // Parsing each item and working out what it contributes is most of the cost,
        // and the judging threads have nothing to do until the first page's network
        // exists: each page is turned into pieces on two threads, then assembled.
        let n = Arc::new(Network::from_pieces(pages.flat_map(|page| {
            let half = page.len().div_ceil(2);
            let mut page = page;
            let second = page.split_off(half);
            let (a, b) = std::thread::scope(|s| {
                let b = s.spawn(|| network_pieces(second));
                (network_pieces(page), b.join())
            });
            // A panic there is a bug: it fails the reader (and so the pass) as one
            // here would, never leaves items out of the network.
            let b = b.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            a.into_iter().chain(b)
        })));
        if let Some(e) = failure.into_inner() {
            return Err(e.into());
        }
        tracing::debug!(
            account,
            region,
            seconds = started.elapsed().as_secs_f64(),
            "network of a scope read for reachability"
        );
        self.0.insert(key, n.clone());
        Ok(n)
    }
}

/// A document's field, moved out (null when absent): the rest is not copied.
fn take_field(doc: &mut Value, field: &str) -> Value {
    doc.as_object_mut()
        .and_then(|m| m.remove(field))
        .unwrap_or(Value::Null)
}

/// What stored items of a scope contribute to its network, each read with its
/// ephemeral facts put back (instance state decides reachability).
fn network_pieces(rows: Vec<(guardrail_storage::ItemRow, String)>) -> Vec<network::Piece> {
    rows.into_iter()
        .filter_map(|(item, document)| {
            let mut doc = serde_json::from_str(&document).unwrap_or(Value::Null);
            let mut live = take_field(&mut doc, "config");
            if let Value::Object(ephemeral) = item.ephemeral_json() {
                guardrail_auditors::audit::apply_ephemeral(&mut live, &ephemeral);
            }
            network::Piece::of(NetworkItem {
                resource_type: item.resource_type,
                resource_id: item.resource_id,
                config: live,
            })
        })
        .collect()
}

/// [`paged`], a page at a time.
fn pages<'a, T: 'a, E: 'a>(
    mut fetch: impl FnMut(i64) -> Result<Vec<T>, E> + 'a,
    id: impl Fn(&T) -> i64 + 'a,
    page: i64,
    failure: &'a RefCell<Option<E>>,
) -> impl Iterator<Item = Vec<T>> + 'a {
    let (mut after, mut done) = (0i64, false);
    std::iter::from_fn(move || {
        if done || failure.borrow().is_some() {
            return None;
        }
        match fetch(after) {
            Ok(next) => {
                done = (next.len() as i64) < page;
                if let Some(last) = next.last() {
                    after = id(last);
                }
                (!next.is_empty()).then_some(next)
            }
            Err(e) => {
                *failure.borrow_mut() = Some(e);
                None
            }
        }
    })
}

/// Every row of a keyset-paged query, page by page: `fetch(after)` returns up to `page`
/// rows with ids above `after`, in id order. A short page is the last one. The first
/// failure ends the rows and is left in `failure`, so the caller can refuse a partial
/// result instead of judging from it; several iterators may share one `failure`, and
/// once it holds an error none of them fetches again. (The audit reads pages; the
/// tests check the paging through this flat view.)
#[cfg(test)]
fn paged<'a, T: 'a, E: 'a>(
    fetch: impl FnMut(i64) -> Result<Vec<T>, E> + 'a,
    id: impl Fn(&T) -> i64 + 'a,
    page: i64,
    failure: &'a RefCell<Option<E>>,
) -> impl Iterator<Item = T> + 'a {
    pages(fetch, id, page, failure).flatten()
}

pub struct Auditor {
    pub engine: Engine,
    pub rules: RuleSet,
    settings: AuditSettings,
    base: AuditContext,
    /// What judges: the rule set's identity plus the settings that change verdicts.
    identity: Arc<str>,
    /// The costliest rules of the last pass, most expensive first (`guardrail bench`
    /// prints them; a debug log line names them after every pass).
    last_costs: std::sync::Mutex<Vec<RuleCost>>,
}

/// What one pass judges with: [`Auditor::pass_context`].
struct PassContext {
    base: AuditContext,
    identity: Arc<str>,
}

/// What one rule cost over an audit pass.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleCost {
    pub rule_id: String,
    pub evaluations: u64,
    pub seconds: f64,
}

/// Whether a pass judges only what is due or every active item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Due,
    Everything,
}

impl Auditor {
    pub fn new(rules_dir: &Path, config: &Config) -> anyhow::Result<Auditor> {
        let engine = Engine::new(Limits::default());
        let rules = RuleSet::load(&engine, rules_dir)
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| "loading rules (set --rules DIR or GUARDRAIL_RULES)".to_owned())?;
        let mut a = Auditor {
            engine,
            rules,
            settings: config.audit.clone(),
            base: AuditContext {
                now: Utc::now(),
                accounts: config.account_infos(),
                internal_cidrs: config.audit.internal_cidrs.clone(),
                boundary: config.audit.boundary(),
            },
            identity: Arc::from(""),
            last_costs: std::sync::Mutex::new(Vec::new()),
        };
        a.identity = a.compute_identity();
        Ok(a)
    }

    fn compute_identity(&self) -> Arc<str> {
        self.identity_with(&self.base)
    }

    /// What judges with `base`: the rules, the settings and what rules know of the
    /// world (accounts, networks). Any change makes every item due again.
    fn identity_with(&self, base: &AuditContext) -> Arc<str> {
        Arc::from(guardrail_model::content_hash(&format!(
            "{}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}",
            self.rules.identity(),
            self.settings.exposure,
            self.settings.overrides,
            self.settings.suppressions,
            base.internal_cidrs,
            base.accounts,
            base.boundary
        )))
    }

    /// The context of one pass: the configured accounts, plus every account the
    /// scheduler sweeps (a job of its own: configured, or found in the organisation by
    /// `[aws] organization`) as ours, since guardrail enters it with our own role.
    /// Without this a role trusted by a sibling account of the organisation read as
    /// trust in an unknown account, a false score-10 finding per account. A configured
    /// `[accounts]` entry keeps its own classification.
    fn pass_context(&self, store: &Store) -> anyhow::Result<PassContext> {
        let mut base = self.base.clone();
        for job in store.jobs()? {
            if !job.account.is_empty() && !base.accounts.contains_key(&job.account) {
                base.accounts.insert(
                    job.account.clone(),
                    AccountInfo {
                        name: String::new(),
                        classification: "ours".into(),
                    },
                );
            }
        }
        let identity = if base.accounts == self.base.accounts {
            self.identity.clone()
        } else {
            self.identity_with(&base)
        };
        Ok(PassContext { base, identity })
    }

    /// Picks up changed rule files; see `RuleSet::reload`. Returns the changed ids.
    /// A change makes every item due for a new audit.
    pub fn reload(&mut self) -> anyhow::Result<Vec<String>> {
        let changed = self
            .rules
            .reload(&self.engine)
            .map_err(|e| anyhow::anyhow!(e))?;
        self.identity = self.compute_identity();
        Ok(changed)
    }

    fn due_rule<'a>(&self, identity: &'a str) -> DueRule<'a> {
        let recheck = chrono::Duration::from_std(self.settings.recheck())
            .unwrap_or(chrono::Duration::hours(24));
        DueRule {
            rules: identity,
            judged_before: Utc::now() - recheck,
        }
    }

    /// Rules that failed to load are recorded as rule errors (visible, never silent),
    /// each once while it stays broken the same way: its health row already saying
    /// `not_loaded` with the same message means it was recorded.
    pub fn record_load_errors(&self, store: &Store) -> anyhow::Result<()> {
        if self.rules.load_errors.is_empty() {
            return Ok(());
        }
        let known = store.rule_health()?;
        let now = Utc::now();
        for e in &self.rules.load_errors {
            let message = e.to_string();
            if known
                .iter()
                .any(|h| h.rule_id == e.rule_id && h.status == "not_loaded" && h.message == message)
            {
                continue;
            }
            store.record_rule_error(&e.path, &format!("does not load: {e}"), now)?;
            store.set_rule_not_loaded(&e.rule_id, &message, now)?;
        }
        Ok(())
    }

    /// Audits every item that is due: stored but not yet judged (by this sweep or by
    /// one that was interrupted), judged by other rules or settings, or not re-checked
    /// for `audit.recheck_hours`.
    pub fn audit_due(&self, store: &Store) -> anyhow::Result<AuditSummary> {
        self.pass(store, Scope::Due)
    }

    /// Re-audits every active item (`guardrail audit`, after a settings change).
    pub fn audit_all(&self, store: &Store) -> anyhow::Result<AuditSummary> {
        self.pass(store, Scope::Everything)
    }

    fn pass(&self, store: &Store, scope: Scope) -> anyhow::Result<AuditSummary> {
        let began = Instant::now();
        self.record_load_errors(store)?;
        let pass = AuditPass::new(&self.rules, self.settings.pass_limits());
        // Rule errors recorded in full so far this pass, per rule.
        let mut recorded_errors: HashMap<String, u64> = HashMap::new();
        let mut total = AuditSummary {
            justifications_lapsed: store.lapse_expired_justifications(Utc::now())?,
            ..AuditSummary::default()
        };
        // A neighbour's change (a route table edit, a security group attached) changes
        // what its neighbours are exposed to: they are judged again.
        let rejudged = store.invalidate_dependents(
            NETWORK_CURSOR,
            network::PATH_TYPES,
            network::EXPOSED_TYPES,
        )?;
        if rejudged > 0 {
            tracing::info!(
                items = rejudged,
                "network paths changed; re-judging the items behind them"
            );
        }
        tracing::debug!(
            seconds = began.elapsed().as_secs_f64(),
            "audit pass: justifications lapsed and network dependents marked"
        );
        let started = Utc::now();
        let context = self.pass_context(store)?;
        let due = match scope {
            Scope::Due => self.due_rule(&context.identity),
            // Everything judged before this pass started is due.
            Scope::Everything => DueRule {
                rules: &context.identity,
                judged_before: started + chrono::Duration::seconds(1),
            },
        };
        total.add(&self.pipelined(store, &pass, &context, &mut recorded_errors, &due, scope)?);
        total.fixed += store.fix_findings_of_deleted_items(Utc::now())?;
        let tallies = pass.tallies();
        total.rule_problems = self.record_health(store, &tallies)?;
        self.note_costs(&tallies);
        Ok(total)
    }

    /// The costliest rules of the last pass (CPU time summed over both judging threads).
    pub fn last_rule_costs(&self) -> Vec<RuleCost> {
        self.last_costs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn note_costs(&self, tallies: &std::collections::BTreeMap<String, RuleTally>) {
        let mut costs: Vec<RuleCost> = tallies
            .iter()
            .filter(|(_, t)| t.evaluations > 0)
            .map(|(id, t)| RuleCost {
                rule_id: id.clone(),
                evaluations: t.evaluations,
                seconds: t.nanos as f64 / 1e9,
            })
            .collect();
        costs.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        let all: f64 = costs.iter().map(|c| c.seconds).sum();
        costs.truncate(10);
        if !costs.is_empty() {
            let text: Vec<String> = costs
                .iter()
                .map(|c| format!("{} {:.2}s/{}", c.rule_id, c.seconds, c.evaluations))
                .collect();
            tracing::debug!(
                all_rules_seconds = all,
                rules = %text.join(", "),
                "costliest rules of the pass"
            );
        }
        *self.last_costs.lock().unwrap_or_else(|e| e.into_inner()) = costs;
    }

    /// The pages of a pass in three stages, one thread each, so both cores stay busy:
    /// reading and preparing the next page, judging this one (on `THREADS` threads), and
    /// recording the last one. Pages pass hand to hand (rendezvous queues), so memory
    /// stays a few pages. The
    /// first failure stops every stage; what was judged but not recorded stays due
    /// (due-ness is storage state), so the next pass judges it again, nothing is lost.
    fn pipelined(
        &self,
        store: &Store,
        pass: &AuditPass,
        context: &PassContext,
        recorded_errors: &mut HashMap<String, u64>,
        due: &DueRule<'_>,
        scope: Scope,
    ) -> anyhow::Result<AuditSummary> {
        let (prepared_tx, prepared_rx) = sync_channel::<anyhow::Result<Prepared>>(0);
        let (judged_tx, judged_rx) = sync_channel::<Vec<ItemAudit>>(0);
        std::thread::scope(|s| {
            let reader = std::thread::Builder::new()
                .name("audit-reader".into())
                .spawn_scoped(s, move || {
                    let mut networks = Networks::default();
                    let mut after = 0;
                    let mut busy = Duration::ZERO;
                    loop {
                        let t = Instant::now();
                        let next = store
                            .due_audits(due, after, PAGE)
                            .map_err(anyhow::Error::from)
                            .and_then(|page| {
                                after = page.last().map_or(after, |d| d.item.id);
                                if page.is_empty() {
                                    return Ok(None);
                                }
                                self.prepare(store, &mut networks, page, scope).map(Some)
                            });
                        busy += t.elapsed();
                        match next {
                            Ok(None) => break,
                            Ok(Some(p)) => {
                                if prepared_tx.send(Ok(p)).is_err() {
                                    break; // judging stopped: its error is reported
                                }
                            }
                            Err(e) => {
                                let _ = prepared_tx.send(Err(e));
                                break;
                            }
                        }
                    }
                    busy
                })?;
            let writer = std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn_scoped(s, move || -> anyhow::Result<(AuditSummary, Duration)> {
                    let mut written = AuditSummary::default();
                    let mut busy = Duration::ZERO;
                    for audits in judged_rx {
                        let t = Instant::now();
                        written.add(&store.record_audits(&audits, Utc::now())?);
                        busy += t.elapsed();
                    }
                    Ok((written, busy))
                })?;
            let mut judged: anyhow::Result<()> = Ok(());
            let (mut waited, mut judging) = (Duration::ZERO, Duration::ZERO);
            let mut t = Instant::now();
            for prepared in prepared_rx.iter() {
                waited += t.elapsed();
                t = Instant::now();
                let audits = prepared.and_then(|p| self.judge(pass, context, recorded_errors, p));
                judging += t.elapsed();
                t = Instant::now();
                match audits {
                    Ok(audits) => {
                        if judged_tx.send(audits).is_err() {
                            break; // the writer failed: its error is the one to report
                        }
                    }
                    Err(e) => {
                        judged = Err(e);
                        break;
                    }
                }
            }
            // Closing the queues ends the other stages: the reader's next send fails, the
            // writer records what it has and returns.
            drop(prepared_rx);
            drop(judged_tx);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the audit writer thread panicked")));
            let read = reader
                .join()
                .map_err(|_| anyhow::anyhow!("the audit reader thread panicked"));
            if let (Ok((_, recording)), Ok(reading)) = (&written, &read) {
                // Where a pass's time went: the slowest stage bounds it.
                tracing::debug!(
                    reading = reading.as_secs_f64(),
                    judging = judging.as_secs_f64(),
                    judging_waited = waited.as_secs_f64(),
                    recording = recording.as_secs_f64(),
                    "audit pass stages (seconds)"
                );
            }
            let written = written.map(|(w, _)| w);
            let read = read.map(|_| ());
            // A storage failure while recording explains the rest; then what judging or
            // reading met.
            let written = written?;
            judged?;
            read?;
            Ok(written)
        })
    }

    /// Stores each rule's health after a pass and returns the problems, one line each.
    fn record_health(
        &self,
        store: &Store,
        tallies: &std::collections::BTreeMap<String, RuleTally>,
    ) -> anyhow::Result<Vec<String>> {
        let now = Utc::now().naive_utc();
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        for e in &self.rules.load_errors {
            problems.push(format!(
                "rule {} does not load, so it judged nothing: {e} (fix the file; `guardrail rules lint` checks it)",
                e.rule_id
            ));
            rows.push(RuleHealthRow {
                rule_id: e.rule_id.clone(),
                status: "not_loaded".into(),
                message: e.to_string(),
                evaluations: 0,
                errors: 0,
                exhausted: 0,
                skipped: 0,
                checked_at: now,
            });
        }
        for rule in self.rules.rules() {
            // A rule whose file is broken now keeps running its last good version;
            // its row above already says it does not load.
            if self.rules.load_errors.iter().any(|e| e.rule_id == rule.id) {
                continue;
            }
            let t = tallies.get(&rule.id).cloned().unwrap_or_default();
            let (status, message) = if t.suspended {
                let m = format!(
                    "suspended after {} of {} evaluations ran out of their budget ({:.1} s in total); {} items were not judged by it",
                    t.exhausted,
                    t.evaluations,
                    t.nanos as f64 / 1e9,
                    t.skipped
                );
                problems.push(format!(
                    "rule {} {m}: make it cheaper (see rules/README.md, budgets)",
                    rule.id
                ));
                ("suspended", m)
            } else if t.errors > 0 {
                let m = format!(
                    "failed on {} of {} items (see `guardrail rules errors`)",
                    t.errors, t.evaluations
                );
                problems.push(format!("rule {} {m}", rule.id));
                ("erroring", m)
            } else {
                ("ok", format!("judged {} items", t.evaluations))
            };
            rows.push(RuleHealthRow {
                rule_id: rule.id.clone(),
                status: status.into(),
                message,
                evaluations: as_i64(t.evaluations),
                errors: as_i64(t.errors),
                exhausted: as_i64(t.exhausted),
                skipped: as_i64(t.skipped),
                checked_at: now,
            });
        }
        store.record_rule_health(&rows)?;
        Ok(problems)
    }

    /// Reads what judging a page needs: each item's previous config (the change being
    /// judged) and, for exposed types, its network exposure.
    fn prepare(
        &self,
        store: &Store,
        networks: &mut Networks,
        page: Vec<DueAudit>,
        scope: Scope,
    ) -> anyhow::Result<Prepared> {
        // The change being judged is everything since the last judged revision, so an
        // audit missed by a crash still sees the change that it missed.
        let prev_keys: Vec<(i64, i64)> = page
            .iter()
            .filter_map(|d| {
                let since = d.audited_version.or(Some(d.revision.version - 1))?;
                (scope == Scope::Due
                    && d.revision.change == ChangeKind::Modified
                    && since >= 1
                    && since < d.revision.version)
                    .then_some((d.item.id, since))
            })
            .collect();
        let previous_docs = store.documents(&prev_keys)?;
        let since: HashMap<i64, i64> = prev_keys.iter().copied().collect();
        let mut items: Vec<AuditItem> = page
            .iter()
            .map(|d| {
                let (item, rev) = (&d.item, &d.revision);
                let mut doc: Value = serde_json::from_str(&rev.document).unwrap_or(Value::Null);
                let previous = since
                    .get(&item.id)
                    .and_then(|v| previous_docs.get(&(item.id, *v)))
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .and_then(|d| d.get("config").cloned())
                    .filter(|c| !c.is_null());
                let judged_now = d.audited_version == Some(rev.version);
                // "created" also covers an item that came back after a deletion.
                // "audit" (a re-judgement, nothing changed) is the rules' own word.
                let change = if scope == Scope::Everything || judged_now {
                    "audit".to_owned()
                } else if previous.is_some() {
                    ChangeKind::Modified.to_string()
                } else {
                    ChangeKind::Created.to_string()
                };
                let ephemeral = match item.ephemeral_json() {
                    Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                AuditItem {
                    item_id: Some(item.id),
                    resource_type: item.resource_type.clone(),
                    resource_id: item.resource_id.clone(),
                    arn: item.arn.clone(),
                    name: item.name.clone(),
                    account: item.account.clone(),
                    region: item.region.clone(),
                    tags: serde_json::from_value(take_field(&mut doc, "tags")).unwrap_or_default(),
                    config: take_field(&mut doc, "config"),
                    change,
                    previous,
                    ephemeral,
                    exposure: None,
                }
            })
            .collect();
        for item in items
            .iter_mut()
            .filter(|i| network::is_exposed_type(&i.resource_type))
        {
            let n = networks.get(store, &item.account, &item.region)?;
            // Judged as it looked at the last sweep (instance state is ephemeral),
            // without copying the config.
            let (t, id) = (&item.resource_type, &item.resource_id);
            item.exposure = guardrail_auditors::audit::with_live_config(
                &mut item.config,
                &item.ephemeral,
                |live| n.exposure(t, id, live),
            );
        }
        Ok(Prepared { page, items })
    }

    /// Runs the rules over a prepared page and applies the settings: what to record.
    fn judge(
        &self,
        pass: &AuditPass,
        context: &PassContext,
        recorded_errors: &mut HashMap<String, u64>,
        Prepared { page, items }: Prepared,
    ) -> anyhow::Result<Vec<ItemAudit>> {
        let qualified: HashMap<&str, bool> = self
            .rules
            .rules()
            .iter()
            .map(|r| (r.id.as_str(), r.exposure_qualifiers))
            .collect();
        let controls: HashMap<&str, String> = self
            .rules
            .rules()
            .iter()
            .map(|r| (r.id.as_str(), r.controls.join(" ")))
            .collect();
        let ctx = AuditContext {
            now: Utc::now(),
            ..context.base.clone()
        };
        let outcomes = pass.audit_items(&self.engine, &self.rules, &items, &ctx, THREADS);
        anyhow::ensure!(
            outcomes.len() == page.len(),
            "internal error: {} audit outcomes for {} items (nothing recorded for this page)",
            outcomes.len(),
            page.len()
        );
        let audits: Vec<ItemAudit> = page
            .iter()
            .zip(outcomes)
            .zip(&items)
            .map(|((d, outcomes), audited)| {
                let item = &d.item;
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
                            Err(e) if e.kind == RuleErrorKind::Suspended => RuleResult::Skipped,
                            Err(e) => {
                                let n = recorded_errors.entry(o.rule_id.clone()).or_default();
                                *n += 1;
                                if *n <= ERRORS_RECORDED_PER_RULE {
                                    RuleResult::Error(e.message)
                                } else {
                                    RuleResult::Skipped
                                }
                            }
                            Ok(found) => RuleResult::Findings(
                                found
                                    .into_iter()
                                    .map(|f| {
                                        let mut j = self.settings.judge(
                                            &o.rule_id,
                                            &item.account,
                                            &resources,
                                            f,
                                        );
                                        if qualified.get(o.rule_id.as_str()) == Some(&true) {
                                            self.settings.qualify(
                                                &o.rule_id,
                                                audited.exposure.as_ref(),
                                                &mut j,
                                            );
                                        }
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
                                            controls: controls
                                                .get(o.rule_id.as_str())
                                                .cloned()
                                                .unwrap_or_default(),
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
                    revision_id: Some(d.revision.id),
                    results,
                    audited_as: Some(AuditedAs {
                        version: d.revision.version,
                        rules: context.identity.clone(),
                    }),
                }
            })
            .collect();
        Ok(audits)
    }
}

/// A page of due items with what judging them needs, read ahead of the judging.
struct Prepared {
    page: Vec<DueAudit>,
    items: Vec<AuditItem>,
}

#[cfg(test)]
mod tests {
    use super::paged;
    use std::cell::RefCell;

    /// A keyset-paged table of ids 1..=n, counting the queries made.
    fn table(n: i64, page: i64, fail_at: Option<i64>) -> (Vec<i64>, usize, Option<String>) {
        let mut queries = 0;
        let failure = RefCell::new(None);
        let rows: Vec<i64> = paged(
            |after| {
                queries += 1;
                if fail_at.is_some_and(|f| after >= f) {
                    return Err(format!("database gone after {after}"));
                }
                Ok(((after + 1)..=n).take(page as usize).collect::<Vec<_>>())
            },
            |id| *id,
            page,
            &failure,
        )
        .collect();
        (rows, queries, failure.into_inner())
    }

    #[test]
    fn every_row_once_across_pages_at_and_around_the_page_size() {
        for n in [0, 1, 999, 1000, 1001, 2000, 2345] {
            let (rows, queries, failure) = table(n, 1000, None);
            assert_eq!(rows, (1..=n).collect::<Vec<_>>(), "{n} rows");
            assert!(failure.is_none());
            // Full pages, then one short (possibly empty) page that ends it.
            assert_eq!(queries as i64, n / 1000 + 1, "{n} rows");
        }
    }

    #[test]
    fn a_failure_mid_way_ends_the_rows_and_is_reported() {
        let (rows, _, failure) = table(2345, 1000, Some(1000));
        assert_eq!(rows.len(), 1000);
        assert_eq!(failure.as_deref(), Some("database gone after 1000"));
    }

    /// The network reads one type after another, each paged, sharing one failure: a
    /// failure in one type stops the types after it too.
    #[test]
    fn chained_pages_share_one_failure_and_stop_at_it() {
        let failure = RefCell::new(None);
        let queries = std::cell::Cell::new(0);
        let rows: Vec<(usize, i64)> = [3_i64, 5, 2]
            .into_iter()
            .enumerate()
            .flat_map(|(t, n)| {
                let (failure, queries) = (&failure, &queries);
                paged(
                    move |after| {
                        queries.set(queries.get() + 1);
                        if t == 1 && after >= 2 {
                            return Err(format!("type {t} failed"));
                        }
                        Ok(((after + 1)..=n).take(2).map(|i| (t, i)).collect())
                    },
                    |(_, i)| *i,
                    2,
                    failure,
                )
            })
            .collect();
        assert_eq!(rows, vec![(0, 1), (0, 2), (0, 3), (1, 1), (1, 2)]);
        assert_eq!(failure.into_inner().as_deref(), Some("type 1 failed"));
        // Type 0: two queries; type 1: two (the second fails); type 2: none.
        assert_eq!(queries.get(), 4);
    }

    /// An account the scheduler sweeps (here, one an organisation's discovery added as
    /// a job) is ours: a role it may assume is no finding, and learning of it makes the
    /// items judged without it due again. Fails without the pass context's accounts.
    #[test]
    fn accounts_swept_as_jobs_are_ours_to_cross_account_rules() {
        use guardrail_storage::{JobSpec, Store};
        let dir = tempfile::tempdir().unwrap();
        let folder = dir
            .path()
            .join("d/AWSLogs/111111111111/Config/us-east-1/2026/11/20/ConfigSnapshot");
        std::fs::create_dir_all(&folder).unwrap();
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sts:AssumeRole"}]});
        let snapshot = serde_json::json!({"fileVersion": "1.0", "configSnapshotId": "s", "configurationItems": [{
            "version": "1.3", "accountId": "111111111111", "configurationItemCaptureTime": "2026-11-20T05:00:00.000Z",
            "configurationItemStatus": "OK", "configurationStateId": "1", "arn": "arn:aws:iam::111111111111:role/deploy",
            "resourceType": "AWS::IAM::Role", "resourceId": "AROAEXAMPLE000000001", "resourceName": "deploy",
            "awsRegion": "global", "tags": {}, "relationships": [],
            "configuration": {"roleName": "deploy", "roleId": "AROAEXAMPLE000000001", "path": "/",
                "arn": "arn:aws:iam::111111111111:role/deploy",
                "assumeRolePolicyDocument": trust.to_string(), "rolePolicyList": [], "attachedManagedPolicies": []},
            "supplementaryConfiguration": {}}]});
        std::fs::write(
            folder.join("111111111111_Config_us-east-1_ConfigSnapshot_20261120T060000Z_x.json"),
            snapshot.to_string(),
        )
        .unwrap();
        let store =
            Store::open(&format!("sqlite://{}", dir.path().join("g.db").display())).unwrap();
        let mut watcher = guardrail_watchers::config_deliveries::ConfigDeliveries::new(
            guardrail_watchers::config_deliveries::LocalDirectory::new(dir.path().join("d")),
        );
        crate::pipeline::sweep_into(&store, &mut watcher, &guardrail_watchers::Quiet).unwrap();
        let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let auditor = super::Auditor::new(&rules, &crate::config::Config::default()).unwrap();
        let first = auditor.audit_all(&store).unwrap();
        assert_eq!((first.items, first.opened), (1, 1), "{first:?}");

        // The organisation's discovery makes 222222222222 a job of the source.
        let now = chrono::Utc::now();
        store
            .sync_jobs(
                &["org".to_owned()],
                &[JobSpec {
                    job: "org/222222222222".into(),
                    source: "org".into(),
                    account: "222222222222".into(),
                    role_arn: Some("arn:aws:iam::222222222222:role/audit".into()),
                    definition: "d".into(),
                    interval: chrono::Duration::seconds(300),
                    first_due: now,
                }],
                now,
            )
            .unwrap();
        let again = auditor.audit_due(&store).unwrap();
        assert_eq!(
            (again.items, again.fixed, again.opened),
            (1, 1, 0),
            "{again:?}"
        );
        // Nothing changes after that: the item was judged with today's accounts.
        assert_eq!(auditor.audit_due(&store).unwrap().items, 0);
    }
}
