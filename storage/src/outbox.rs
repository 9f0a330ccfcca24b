//! The durable outbox. Sweeps and audits never send anything: they record finding
//! events. A routing pass turns events after a cursor into outbox rows (idempotent by
//! dedup key, cursor advanced in the same transaction), and a dispatcher leases due
//! rows, sends them, and records the outcome. Nothing is lost if a receiver is down or
//! the process dies: rows stay until delivered, or until they are given up (and kept,
//! visible).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::findings::{FindingEventRow, FindingRow};
use crate::items::ItemRow;
use crate::query::utc_serde;
use crate::schema::{finding_events, findings, items, notify_cursors, outbox};
use crate::{with_conn, write_tx, DbPool, StorageError, Store};

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub route: String,
    pub channel: String,
    pub dedup_key: String,
    pub event: String,
    pub finding_id: Option<i64>,
    #[serde(skip)]
    pub payload: String,
    #[serde(with = "utc_serde")]
    pub created_at: NaiveDateTime,
    pub attempts: i64,
    #[serde(with = "utc_serde")]
    pub next_attempt_at: NaiveDateTime,
    #[serde(with = "utc_serde::option")]
    pub leased_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    #[serde(with = "utc_serde::option")]
    pub delivered_at: Option<NaiveDateTime>,
    #[serde(with = "utc_serde::option")]
    pub gave_up_at: Option<NaiveDateTime>,
    #[serde(with = "utc_serde::option")]
    pub digest_window: Option<NaiveDateTime>,
    #[serde(with = "utc_serde::option")]
    pub requeued_at: Option<NaiveDateTime>,
}

impl OutboxRow {
    /// Since when the row has been trying: its give-up clock.
    pub fn trying_since(&self) -> NaiveDateTime {
        self.requeued_at
            .unwrap_or(self.created_at)
            .max(self.created_at)
    }

    pub fn status(&self) -> &'static str {
        if self.delivered_at.is_some() {
            "delivered"
        } else if self.gave_up_at.is_some() {
            "gave_up"
        } else if self.attempts > 0 {
            "failed"
        } else {
            "pending"
        }
    }
}

/// A notification to queue. `payload` is the rendered message without secrets.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutbox {
    pub route: String,
    pub channel: String,
    pub dedup_key: String,
    pub event: String,
    pub finding_id: Option<i64>,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub digest_window: Option<NaiveDateTime>,
}

/// One finding event with what a router needs to decide and render.
pub type RoutableEvent = (FindingEventRow, FindingRow, ItemRow);

impl Store {
    /// Finding events after the cursor `name`, oldest first.
    pub fn events_after_cursor(
        &self,
        name: &str,
        limit: i64,
    ) -> Result<(i64, Vec<RoutableEvent>), StorageError> {
        Ok(with_conn!(self, conn => {
            let cursor: i64 = notify_cursors::table
                .find(name)
                .select(notify_cursors::last_event_id)
                .first(conn)
                .optional()?
                .unwrap_or(0);
            let rows: Vec<RoutableEvent> = finding_events::table
                .inner_join(findings::table.inner_join(items::table))
                .filter(finding_events::id.gt(cursor))
                .order(finding_events::id)
                .limit(limit.max(1))
                .select((FindingEventRow::as_select(), FindingRow::as_select(), ItemRow::as_select()))
                .load(conn)?;
            (cursor, rows)
        }))
    }

    /// Item revisions after the cursor `name`, oldest first. A cursor seen for the
    /// first time starts at the newest revision: subscribing to changes never replays
    /// history.
    pub fn revisions_after_cursor(
        &self,
        name: &str,
        limit: i64,
    ) -> Result<(i64, Vec<(crate::RevisionRow, ItemRow)>), StorageError> {
        use crate::schema::revisions;
        let existing: Option<i64> = with_conn!(self, conn => {
            notify_cursors::table.find(name).select(notify_cursors::last_event_id).first(conn).optional()?
        });
        let cursor = match existing {
            Some(c) => c,
            None => {
                let newest: Option<i64> = with_conn!(self, conn => {
                    revisions::table.select(diesel::dsl::max(revisions::id)).first(conn)?
                });
                let start = newest.unwrap_or(0);
                self.enqueue(name, start, &[])?;
                return Ok((start, Vec::new()));
            }
        };
        Ok(with_conn!(self, conn => {
            let rows = revisions::table
                .inner_join(items::table)
                .filter(revisions::id.gt(cursor))
                .order(revisions::id)
                .limit(limit.max(1))
                .select((crate::RevisionRow::as_select(), ItemRow::as_select()))
                .load(conn)?;
            (cursor, rows)
        }))
    }

    /// Queues `rows` (already-queued dedup keys are skipped) and moves the cursor to
    /// `last_event_id`, in one transaction. Returns how many rows were new.
    pub fn enqueue(
        &self,
        cursor: &str,
        last_event_id: i64,
        rows: &[NewOutbox],
    ) -> Result<usize, StorageError> {
        write_tx!(self, conn => {
            let mut added = 0;
            // Row by row: diesel's SQLite batch insert cannot carry ON CONFLICT. All in
            // the one transaction, so it is still one commit.
            for row in rows {
                added += diesel::insert_into(outbox::table)
                    .values(row)
                    .on_conflict(outbox::dedup_key)
                    .do_nothing()
                    .execute(conn)?;
            }
            diesel::insert_into(notify_cursors::table)
                .values((notify_cursors::name.eq(cursor), notify_cursors::last_event_id.eq(last_event_id)))
                .on_conflict(notify_cursors::name)
                .do_update()
                .set(notify_cursors::last_event_id.eq(last_event_id))
                .execute(conn)?;
            Ok(added)
        })
    }

    /// Leases up to `limit` due rows for `lease` so that concurrent dispatchers (on
    /// PostgreSQL, on several machines) never send the same row at once.
    pub fn lease_due(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StorageError> {
        let now = now.naive_utc();
        let until = now + lease;
        let due = outbox::delivered_at
            .is_null()
            .and(outbox::gave_up_at.is_null())
            .and(outbox::next_attempt_at.le(now))
            .and(
                outbox::leased_until
                    .is_null()
                    .or(outbox::leased_until.lt(now)),
            );
        match &self.inner.pool {
            DbPool::Pg(pool) => {
                let mut conn = pool.get()?;
                conn.transaction(|conn| {
                    let ids: Vec<i64> = outbox::table
                        .filter(due)
                        .order(outbox::id)
                        .limit(limit)
                        .select(outbox::id)
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
                        .set(outbox::leased_until.eq(Some(until)))
                        .execute(conn)?;
                    outbox::table
                        .filter(outbox::id.eq_any(&ids))
                        .order(outbox::id)
                        .select(OutboxRow::as_select())
                        .load(conn)
                })
                .map_err(Into::into)
            }
            DbPool::Sqlite(_) => write_tx!(self, conn => {
                let ids: Vec<i64> = outbox::table
                    .filter(due)
                    .order(outbox::id)
                    .limit(limit)
                    .select(outbox::id)
                    .load(conn)?;
                diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
                    .set(outbox::leased_until.eq(Some(until)))
                    .execute(conn)?;
                Ok(outbox::table
                    .filter(outbox::id.eq_any(&ids))
                    .order(outbox::id)
                    .select(OutboxRow::as_select())
                    .load(conn)?)
            }),
        }
    }

    pub fn mark_delivered(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StorageError> {
        let now = now.naive_utc();
        write_tx!(self, conn => {
            diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
                .set((
                    outbox::delivered_at.eq(Some(now)),
                    outbox::leased_until.eq(None::<NaiveDateTime>),
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    /// Records a failed attempt: retried at `next_attempt`, or given up when `give_up`.
    pub fn mark_failed(
        &self,
        ids: &[i64],
        error: &str,
        next_attempt: DateTime<Utc>,
        give_up: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let now = now.naive_utc();
        let next = next_attempt.naive_utc();
        write_tx!(self, conn => {
            diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
                .set((
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::last_error.eq(Some(error)),
                    outbox::next_attempt_at.eq(next),
                    outbox::leased_until.eq(None::<NaiveDateTime>),
                    outbox::gave_up_at.eq(if give_up { Some(now) } else { None }),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    /// Outbox rows, newest first; `status` one of pending, failed, delivered, gave_up
    /// (or None for all).
    pub fn outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>, StorageError> {
        let status = status.map(str::to_owned);
        Ok(with_conn!(self, conn => {
            let mut q = outbox::table.select(OutboxRow::as_select()).into_boxed();
            match status.as_deref() {
                Some("delivered") => q = q.filter(outbox::delivered_at.is_not_null()),
                Some("gave_up") => q = q.filter(outbox::gave_up_at.is_not_null()),
                Some("failed") => q = q.filter(outbox::delivered_at.is_null()).filter(outbox::gave_up_at.is_null()).filter(outbox::attempts.gt(0)),
                Some("pending") => q = q.filter(outbox::delivered_at.is_null()).filter(outbox::gave_up_at.is_null()).filter(outbox::attempts.eq(0)),
                _ => {}
            }
            q.order(outbox::id.desc()).limit(limit.max(1)).load(conn)?
        }))
    }

    pub fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            outbox::table.find(id).select(OutboxRow::as_select()).first(conn).optional()?
        }))
    }

    /// Puts given-up (or failed) rows back in the queue, due now, with a fresh
    /// give-up clock; `ids` narrows to those rows. Delivered rows are never resent.
    /// Returns how many rows were requeued.
    pub fn requeue_outbox(
        &self,
        status: &str,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<usize, StorageError> {
        let now = now.naive_utc();
        let status = status.to_owned();
        write_tx!(self, conn => {
            let mut q = diesel::update(outbox::table)
                .filter(outbox::delivered_at.is_null())
                .into_boxed();
            match status.as_str() {
                "gave_up" => q = q.filter(outbox::gave_up_at.is_not_null()),
                "failed" => q = q.filter(outbox::gave_up_at.is_null()).filter(outbox::attempts.gt(0)),
                _ => {}
            }
            if !ids.is_empty() {
                q = q.filter(outbox::id.eq_any(ids));
            }
            Ok(q.set((
                outbox::gave_up_at.eq(None::<NaiveDateTime>),
                outbox::next_attempt_at.eq(now),
                outbox::leased_until.eq(None::<NaiveDateTime>),
                outbox::requeued_at.eq(Some(now)),
                outbox::attempts.eq(0),
            ))
            .execute(conn)?)
        })
    }

    /// Queues one notification directly (tests, `notify test`).
    pub fn enqueue_one(&self, row: &NewOutbox) -> Result<usize, StorageError> {
        write_tx!(self, conn => {
            Ok(diesel::insert_into(outbox::table)
                .values(row)
                .on_conflict(outbox::dedup_key)
                .do_nothing()
                .execute(conn)?)
        })
    }
}
