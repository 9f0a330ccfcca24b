//! The reads behind the server's pages and API: keyset pagination and aggregation in
//! the database, on indexed columns, so a page costs the same with 100k findings as
//! with 100 (Security Monkey's dashboards summed in the browser, SM #527; its item
//! pages loaded every revision, SM #172).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use guardrail_model::FindingState;
use serde::Serialize;

use crate::findings::FindingRow;
use crate::read::{like_pattern, ItemRow, RevisionMeta, SweepErrorRow, SweepRow};
use crate::schema::{findings, items, outbox, revisions, rule_errors, sweep_errors, sweeps};
use crate::{with_conn, Backend, RuleErrorRow, StorageError, Store};

/// Largest page any listing returns, whatever the caller asks for.
pub const MAX_PAGE: i64 = 500;

diesel::define_sql_function!(fn lower(x: Nullable<Text>) -> Nullable<Text>);

/// The orders a findings page can be sorted in; each is descending with the id as
/// the tie-breaker, so a (key, id) pair is a stable cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingSort {
    #[default]
    Score,
    LastSeen,
    FirstSeen,
}

impl FindingSort {
    pub fn parse(s: &str) -> Result<FindingSort, StorageError> {
        match s {
            "score" => Ok(FindingSort::Score),
            "last_seen" => Ok(FindingSort::LastSeen),
            "first_seen" => Ok(FindingSort::FirstSeen),
            _ => Err(StorageError::Invalid(format!(
                "unknown sort {s:?}: use score, last_seen or first_seen"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FindingSort::Score => "score",
            FindingSort::LastSeen => "last_seen",
            FindingSort::FirstSeen => "first_seen",
        }
    }
}

/// One page of findings: filters, order and where the previous page ended.
#[derive(Debug, Clone, Default)]
pub struct FindingQuery {
    /// Any of these states; empty: all.
    pub states: Vec<FindingState>,
    pub min_score: Option<i64>,
    /// Any of these severities; empty: all.
    pub severities: Vec<String>,
    pub account: Option<String>,
    pub resource_type: Option<String>,
    pub rule_id: Option<String>,
    pub item_id: Option<i64>,
    /// Value of the owner tag (`owner_tag`) on the finding's item.
    pub owner: Option<String>,
    pub owner_tag: String,
    /// Case-insensitive substring of the item's name, ARN or resource id.
    pub text: Option<String>,
    pub sort: FindingSort,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct FindingPage {
    pub rows: Vec<(FindingRow, ItemRow)>,
    /// Present when there is another page.
    pub next_cursor: Option<String>,
}

/// A cursor is the sort, its key and the id, hex-encoded so callers treat it as opaque.
fn encode_cursor(sort: FindingSort, f: &FindingRow) -> String {
    let key = match sort {
        FindingSort::Score => f.score,
        FindingSort::LastSeen => f.last_seen_at.and_utc().timestamp_micros(),
        FindingSort::FirstSeen => f.first_seen_at.and_utc().timestamp_micros(),
    };
    hex::encode(format!("{}:{key}:{}", sort.as_str(), f.id))
}

fn decode_cursor(sort: FindingSort, cursor: &str) -> Result<(i64, i64), StorageError> {
    let bad = || {
        StorageError::Invalid(format!(
            "cursor {cursor:?} is not one this server issued for sort={}: pass next_cursor from the previous page unchanged, with the same sort",
            sort.as_str()
        ))
    };
    let text = hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let mut parts = text.split(':');
    let (Some(s), Some(k), Some(i), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if s != sort.as_str() {
        return Err(bad());
    }
    Ok((k.parse().map_err(|_| bad())?, i.parse().map_err(|_| bad())?))
}

fn micros(t: i64) -> Result<NaiveDateTime, StorageError> {
    DateTime::from_timestamp_micros(t)
        .map(|d| d.naive_utc())
        .ok_or_else(|| StorageError::Invalid(format!("cursor time {t} is out of range")))
}

/// `items.tags ->> key` on either backend (SQLite ≥ 3.38 has the operator natively).
fn tag_expr(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(items.tags ->> ",
        Backend::Postgres => "(items.tags::jsonb ->> ",
    }
}

/// Open-finding counts by one dimension, largest first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Count {
    pub key: Option<String>,
    pub count: i64,
}

/// The grouped counts of the dashboard: each one aggregation over the findings.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryCounts {
    pub open: i64,
    pub by_state: Vec<Count>,
    pub by_severity: Vec<Count>,
    pub by_account: Vec<Count>,
    pub by_resource_type: Vec<Count>,
    /// By the value of the owner tag; `key: null` for items without one.
    pub by_owner: Vec<Count>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: SummaryCounts,
    /// Findings first seen at or after `since`, in any state.
    pub new_since: i64,
    #[serde(with = "crate::read::utc_serde")]
    pub since: NaiveDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Case-insensitive substring of the name, ARN or resource id.
    pub text: Option<String>,
    /// A tag key, and optionally the value it must have.
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
    pub resource_type: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub include_deleted: bool,
    /// Items with an id greater than this (the previous page's `next_cursor`).
    pub after_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct ItemPage {
    pub rows: Vec<ItemRow>,
    pub next_cursor: Option<i64>,
}

/// The latest sweep of one source, for sweep health.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    pub source: String,
    pub last: SweepRow,
    /// Errors recorded by that sweep.
    pub errors: i64,
}

/// Figures for `/metrics`, each one query in the database.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSnapshot {
    pub findings_by_state_severity: Vec<(String, String, i64)>,
    pub outbox_pending: i64,
    pub outbox_gave_up: i64,
    pub rule_errors: i64,
    pub items_active: i64,
    pub latest_sweeps: Vec<SweepRow>,
    /// Rules by health status (`ok`, `not_loaded`, `erroring`, `suspended`).
    pub rules_by_status: Vec<(String, i64)>,
    /// Active items whose latest revision no rule set has judged yet.
    pub items_unaudited: i64,
}

fn page_limit(limit: i64, default: i64) -> i64 {
    if limit <= 0 {
        default
    } else {
        limit.min(MAX_PAGE)
    }
}

impl Store {
    /// A page of findings with their items. Sorted descending by the chosen key, ties
    /// by id descending; the cursor continues strictly after the last row, so rows
    /// inserted meanwhile never shift a page.
    pub fn findings_page(&self, q: &FindingQuery) -> Result<FindingPage, StorageError> {
        let limit = page_limit(q.limit, 50);
        let after = q
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| decode_cursor(q.sort, c))
            .transpose()?;
        let after_time = match (q.sort, after) {
            (FindingSort::Score, _) | (_, None) => None,
            (_, Some((k, _))) => Some(micros(k)?),
        };
        let tag = tag_expr(self.backend());
        let mut rows: Vec<(FindingRow, ItemRow)> = with_conn!(self, conn => {
            let mut b = findings::table
                .inner_join(items::table)
                .select((FindingRow::as_select(), ItemRow::as_select()))
                .into_boxed();
            // One state is an equality, not `= ANY($1)`: PostgreSQL can then walk the
            // (state, key, id) index in order instead of sorting every match.
            match q.states.as_slice() {
                [] => {}
                [one] => b = b.filter(findings::state.eq(one.as_str())),
                many => b = b.filter(findings::state.eq_any(many.iter().map(|s| s.as_str()))),
            }
            if let Some(m) = q.min_score {
                b = b.filter(findings::score.ge(m));
            }
            if !q.severities.is_empty() {
                b = b.filter(findings::severity.eq_any(q.severities.clone()));
            }
            // The finding's own copies, so an (state, account|type, score, id) index
            // range serves the page in order.
            if let Some(a) = &q.account {
                b = b.filter(findings::account.eq(a.clone()));
            }
            if let Some(t) = &q.resource_type {
                b = b.filter(findings::resource_type.eq(t.clone()));
            }
            if let Some(r) = &q.rule_id {
                b = b.filter(findings::rule_id.eq(r.clone()));
            }
            if let Some(i) = q.item_id {
                b = b.filter(findings::item_id.eq(i));
            }
            if let Some(o) = &q.owner {
                b = b.filter(
                    sql::<Bool>(tag)
                        .bind::<Text, _>(q.owner_tag.clone())
                        .sql(" = ")
                        .bind::<Text, _>(o.clone())
                        .sql(")"),
                );
            }
            if let Some(t) = q.text.as_deref().filter(|t| !t.is_empty()) {
                let p = like_pattern(&t.to_lowercase());
                b = b.filter(
                    lower(items::name.nullable()).like(p.clone()).escape('\\')
                        .or(lower(items::arn.nullable()).like(p.clone()).escape('\\'))
                        .or(lower(items::resource_id.nullable()).like(p).escape('\\')),
                );
            }
            match q.sort {
                FindingSort::Score => {
                    if let Some((k, id)) = after {
                        // The redundant `<=` is what an index range scan can start from;
                        // the OR alone makes PostgreSQL read and drop every earlier row.
                        b = b.filter(findings::score.le(k)).filter(findings::score.lt(k).or(findings::score.eq(k).and(findings::id.lt(id))));
                    }
                    b = b.order((findings::score.desc(), findings::id.desc()));
                }
                FindingSort::LastSeen => {
                    if let (Some(t), Some((_, id))) = (after_time, after) {
                        b = b.filter(findings::last_seen_at.le(t)).filter(findings::last_seen_at.lt(t).or(findings::last_seen_at.eq(t).and(findings::id.lt(id))));
                    }
                    b = b.order((findings::last_seen_at.desc(), findings::id.desc()));
                }
                FindingSort::FirstSeen => {
                    if let (Some(t), Some((_, id))) = (after_time, after) {
                        b = b.filter(findings::first_seen_at.le(t)).filter(findings::first_seen_at.lt(t).or(findings::first_seen_at.eq(t).and(findings::id.lt(id))));
                    }
                    b = b.order((findings::first_seen_at.desc(), findings::id.desc()));
                }
            }
            b.limit(limit + 1).load(conn)?
        });
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|(f, _)| encode_cursor(q.sort, f))
        } else {
            None
        };
        Ok(FindingPage { rows, next_cursor })
    }

    /// Counts for the dashboard and `/api/v1/summary`, all grouped in the database.
    pub fn summary(&self, owner_tag: &str, since: DateTime<Utc>) -> Result<Summary, StorageError> {
        Ok(Summary {
            counts: self.summary_counts(owner_tag)?,
            new_since: self.new_findings_since(since)?,
            since: since.naive_utc(),
        })
    }

    /// Findings first seen at or after `since`, in any state (an index range count).
    pub fn new_findings_since(&self, since: DateTime<Utc>) -> Result<i64, StorageError> {
        let since = since.naive_utc();
        Ok(with_conn!(self, conn => {
            findings::table
                .filter(findings::first_seen_at.ge(since))
                .count()
                .get_result(conn)?
        }))
    }

    /// The grouped counts: five aggregations over the findings (tens of milliseconds
    /// each at 100k findings, so the server caches them briefly).
    pub fn summary_counts(&self, owner_tag: &str) -> Result<SummaryCounts, StorageError> {
        let to_counts = |v: Vec<(String, i64)>| -> Vec<Count> {
            let mut c: Vec<Count> = v
                .into_iter()
                .map(|(k, n)| Count {
                    key: Some(k),
                    count: n,
                })
                .collect();
            c.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
            c.truncate(200);
            c
        };
        // Account and type are the findings' own copies: no join.
        let (by_state, by_severity, by_account, by_type) = with_conn!(self, conn => {
            let by_state: Vec<(String, i64)> = findings::table
                .group_by(findings::state)
                .select((findings::state, count_star()))
                .load(conn)?;
            let open = findings::table.filter(findings::state.eq(FindingState::Open.as_str()));
            let by_severity: Vec<(String, i64)> = open
                .group_by(findings::severity)
                .select((findings::severity, count_star()))
                .load(conn)?;
            let by_account: Vec<(String, i64)> = open
                .group_by(findings::account)
                .select((findings::account, count_star()))
                .load(conn)?;
            let by_type: Vec<(String, i64)> = open
                .group_by(findings::resource_type)
                .select((findings::resource_type, count_star()))
                .load(conn)?;
            (by_state, by_severity, by_account, by_type)
        });
        // The owner is a tag on the item: per-item counts first, then one join and one
        // JSON read per item rather than per finding.
        #[derive(QueryableByName)]
        struct KeyCount {
            #[diesel(sql_type = Nullable<Text>)]
            key: Option<String>,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let owner_dim = match self.backend() {
            Backend::Sqlite => "items.tags ->> ?",
            Backend::Postgres => "items.tags::jsonb ->> $1",
        };
        let owners_sql = format!(
            "SELECT {owner_dim} AS key, CAST(SUM(f.n) AS BIGINT) AS n \
             FROM (SELECT item_id, COUNT(*) AS n FROM findings WHERE state = 'open' GROUP BY item_id) f \
             JOIN items ON items.id = f.item_id GROUP BY 1 ORDER BY n DESC, key LIMIT 200"
        );
        let owners: Vec<KeyCount> = with_conn!(self, conn => {
            diesel::sql_query(owners_sql.as_str()).bind::<Text, _>(owner_tag).load(conn)?
        });
        let by_state = to_counts(by_state);
        let open = by_state
            .iter()
            .find(|c| c.key.as_deref() == Some("open"))
            .map_or(0, |c| c.count);
        Ok(SummaryCounts {
            open,
            by_state,
            by_severity: to_counts(by_severity),
            by_account: to_counts(by_account),
            by_resource_type: to_counts(by_type),
            by_owner: owners
                .into_iter()
                .map(|c| Count {
                    key: c.key,
                    count: c.n,
                })
                .collect(),
        })
    }

    /// A page of items by id: search by name/ARN/resource id, tag, type, account, region.
    pub fn items_page(&self, q: &ItemQuery) -> Result<ItemPage, StorageError> {
        let limit = page_limit(q.limit, 50);
        let tag = tag_expr(self.backend());
        let mut rows: Vec<ItemRow> = with_conn!(self, conn => {
            let mut b = items::table.select(ItemRow::as_select()).into_boxed();
            if let Some(t) = &q.resource_type {
                b = b.filter(items::resource_type.eq(t.clone()));
            }
            if let Some(a) = &q.account {
                b = b.filter(items::account.eq(a.clone()));
            }
            if let Some(r) = &q.region {
                b = b.filter(items::region.eq(r.clone()));
            }
            if !q.include_deleted {
                b = b.filter(items::active.eq(true));
            }
            if let Some(t) = q.text.as_deref().filter(|t| !t.is_empty()) {
                let p = like_pattern(&t.to_lowercase());
                b = b.filter(
                    lower(items::name.nullable()).like(p.clone()).escape('\\')
                        .or(lower(items::arn.nullable()).like(p.clone()).escape('\\'))
                        .or(lower(items::resource_id.nullable()).like(p).escape('\\')),
                );
            }
            if let Some(k) = q.tag_key.as_deref().filter(|k| !k.is_empty()) {
                b = match &q.tag_value {
                    Some(v) => b.filter(sql::<Bool>(tag).bind::<Text, _>(k.to_owned()).sql(" = ").bind::<Text, _>(v.clone()).sql(")")),
                    None => b.filter(sql::<Bool>(tag).bind::<Text, _>(k.to_owned()).sql(" IS NOT NULL)")),
                };
            }
            if let Some(after) = q.after_id {
                b = b.filter(items::id.gt(after));
            }
            b.order(items::id).limit(limit + 1).load(conn)?
        });
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|i| i.id)
        } else {
            None
        };
        Ok(ItemPage { rows, next_cursor })
    }

    /// Revisions of an item (without documents), newest first, older than
    /// `before_version` if given.
    pub fn revisions_page(
        &self,
        item_id: i64,
        before_version: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RevisionMeta>, StorageError> {
        let limit = page_limit(limit, 50);
        Ok(with_conn!(self, conn => {
            let mut b = revisions::table
                .filter(revisions::item_id.eq(item_id))
                .select(RevisionMeta::as_select())
                .into_boxed();
            if let Some(v) = before_version {
                b = b.filter(revisions::version.lt(v));
            }
            b.order(revisions::version.desc()).limit(limit).load(conn)?
        }))
    }

    /// Sweeps, newest first, older than `before_id` if given.
    pub fn sweeps_page(
        &self,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SweepRow>, StorageError> {
        let limit = page_limit(limit, 50);
        Ok(with_conn!(self, conn => {
            let mut b = sweeps::table.select(SweepRow::as_select()).into_boxed();
            if let Some(id) = before_id {
                b = b.filter(sweeps::id.lt(id));
            }
            b.order(sweeps::id.desc()).limit(limit).load(conn)?
        }))
    }

    /// The latest sweep of each source and how many errors it recorded.
    pub fn sweep_health(&self) -> Result<Vec<SourceHealth>, StorageError> {
        let (latest, errors) = with_conn!(self, conn => {
            let ids: Vec<Option<i64>> = sweeps::table
                .group_by(sweeps::source)
                .select(diesel::dsl::max(sweeps::id))
                .load(conn)?;
            let ids: Vec<i64> = ids.into_iter().flatten().collect();
            let latest: Vec<SweepRow> = sweeps::table
                .filter(sweeps::id.eq_any(&ids))
                .order(sweeps::source)
                .select(SweepRow::as_select())
                .load(conn)?;
            let errors: Vec<(i64, i64)> = sweep_errors::table
                .filter(sweep_errors::sweep_id.eq_any(&ids))
                .group_by(sweep_errors::sweep_id)
                .select((sweep_errors::sweep_id, count_star()))
                .load(conn)?;
            (latest, errors)
        });
        Ok(latest
            .into_iter()
            .map(|s| SourceHealth {
                source: s.source.clone(),
                errors: errors.iter().find(|e| e.0 == s.id).map_or(0, |e| e.1),
                last: s,
            })
            .collect())
    }

    /// Errors of one sweep, capped.
    pub fn sweep_errors_page(
        &self,
        sweep_id: i64,
        limit: i64,
    ) -> Result<Vec<SweepErrorRow>, StorageError> {
        let limit = page_limit(limit, 100);
        Ok(with_conn!(self, conn => {
            sweep_errors::table
                .filter(sweep_errors::sweep_id.eq(sweep_id))
                .order(sweep_errors::id)
                .limit(limit)
                .select(SweepErrorRow::as_select())
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

    /// Cheap liveness check of the database.
    pub fn ping(&self) -> Result<(), StorageError> {
        with_conn!(self, conn => {
            diesel::sql_query("SELECT 1").execute(conn)?;
        });
        Ok(())
    }

    pub fn metrics_snapshot(&self) -> Result<MetricsSnapshot, StorageError> {
        let (by, pending, gave_up, rule_errors, active) = with_conn!(self, conn => {
            let by: Vec<(String, String, i64)> = findings::table
                .group_by((findings::state, findings::severity))
                .select((findings::state, findings::severity, count_star()))
                .load(conn)?;
            let pending: i64 = outbox::table
                .filter(outbox::delivered_at.is_null())
                .filter(outbox::gave_up_at.is_null())
                .count()
                .get_result(conn)?;
            let gave_up: i64 = outbox::table
                .filter(outbox::gave_up_at.is_not_null())
                .count()
                .get_result(conn)?;
            let rule_errors: i64 = rule_errors::table.count().get_result(conn)?;
            let active: i64 = items::table.filter(items::active.eq(true)).count().get_result(conn)?;
            (by, pending, gave_up, rule_errors, active)
        });
        let latest_sweeps = self.sweep_health()?.into_iter().map(|h| h.last).collect();
        let mut rules_by_status: std::collections::BTreeMap<String, i64> =
            ["ok", "not_loaded", "erroring", "suspended"]
                .into_iter()
                .map(|s| (s.to_owned(), 0))
                .collect();
        for r in self.rule_health()? {
            *rules_by_status.entry(r.status).or_default() += 1;
        }
        let items_unaudited = self.count_never_audited()?;
        Ok(MetricsSnapshot {
            rules_by_status: rules_by_status.into_iter().collect(),
            items_unaudited,
            findings_by_state_severity: by,
            outbox_pending: pending,
            outbox_gave_up: gave_up,
            rule_errors,
            items_active: active,
            latest_sweeps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_other_sorts() {
        let c = hex::encode("score:7:42");
        assert_eq!(decode_cursor(FindingSort::Score, &c).unwrap(), (7, 42));
        assert!(decode_cursor(FindingSort::LastSeen, &c).is_err());
        assert!(decode_cursor(FindingSort::Score, "zz").is_err());
        assert!(decode_cursor(FindingSort::Score, &hex::encode("score:7")).is_err());
        assert!(decode_cursor(FindingSort::Score, &hex::encode("score:x:1")).is_err());
    }
}
