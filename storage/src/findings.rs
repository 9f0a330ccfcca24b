//! Findings and their lifecycle.
//!
//! A finding's identity is its fingerprint: rule id + item identity + the rule's own
//! key, never the score or the wording, so rewording a rule or overriding a score never
//! reopens anything. Its row lives forever; state moves open → fixed → open again
//! (reopened, counted) and every move is an event. A justification (who, why, until
//! when) survives re-audits and score changes and lapses at its expiry.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guardrail_model::{
    content_hash, transition, FindingEvent, FindingState, ItemKey, RefusedTransition, Trigger,
};
use serde::Serialize;

use crate::query::{page_limit, utc_serde};
use crate::schema::{finding_events, findings, items, rule_errors};
use crate::{with_conn, write_tx, StorageError, Store};

/// What the auditors concluded for one finding (scores already overridden).
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    pub key: String,
    pub kind: String,
    pub title: String,
    pub score: i64,
    pub rule_score: i64,
    pub severity: String,
    pub detail: String,
    pub remediation: String,
    /// The suppression pattern that matches, if any.
    pub suppressed_by: Option<String>,
    /// The rule's compliance controls (`cis-aws-3.0:5.2`), space-separated.
    pub controls: String,
}

#[derive(Debug, Clone)]
pub enum RuleResult {
    Findings(Vec<NewFinding>),
    /// The rule failed on this item; recorded as a rule error.
    Error(String),
    /// The rule did not judge this item (suspended for the pass, or its errors are
    /// already reported in the pass's counts): nothing recorded, findings untouched.
    Skipped,
}

/// One item's audit: every rule that ran on it and what each concluded.
#[derive(Debug, Clone)]
pub struct ItemAudit {
    pub item_id: i64,
    pub key: ItemKey,
    pub revision_id: Option<i64>,
    pub results: Vec<(String, RuleResult)>,
    /// Which revision (by version) and rule set this audit judged: recorded on the
    /// item in the same transaction as the findings, so "audited" is never claimed
    /// for an audit that was not stored. `None` records findings only.
    pub audited_as: Option<AuditedAs>,
}

#[derive(Debug, Clone)]
pub struct AuditedAs {
    pub version: i64,
    /// `RuleSet::identity` of the rules that judged.
    pub rules: std::sync::Arc<str>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditSummary {
    pub items: u64,
    pub opened: u64,
    pub reopened: u64,
    pub fixed: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub suppressed: u64,
    pub justifications_lapsed: u64,
    pub rule_errors: u64,
    /// Rules that did not judge as they should in this pass (not loaded, erroring,
    /// suspended), one line each naming the rule and the fix.
    pub rule_problems: Vec<String>,
}

impl AuditSummary {
    pub fn add(&mut self, o: &AuditSummary) {
        self.rule_problems.extend(o.rule_problems.iter().cloned());
        self.items += o.items;
        self.opened += o.opened;
        self.reopened += o.reopened;
        self.fixed += o.fixed;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.suppressed += o.suppressed;
        self.justifications_lapsed += o.justifications_lapsed;
        self.rule_errors += o.rule_errors;
    }
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = findings)]
pub struct FindingRow {
    pub id: i64,
    pub fingerprint: String,
    pub item_id: i64,
    pub rule_id: String,
    #[serde(rename = "key")]
    pub finding_key: String,
    pub kind: String,
    #[diesel(deserialize_as = String)]
    pub state: FindingState,
    pub score: i64,
    pub rule_score: i64,
    pub severity: String,
    pub title: String,
    pub detail: String,
    pub remediation: String,
    #[serde(with = "utc_serde")]
    pub first_seen_at: NaiveDateTime,
    #[serde(with = "utc_serde")]
    pub last_seen_at: NaiveDateTime,
    #[serde(with = "utc_serde")]
    pub opened_at: NaiveDateTime,
    #[serde(with = "utc_serde::option")]
    pub fixed_at: Option<NaiveDateTime>,
    pub first_revision_id: Option<i64>,
    pub last_revision_id: Option<i64>,
    pub reopen_count: i64,
    pub justified_by: Option<String>,
    pub justification: Option<String>,
    #[serde(with = "utc_serde::option")]
    pub justified_at: Option<NaiveDateTime>,
    #[serde(with = "utc_serde::option")]
    pub justified_until: Option<NaiveDateTime>,
    pub suppressed_by: Option<String>,
    /// The rule's compliance controls as of the last audit, space-separated.
    #[serde(skip)]
    pub controls: String,
}

impl FindingRow {
    /// The compliance controls (`cis-aws-3.0:5.2`) of the rule that made it.
    pub fn control_list(&self) -> Vec<&str> {
        self.controls.split_whitespace().collect()
    }
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = finding_events)]
pub struct FindingEventRow {
    pub id: i64,
    pub finding_id: i64,
    #[serde(with = "utc_serde")]
    pub at: NaiveDateTime,
    #[diesel(deserialize_as = String)]
    pub event: FindingEvent,
    pub actor: Option<String>,
    pub detail: String,
    pub revision_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = rule_errors)]
pub struct RuleErrorRow {
    pub id: i64,
    pub rule_id: String,
    pub item_id: Option<i64>,
    pub revision_id: Option<i64>,
    pub message: String,
    #[serde(with = "utc_serde")]
    pub at: NaiveDateTime,
}

/// The stable identity of a finding.
pub fn fingerprint(rule_id: &str, item: &ItemKey, key: &str) -> String {
    content_hash(&format!(
        "{rule_id}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{key}",
        item.account, item.region, item.resource_type, item.resource_id
    ))
}

#[derive(Insertable)]
#[diesel(table_name = findings)]
struct InsertFinding<'a> {
    fingerprint: String,
    item_id: i64,
    rule_id: &'a str,
    finding_key: &'a str,
    kind: &'a str,
    state: &'static str,
    score: i64,
    rule_score: i64,
    severity: &'a str,
    title: &'a str,
    detail: &'a str,
    remediation: &'a str,
    first_seen_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
    opened_at: NaiveDateTime,
    first_revision_id: Option<i64>,
    last_revision_id: Option<i64>,
    reopen_count: i64,
    suppressed_by: Option<&'a str>,
    account: &'a str,
    resource_type: &'a str,
    controls: &'a str,
}

#[derive(Insertable)]
#[diesel(table_name = finding_events)]
struct InsertEvent {
    finding_id: i64,
    at: NaiveDateTime,
    event: &'static str,
    actor: Option<String>,
    detail: String,
    revision_id: Option<i64>,
}

#[derive(AsChangeset)]
#[diesel(table_name = findings, treat_none_as_null = true)]
struct FindingUpdate<'a> {
    state: &'static str,
    score: i64,
    rule_score: i64,
    severity: &'a str,
    title: &'a str,
    detail: &'a str,
    remediation: &'a str,
    last_seen_at: NaiveDateTime,
    opened_at: NaiveDateTime,
    fixed_at: Option<NaiveDateTime>,
    last_revision_id: Option<i64>,
    reopen_count: i64,
    justified_by: Option<&'a str>,
    justification: Option<&'a str>,
    justified_at: Option<NaiveDateTime>,
    justified_until: Option<NaiveDateTime>,
    suppressed_by: Option<&'a str>,
    controls: &'a str,
}

fn event(
    finding_id: i64,
    at: NaiveDateTime,
    name: FindingEvent,
    detail: String,
    revision_id: Option<i64>,
) -> InsertEvent {
    InsertEvent {
        finding_id,
        at,
        event: name.as_str(),
        actor: None,
        detail,
        revision_id,
    }
}

/// Works out, for one existing finding seen again, its next state and what to say.
fn next_state(
    existing: &FindingRow,
    new: &NewFinding,
    now: NaiveDateTime,
) -> (FindingState, Option<FindingEvent>) {
    let trigger = Trigger::Reported {
        suppressed: new.suppressed_by.is_some(),
        justification_live: existing.justified_until.is_none_or(|u| u > now),
    };
    // Reported applies to every state.
    transition(existing.state, trigger).unwrap_or((existing.state, None))
}

/// A refused move, as the error the CLI and API show for finding `id`.
fn refused(id: i64, e: RefusedTransition) -> StorageError {
    StorageError::NotFound(format!("finding {id} {e}"))
}

impl Store {
    /// Applies a batch of item audits in one transaction.
    /// If an item appears more than once, only its last audit counts.
    pub fn record_audits(
        &self,
        audits: &[ItemAudit],
        now: DateTime<Utc>,
    ) -> Result<AuditSummary, StorageError> {
        let now = now.naive_utc();
        let last_of: HashMap<i64, usize> = audits
            .iter()
            .enumerate()
            .map(|(i, a)| (a.item_id, i))
            .collect();
        let audits: Vec<&ItemAudit> = audits
            .iter()
            .enumerate()
            .filter(|(i, a)| last_of.get(&a.item_id) == Some(i))
            .map(|(_, a)| a)
            .collect();
        let ids: Vec<i64> = audits.iter().map(|a| a.item_id).collect();
        let returning = self.backend() == crate::Backend::Postgres;
        write_tx!(self, conn => {
            let existing: Vec<FindingRow> = findings::table
                .filter(findings::item_id.eq_any(&ids))
                .select(FindingRow::as_select())
                .load(conn)?;
            let mut by_item_rule: HashMap<(i64, &str), Vec<&FindingRow>> = HashMap::new();
            for f in &existing {
                by_item_rule.entry((f.item_id, f.rule_id.as_str())).or_default().push(f);
            }
            let mut s = AuditSummary { items: audits.len() as u64, ..AuditSummary::default() };
            let mut events: Vec<InsertEvent> = Vec::new();
            // New findings are inserted together after the loop (a few statements, not
            // one per finding); their Opened events wait here for the ids.
            let mut new_findings: Vec<InsertFinding> = Vec::new();
            let mut opened_events: Vec<(usize, usize)> = Vec::new();
            for audit in audits.iter().copied() {
                for (rule_id, result) in &audit.results {
                    let found = match result {
                        RuleResult::Error(message) => {
                            diesel::insert_into(rule_errors::table)
                                .values((
                                    rule_errors::rule_id.eq(rule_id),
                                    rule_errors::item_id.eq(Some(audit.item_id)),
                                    rule_errors::revision_id.eq(audit.revision_id),
                                    rule_errors::message.eq(message),
                                    rule_errors::at.eq(now),
                                ))
                                .execute(conn)?;
                            s.rule_errors += 1;
                            // Existing findings of a failing rule are left as they are:
                            // an error is not evidence that anything was fixed.
                            continue;
                        }
                        RuleResult::Skipped => continue,
                        RuleResult::Findings(f) => f,
                    };
                    let current = by_item_rule.get(&(audit.item_id, rule_id.as_str())).cloned().unwrap_or_default();
                    let mut matched: Vec<i64> = Vec::new();
                    // One finding per key: a caller that passes a key twice gets the
                    // first, never a unique-constraint failure that loses the batch.
                    let mut keys_seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
                    for new in found {
                        if !keys_seen.insert(new.key.as_str()) {
                            continue;
                        }
                        let print = fingerprint(rule_id, &audit.key, &new.key);
                        let Some(old) = current.iter().find(|f| f.fingerprint == print) else {
                            let state = if new.suppressed_by.is_some() { FindingState::Suppressed } else { FindingState::Open }.as_str();
                            new_findings.push(InsertFinding {
                                    fingerprint: print,
                                    item_id: audit.item_id,
                                    rule_id,
                                    finding_key: &new.key,
                                    kind: &new.kind,
                                    state,
                                    score: new.score,
                                    rule_score: new.rule_score,
                                    severity: &new.severity,
                                    title: &new.title,
                                    detail: &new.detail,
                                    remediation: &new.remediation,
                                    first_seen_at: now,
                                    last_seen_at: now,
                                    opened_at: now,
                                    first_revision_id: audit.revision_id,
                                    last_revision_id: audit.revision_id,
                                    reopen_count: 0,
                                    suppressed_by: new.suppressed_by.as_deref(),
                                controls: &new.controls,
                                    // The item's identity, as in its fingerprint.
                                    account: &audit.key.account,
                                    resource_type: &audit.key.resource_type,
                                });
                            let what = match &new.suppressed_by {
                                Some(p) => { s.suppressed += 1; format!("opened suppressed by {p}: {}", new.title) }
                                None => { s.opened += 1; new.title.clone() }
                            };
                            opened_events.push((events.len(), new_findings.len() - 1));
                            events.push(event(0, now, FindingEvent::Opened, what, audit.revision_id));
                            continue;
                        };
                        matched.push(old.id);
                        let (state, said) = next_state(old, new, now);
                        let reopened = said == Some(FindingEvent::Reopened);
                        let lapsed = said == Some(FindingEvent::JustificationExpired);
                        let keep_justification = state == FindingState::Justified;
                        let score_changed = old.score != new.score;
                        let text_changed = old.title != new.title || old.detail != new.detail || old.remediation != new.remediation || old.severity != new.severity || old.rule_score != new.rule_score || old.controls != new.controls;
                        let revision_changed = audit.revision_id.is_some() && old.last_revision_id != audit.revision_id;
                        if !(said.is_some() || score_changed || text_changed || revision_changed || old.suppressed_by != new.suppressed_by) {
                            s.unchanged += 1;
                            continue;
                        }
                        diesel::update(findings::table.find(old.id))
                            .set(FindingUpdate {
                                state: state.as_str(),
                                score: new.score,
                                rule_score: new.rule_score,
                                severity: &new.severity,
                                title: &new.title,
                                detail: &new.detail,
                                remediation: &new.remediation,
                                last_seen_at: now,
                                opened_at: if reopened { now } else { old.opened_at },
                                fixed_at: if reopened { None } else { old.fixed_at },
                                last_revision_id: audit.revision_id.or(old.last_revision_id),
                                reopen_count: old.reopen_count + i64::from(reopened),
                                justified_by: if keep_justification { old.justified_by.as_deref() } else { None },
                                justification: if keep_justification { old.justification.as_deref() } else { None },
                                justified_at: if keep_justification { old.justified_at } else { None },
                                justified_until: if keep_justification { old.justified_until } else { None },
                                suppressed_by: new.suppressed_by.as_deref(),
                                controls: &new.controls,
                            })
                            .execute(conn)?;
                        if let Some(name) = said {
                            events.push(event(old.id, now, name, new.title.clone(), audit.revision_id));
                        }
                        if score_changed {
                            events.push(event(old.id, now, FindingEvent::ScoreChanged, format!("{} → {}", old.score, new.score), audit.revision_id));
                        }
                        if reopened { s.reopened += 1 } else if lapsed { s.justifications_lapsed += 1 } else { s.updated += 1 }
                    }
                    // State findings no longer reported are fixed; change findings stay.
                    for old in current.iter().filter(|f| !matched.contains(&f.id) && f.kind == "state" && f.state != FindingState::Fixed) {
                        diesel::update(findings::table.find(old.id))
                            .set((
                                findings::state.eq(FindingState::Fixed.as_str()),
                                findings::fixed_at.eq(Some(now)),
                                findings::last_revision_id.eq(audit.revision_id.or(old.last_revision_id)),
                            ))
                            .execute(conn)?;
                        events.push(event(old.id, now, FindingEvent::Fixed, "the configuration no longer triggers the rule".into(), audit.revision_id));
                        s.fixed += 1;
                    }
                }
            }
            // 22 columns a row: 200 rows stay far below either backend's bind limit.
            let mut id_of: HashMap<String, i64> = HashMap::new();
            for chunk in new_findings.chunks(200) {
                let ids: Vec<(String, i64)> = if returning {
                    // One statement; the ids come back by fingerprint (RETURNING's
                    // row order is not promised).
                    diesel::insert_into(findings::table)
                        .values(chunk)
                        .returning((findings::fingerprint, findings::id))
                        .get_results(conn)?
                } else {
                    // Diesel runs a multi-row insert with RETURNING on SQLite one row at
                    // a time (a 100k audit took 2 s longer): insert, then read back.
                    diesel::insert_into(findings::table).values(chunk).execute(conn)?;
                    let prints: Vec<&str> = chunk.iter().map(|f| f.fingerprint.as_str()).collect();
                    findings::table
                        .filter(findings::fingerprint.eq_any(&prints))
                        .select((findings::fingerprint, findings::id))
                        .load(conn)?
                };
                id_of.extend(ids);
            }
            for (e, f) in &opened_events {
                let print = &new_findings[*f].fingerprint;
                events[*e].finding_id = *id_of.get(print).ok_or_else(|| {
                    StorageError::Corrupt(format!("finding {print} was inserted but cannot be read back"))
                })?;
            }
            for chunk in events.chunks(500) {
                diesel::insert_into(finding_events::table).values(chunk).execute(conn)?;
            }
            // Mark the items audited, one statement per (version, rule set); the
            // version guard keeps a revision stored meanwhile due for its own audit.
            let mut marks: HashMap<(i64, &str), Vec<i64>> = HashMap::new();
            for a in audits.iter() {
                if let Some(m) = &a.audited_as {
                    marks.entry((m.version, &*m.rules)).or_default().push(a.item_id);
                }
            }
            for ((version, rules), ids) in marks {
                diesel::update(
                    items::table
                        .filter(items::id.eq_any(&ids))
                        .filter(items::version.eq(version)),
                )
                .set((
                    items::audited_version.eq(Some(version)),
                    items::audited_rules.eq(Some(rules)),
                    items::audited_at.eq(Some(now)),
                ))
                .execute(conn)?;
            }
            Ok(s)
        })
    }

    /// Records a rule that could not be loaded at all (not tied to an item).
    pub fn record_rule_error(
        &self,
        rule_id: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        write_tx!(self, conn => {
            diesel::insert_into(rule_errors::table)
                .values((
                    rule_errors::rule_id.eq(rule_id),
                    rule_errors::item_id.eq(None::<i64>),
                    rule_errors::revision_id.eq(None::<i64>),
                    rule_errors::message.eq(message),
                    rule_errors::at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    /// Fixes the open findings of items that were deleted.
    pub fn fix_findings_of_deleted_items(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        let now = now.naive_utc();
        write_tx!(self, conn => {
            let gone: Vec<i64> = findings::table
                .inner_join(items::table)
                .filter(items::active.eq(false))
                .filter(findings::state.ne(FindingState::Fixed.as_str()))
                .filter(findings::kind.eq("state"))
                .select(findings::id)
                .load(conn)?;
            for chunk in gone.chunks(500) {
                diesel::update(findings::table.filter(findings::id.eq_any(chunk)))
                    .set((findings::state.eq(FindingState::Fixed.as_str()), findings::fixed_at.eq(Some(now))))
                    .execute(conn)?;
                let events: Vec<InsertEvent> = chunk.iter().map(|&id| event(id, now, FindingEvent::Fixed, "the resource was deleted".into(), None)).collect();
                diesel::insert_into(finding_events::table).values(&events).execute(conn)?;
            }
            Ok(gone.len() as u64)
        })
    }

    /// Justified findings whose `until` has passed go back to open.
    pub fn lapse_expired_justifications(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        let now = now.naive_utc();
        write_tx!(self, conn => {
            let expired: Vec<(i64, Option<String>, Option<String>)> = findings::table
                .filter(findings::state.eq(FindingState::Justified.as_str()))
                .filter(findings::justified_until.lt(now))
                .select((findings::id, findings::justified_by, findings::suppressed_by))
                .load(conn)?;
            for (id, by, suppressed_by) in &expired {
                let lapsed = Trigger::JustificationLapsed { suppressed: suppressed_by.is_some() };
                let (state, said) = transition(FindingState::Justified, lapsed).map_err(|e| refused(*id, e))?;
                diesel::update(findings::table.find(*id))
                    .set((
                        findings::state.eq(state.as_str()),
                        findings::justified_by.eq(None::<String>),
                        findings::justification.eq(None::<String>),
                        findings::justified_at.eq(None::<NaiveDateTime>),
                        findings::justified_until.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)?;
                let who = by.clone().unwrap_or_default();
                if let Some(said) = said {
                    diesel::insert_into(finding_events::table)
                        .values(event(*id, now, said, format!("justified by {who} until its expiry"), None))
                        .execute(conn)?;
                }
            }
            Ok(expired.len() as u64)
        })
    }

    /// Justifies an open (or suppressed) finding: who, why, until when.
    pub fn justify(
        &self,
        id: i64,
        who: &str,
        reason: &str,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<FindingRow, StorageError> {
        if reason.trim().is_empty() {
            return Err(StorageError::NotFound(
                "a justification needs a reason (--reason)".into(),
            ));
        }
        if reason.contains('\0') || who.contains('\0') {
            return Err(StorageError::Invalid(
                "a justification may not contain NUL characters".into(),
            ));
        }
        let now = now.naive_utc();
        let until = until.map(|u| u.naive_utc());
        if until.is_some_and(|u| u <= now) {
            return Err(StorageError::NotFound(
                "--until must be in the future".into(),
            ));
        }
        let f = self.finding(id)?.ok_or_else(|| {
            StorageError::NotFound(format!("no finding {id}; see `guardrail findings`"))
        })?;
        let (state, said) = transition(f.state, Trigger::Justify).map_err(|e| refused(id, e))?;
        write_tx!(self, conn => {
            diesel::update(findings::table.find(id))
                .set((
                    findings::state.eq(state.as_str()),
                    findings::justified_by.eq(Some(who)),
                    findings::justification.eq(Some(reason)),
                    findings::justified_at.eq(Some(now)),
                    findings::justified_until.eq(until),
                ))
                .execute(conn)?;
            let detail = match until {
                Some(u) => format!("{reason} (until {})", u.and_utc().to_rfc3339()),
                None => reason.to_owned(),
            };
            diesel::insert_into(finding_events::table)
                .values(InsertEvent { finding_id: id, at: now, event: said.unwrap_or(FindingEvent::Justified).as_str(), actor: Some(who.to_owned()), detail, revision_id: None })
                .execute(conn)?;
            Ok(())
        })?;
        self.finding(id)?
            .ok_or_else(|| StorageError::NotFound(format!("finding {id} vanished")))
    }

    /// Removes a justification: the finding is open again.
    pub fn unjustify(
        &self,
        id: i64,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<FindingRow, StorageError> {
        let now = now.naive_utc();
        let f = self.finding(id)?.ok_or_else(|| {
            StorageError::NotFound(format!("no finding {id}; see `guardrail findings`"))
        })?;
        let unjustify = Trigger::Unjustify {
            suppressed: f.suppressed_by.is_some(),
        };
        let (state, said) = transition(f.state, unjustify).map_err(|e| refused(id, e))?;
        write_tx!(self, conn => {
            diesel::update(findings::table.find(id))
                .set((
                    findings::state.eq(state.as_str()),
                    findings::justified_by.eq(None::<String>),
                    findings::justification.eq(None::<String>),
                    findings::justified_at.eq(None::<NaiveDateTime>),
                    findings::justified_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            diesel::insert_into(finding_events::table)
                .values(InsertEvent { finding_id: id, at: now, event: said.unwrap_or(FindingEvent::Unjustified).as_str(), actor: Some(who.to_owned()), detail: String::new(), revision_id: None })
                .execute(conn)?;
            Ok(())
        })?;
        self.finding(id)?
            .ok_or_else(|| StorageError::NotFound(format!("finding {id} vanished")))
    }

    pub fn finding(&self, id: i64) -> Result<Option<FindingRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            findings::table.find(id).select(FindingRow::as_select()).first(conn).optional()?
        }))
    }

    pub fn finding_events(&self, finding_id: i64) -> Result<Vec<FindingEventRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            finding_events::table
                .filter(finding_events::finding_id.eq(finding_id))
                .order(finding_events::id)
                .select(FindingEventRow::as_select())
                .load(conn)?
        }))
    }

    /// Rule errors, newest first, older than `before_id` if given.
    pub fn rule_errors_page(
        &self,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RuleErrorRow>, StorageError> {
        let limit = page_limit(limit, 50);
        Ok(with_conn!(self, conn => {
            let mut b = rule_errors::table.select(RuleErrorRow::as_select()).into_boxed();
            if let Some(id) = before_id {
                b = b.filter(rule_errors::id.lt(id));
            }
            b.order(rule_errors::id.desc()).limit(limit).load(conn)?
        }))
    }
}
