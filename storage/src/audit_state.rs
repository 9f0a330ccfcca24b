//! Audit completeness and rule health as durable state.
//!
//! Every item records the version of its latest judged revision, the identity of the
//! rule set that judged it and when (`items.audited_*`, written in the transaction that
//! stores the findings). An audit pass asks for the items that are *due*: latest
//! revision not yet judged, judged by another rule set, or judged longer ago than the
//! re-check interval (rules that depend on time: key age, expiry). Nothing depends on
//! the process that stored a revision surviving to audit it.
//!
//! `rule_health` is each rule's state as of the last pass that ran it, and sweeps
//! carry an owner and a heartbeat so a sweep left `running` by a dead process is
//! marked `interrupted` instead of running forever.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::items::ItemRow;
use crate::query::utc_serde;
use crate::revisions::RevisionRow;
use crate::schema::{items, revisions, rule_health, sweep_errors, sweeps};
use crate::{with_conn, write_tx, StorageError, Store};

/// An item due for audit, with its latest revision and the version last judged.
#[derive(Debug, Clone)]
pub struct DueAudit {
    pub item: ItemRow,
    pub revision: RevisionRow,
    /// The version judged last (`None`: never judged).
    pub audited_version: Option<i64>,
}

/// What makes an item due.
#[derive(Debug, Clone)]
pub struct DueRule<'a> {
    /// `RuleSet::identity` of the rules about to judge.
    pub rules: &'a str,
    /// Items judged before this are due again (the daily re-check).
    pub judged_before: DateTime<Utc>,
}

/// A rule's state as of the last audit pass that ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = rule_health)]
pub struct RuleHealthRow {
    pub rule_id: String,
    /// `ok`, `not_loaded`, `erroring` or `suspended`.
    pub status: String,
    pub message: String,
    pub evaluations: i64,
    pub errors: i64,
    pub exhausted: i64,
    pub skipped: i64,
    #[serde(with = "utc_serde")]
    pub checked_at: NaiveDateTime,
}

impl RuleHealthRow {
    pub fn healthy(&self) -> bool {
        self.status == "ok"
    }
}

/// Where a sweep runs: this host and process.
fn owner() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A sweep whose heartbeat is older than this is presumed dead even on another host.
pub const SWEEP_SILENCE: Duration = Duration::minutes(30);

/// Whether the process named by `owner` is certainly gone: it ran on this host and
/// no process of that id exists any more.
pub(crate) fn owner_gone(owner: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once(':') else {
        return false;
    };
    if host != host_name() {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => false,
        Ok(pid) => {
            let proc = std::path::Path::new("/proc");
            proc.is_dir() && !proc.join(pid.to_string()).exists()
        }
        Err(_) => false,
    }
}

impl Store {
    /// A page of items due for audit, by item id after `after_item`.
    pub fn due_audits(
        &self,
        due: &DueRule<'_>,
        after_item: i64,
        limit: i64,
    ) -> Result<Vec<DueAudit>, StorageError> {
        let before = due.judged_before.naive_utc();
        // The page of items first, in id order on the primary key, then their latest
        // revisions: one query joining both let PostgreSQL join and sort every
        // remaining item for each page (its estimate of the join was off), a pass
        // quadratic in the items.
        let (items, revisions): (Vec<(ItemRow, Option<i64>)>, Vec<RevisionRow>) = with_conn!(self, conn => {
            let items: Vec<(ItemRow, Option<i64>)> = items::table
                .filter(items::active.eq(true))
                .filter(items::id.gt(after_item))
                .filter(
                    items::audited_version
                        .is_null()
                        .or(items::audited_version.ne(items::version.nullable()))
                        .or(items::audited_rules.is_null())
                        .or(items::audited_rules.ne(due.rules))
                        .or(items::audited_at.is_null())
                        .or(items::audited_at.lt(before)),
                )
                .order(items::id)
                .limit(limit.max(1))
                .select((ItemRow::as_select(), items::audited_version))
                .load(conn)?;
            let ids: Vec<i64> = items.iter().map(|(i, _)| i.id).collect();
            // Filtered on the items' primary key, so the plan is their ids, then each
            // one's revision by (item_id, version).
            let revisions: Vec<RevisionRow> = items::table
                .filter(items::id.eq_any(&ids))
                .inner_join(revisions::table.on(revisions::item_id.eq(items::id).and(revisions::version.eq(items::version))))
                .select(RevisionRow::as_select())
                .load(conn)?;
            (items, revisions)
        });
        let mut latest: std::collections::HashMap<i64, RevisionRow> =
            revisions.into_iter().map(|r| (r.item_id, r)).collect();
        items
            .into_iter()
            .map(|(item, audited_version)| {
                // Every item has its latest revision; one without is a broken database,
                // said so, never an item quietly left unjudged (or a short page that
                // would end the pass early).
                let revision = latest
                    .remove(&item.id)
                    .ok_or_else(|| crate::items::no_latest_revision(&item))?;
                Ok(DueAudit {
                    item,
                    revision,
                    audited_version,
                })
            })
            .collect()
    }

    /// Makes items whose judgement depends on their neighbours due again when a
    /// neighbour changed: for every (account, region) where an item of `path_types`
    /// got a revision (created, modified or deleted) after the cursor `cursor`, the
    /// active items of `dependent_types` there lose their `audited_at`, so the pass
    /// re-judges them. Marks and cursor move in one transaction, so a crash between
    /// them loses no re-judgement. Returns how many items were made due.
    pub fn invalidate_dependents(
        &self,
        cursor: &str,
        path_types: &[&str],
        dependent_types: &[&str],
    ) -> Result<usize, StorageError> {
        use crate::schema::notify_cursors;
        write_tx!(self, conn => {
            let from: i64 = notify_cursors::table
                .find(cursor)
                .select(notify_cursors::last_event_id)
                .first(conn)
                .optional()?
                .unwrap_or(0);
            let changed: Vec<(String, String, Option<i64>)> = revisions::table
                .inner_join(items::table)
                .filter(revisions::id.gt(from))
                .filter(items::resource_type.eq_any(path_types))
                .group_by((items::account, items::region))
                .select((items::account, items::region, diesel::dsl::max(revisions::id)))
                .load(conn)?;
            let mut marked = 0;
            let mut newest = from;
            for (account, region, last) in changed {
                newest = newest.max(last.unwrap_or(from));
                marked += diesel::update(
                    items::table
                        .filter(items::account.eq(&account))
                        .filter(items::region.eq(&region))
                        .filter(items::resource_type.eq_any(dependent_types))
                        .filter(items::active.eq(true))
                        .filter(items::audited_at.is_not_null()),
                )
                .set(items::audited_at.eq(None::<NaiveDateTime>))
                .execute(conn)?;
            }
            if newest > from {
                diesel::insert_into(notify_cursors::table)
                    .values((notify_cursors::name.eq(cursor), notify_cursors::last_event_id.eq(newest)))
                    .on_conflict(notify_cursors::name)
                    .do_update()
                    .set(notify_cursors::last_event_id.eq(newest))
                    .execute(conn)?;
            }
            Ok(marked)
        })
    }

    /// Items whose latest revision has never been judged by any rule set.
    pub fn count_never_audited(&self) -> Result<i64, StorageError> {
        Ok(with_conn!(self, conn => {
            items::table
                .filter(items::active.eq(true))
                .filter(
                    items::audited_version
                        .is_null()
                        .or(items::audited_version.ne(items::version.nullable())),
                )
                .count()
                .get_result(conn)?
        }))
    }

    /// Replaces the health of every rule: `rows` for the rules this pass knows
    /// (loaded or broken); rows of rules that no longer exist are removed. A loaded
    /// rule that did not run in the pass keeps its earlier verdict unless that verdict
    /// was `not_loaded` (it loads now).
    pub fn record_rule_health(&self, rows: &[RuleHealthRow]) -> Result<(), StorageError> {
        let ids: Vec<&str> = rows.iter().map(|r| r.rule_id.as_str()).collect();
        write_tx!(self, conn => {
            diesel::delete(rule_health::table.filter(rule_health::rule_id.ne_all(&ids)))
                .execute(conn)?;
            let existing: Vec<RuleHealthRow> = rule_health::table
                .select(RuleHealthRow::as_select())
                .load(conn)?;
            for row in rows {
                let old = existing.iter().find(|e| e.rule_id == row.rule_id);
                let ran = row.evaluations > 0 || row.skipped > 0 || row.status == "not_loaded";
                if let Some(old) = old {
                    if !ran && old.status != "not_loaded" {
                        continue;
                    }
                    diesel::update(rule_health::table.find(&row.rule_id))
                        .set((
                            rule_health::status.eq(&row.status),
                            rule_health::message.eq(&row.message),
                            rule_health::evaluations.eq(row.evaluations),
                            rule_health::errors.eq(row.errors),
                            rule_health::exhausted.eq(row.exhausted),
                            rule_health::skipped.eq(row.skipped),
                            rule_health::checked_at.eq(row.checked_at),
                        ))
                        .execute(conn)?;
                } else {
                    diesel::insert_into(rule_health::table).values(row).execute(conn)?;
                }
            }
            Ok(())
        })
    }

    /// Marks one rule as not loading, at once (before any audit pass runs).
    pub fn set_rule_not_loaded(
        &self,
        rule_id: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let row = RuleHealthRow {
            rule_id: rule_id.to_owned(),
            status: "not_loaded".into(),
            message: message.to_owned(),
            evaluations: 0,
            errors: 0,
            exhausted: 0,
            skipped: 0,
            checked_at: now.naive_utc(),
        };
        write_tx!(self, conn => {
            diesel::delete(rule_health::table.find(rule_id)).execute(conn)?;
            diesel::insert_into(rule_health::table).values(&row).execute(conn)?;
            Ok(())
        })
    }

    /// Every rule's health, unhealthy first.
    pub fn rule_health(&self) -> Result<Vec<RuleHealthRow>, StorageError> {
        let mut rows: Vec<RuleHealthRow> = with_conn!(self, conn => {
            rule_health::table
                .order(rule_health::rule_id)
                .select(RuleHealthRow::as_select())
                .load(conn)?
        });
        rows.sort_by_key(|r| r.healthy());
        Ok(rows)
    }

    /// Rules that are not judging as they should (not loaded, erroring, suspended).
    pub fn unhealthy_rules(&self) -> Result<Vec<RuleHealthRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            rule_health::table
                .filter(rule_health::status.ne("ok"))
                .order(rule_health::rule_id)
                .select(RuleHealthRow::as_select())
                .load(conn)?
        }))
    }

    /// Marks sweeps left `running` by a process that is gone as `interrupted`, with an
    /// error saying so. A sweep counts as gone when its process ran on this host and no
    /// longer exists, or when it has not written for [`SWEEP_SILENCE`]. Returns the
    /// ids marked.
    pub fn mark_interrupted_sweeps(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StorageError> {
        let now = now.naive_utc();
        let running: Vec<(i64, String, NaiveDateTime, Option<NaiveDateTime>)> = with_conn!(self, conn => {
            sweeps::table
                .filter(sweeps::status.eq("running"))
                .select((sweeps::id, sweeps::owner, sweeps::started_at, sweeps::heartbeat_at))
                .load(conn)?
        });
        let gone: Vec<(i64, String)> = running
            .into_iter()
            .filter_map(|(id, owner, started, heartbeat)| {
                let last = heartbeat.unwrap_or(started);
                if owner_gone(&owner) {
                    Some((id, format!("the process that ran it ({owner}) is gone")))
                } else if now - last > SWEEP_SILENCE {
                    Some((
                        id,
                        format!(
                            "no progress written since {} (over {} minutes)",
                            last.and_utc().to_rfc3339(),
                            SWEEP_SILENCE.num_minutes()
                        ),
                    ))
                } else {
                    None
                }
            })
            .collect();
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        write_tx!(self, conn => {
            for (id, why) in &gone {
                let n = diesel::update(
                    sweeps::table.find(id).filter(sweeps::status.eq("running")),
                )
                .set((sweeps::status.eq("interrupted"), sweeps::finished_at.eq(Some(now))))
                .execute(conn)?;
                if n == 0 {
                    continue;
                }
                diesel::insert_into(sweep_errors::table)
                    .values((
                        sweep_errors::sweep_id.eq(id),
                        sweep_errors::origin.eq("sweep"),
                        sweep_errors::message.eq(format!(
                            "interrupted: {why}; what it stored is kept, no deletion was inferred from it, \
                             and its items are audited by the next audit pass"
                        )),
                        sweep_errors::at.eq(now),
                    ))
                    .execute(conn)?;
                diesel::update(sweeps::table.find(id))
                    .set(sweeps::errors.eq(sweeps::errors + 1))
                    .execute(conn)?;
            }
            Ok(())
        })?;
        Ok(gone.into_iter().map(|(id, _)| id).collect())
    }

    /// Whether `source` has finished a sweep before (complete or partial): its first
    /// sweep is a baseline for notifications.
    pub fn source_swept_before(&self, source: &str) -> Result<bool, StorageError> {
        let n: i64 = with_conn!(self, conn => {
            sweeps::table
                .filter(sweeps::source.eq(source))
                .filter(sweeps::status.eq_any(["complete", "partial"]))
                .count()
                .get_result(conn)?
        });
        Ok(n > 0)
    }

    /// Records that sweep `id` is alive.
    pub(crate) fn sweep_heartbeat(&self, id: i64, now: NaiveDateTime) -> Result<(), StorageError> {
        write_tx!(self, conn => {
            diesel::update(sweeps::table.find(id))
                .set(sweeps::heartbeat_at.eq(Some(now)))
                .execute(conn)?;
            Ok(())
        })
    }

    pub(crate) fn sweep_owner() -> String {
        owner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_gone_only_when_its_process_on_this_host_is() {
        let me = owner();
        assert!(!owner_gone(&me));
        // Linux pids stop well below this.
        assert!(owner_gone(&format!("{}:4194399", host_name())));
        assert!(!owner_gone("some-other-host:4194399"));
        assert!(!owner_gone(""));
    }
}
