//! Aggregates: the dashboard's grouped counts, `/metrics` figures, and the sizes
//! `status` and `bench` report. Every figure is one query in the database.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use guardrail_model::FindingState;
use serde::Serialize;

use crate::schema::{findings, items, outbox, revisions, rule_errors};
use crate::sweeps::SweepRow;
use crate::{with_conn, Backend, StorageError, Store};

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
    #[serde(with = "crate::query::utc_serde")]
    pub since: NaiveDateTime,
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

impl Store {
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

    /// (items, active items, revisions)
    pub fn counts(&self) -> Result<(i64, i64, i64), StorageError> {
        Ok(with_conn!(self, conn => {
            let all: i64 = items::table.count().get_result(conn)?;
            let active: i64 = items::table.filter(items::active.eq(true)).count().get_result(conn)?;
            let revs: i64 = revisions::table.count().get_result(conn)?;
            (all, active, revs)
        }))
    }

    /// Bytes the database occupies (SQLite: pages in use; PostgreSQL: the database).
    pub fn database_size(&self) -> Result<i64, StorageError> {
        #[derive(QueryableByName)]
        struct Size {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            bytes: i64,
        }
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()"
            }
            Backend::Postgres => "SELECT pg_database_size(current_database()) AS bytes",
        };
        Ok(with_conn!(self, conn => {
            diesel::sql_query(sql).get_result::<Size>(conn)?.bytes
        }))
    }
}
