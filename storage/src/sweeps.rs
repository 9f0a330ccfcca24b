//! Sweeps: one row per run of a source, with the errors it recorded, and the health
//! of each source (its latest sweep).

use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::Serialize;

use crate::query::{page_limit, utc, utc_opt};
use crate::schema::{sweep_errors, sweeps};
use crate::{with_conn, StorageError, Store};

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = sweeps)]
pub struct SweepRow {
    pub id: i64,
    pub source: String,
    #[serde(serialize_with = "utc")]
    pub started_at: NaiveDateTime,
    #[serde(serialize_with = "utc_opt")]
    pub finished_at: Option<NaiveDateTime>,
    pub status: String,
    pub items_seen: i64,
    pub created: i64,
    pub modified: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub ephemeral_updates: i64,
    pub stale: i64,
    pub errors: i64,
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = sweep_errors)]
pub struct SweepErrorRow {
    pub id: i64,
    pub sweep_id: i64,
    pub account: Option<String>,
    pub region: Option<String>,
    pub resource_type: Option<String>,
    pub origin: String,
    pub item: Option<String>,
    pub message: String,
    #[serde(serialize_with = "utc")]
    pub at: NaiveDateTime,
}

/// The latest sweep of one source, for sweep health.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    pub source: String,
    pub last: SweepRow,
    /// Errors recorded by that sweep.
    pub errors: i64,
}

impl Store {
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

    pub fn sweep(&self, id: i64) -> Result<Option<SweepRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            sweeps::table
                .find(id)
                .select(SweepRow::as_select())
                .first(conn)
                .optional()?
        }))
    }

    /// Errors of one sweep in the order recorded, after `after_id` if given.
    pub fn sweep_errors_page(
        &self,
        sweep_id: i64,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SweepErrorRow>, StorageError> {
        let limit = page_limit(limit, 100);
        Ok(with_conn!(self, conn => {
            let mut b = sweep_errors::table
                .filter(sweep_errors::sweep_id.eq(sweep_id))
                .select(SweepErrorRow::as_select())
                .into_boxed();
            if let Some(id) = after_id {
                b = b.filter(sweep_errors::id.gt(id));
            }
            b.order(sweep_errors::id).limit(limit).load(conn)?
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
}
