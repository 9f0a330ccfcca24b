//! Leased sweep jobs and named worker leases: how several workers share one database.
//!
//! Each (source, account) sweep is a row of `sweep_jobs`. A worker claims a due job
//! whose lease is free or expired (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so
//! workers claiming at once never wait on each other or take the same row), renews
//! its leases from a heartbeat, and gives the job back with its next due time. A job
//! whose worker died is taken over once the lease expires; the takeover is counted and
//! reported. An unexpired lease is never taken, so two workers never run one job.
//!
//! `worker_leases` holds named leases with the same rules (`audit`: one audit-and-route
//! pass at a time across every worker). On SQLite the same statements run inside
//! `BEGIN IMMEDIATE`, so they are just as exclusive for the one process that uses it.
//!
//! Times are the workers' clocks (UTC); hosts sharing a database keep NTP time, and the
//! lease (a minute by default) is far longer than any sane skew.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit_state::owner_gone;
use crate::query::utc_serde;
use crate::schema::{sweep_jobs, worker_leases};
use crate::{write_tx, DbPool, StorageError, Store};

/// What one job should be, as a worker's configuration defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// `source` or `source/account`.
    pub job: String,
    pub source: String,
    pub account: String,
    pub role_arn: Option<String>,
    pub definition: String,
    pub interval: Duration,
    /// When a job new to the database is first due (start-up spreads them out).
    pub first_due: DateTime<Utc>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = sweep_jobs)]
pub struct JobRow {
    pub job: String,
    pub source: String,
    pub account: String,
    pub role_arn: Option<String>,
    pub definition: String,
    pub interval_ms: i64,
    #[serde(with = "utc_serde")]
    pub due_at: NaiveDateTime,
    pub leased_by: Option<String>,
    #[serde(with = "crate::query::utc_serde::option")]
    pub lease_until: Option<NaiveDateTime>,
    #[serde(with = "crate::query::utc_serde::option")]
    pub started_at: Option<NaiveDateTime>,
    #[serde(with = "crate::query::utc_serde::option")]
    pub finished_at: Option<NaiveDateTime>,
    pub runs: i64,
    pub takeovers: i64,
    pub last_status: Option<String>,
    pub last_message: Option<String>,
}

/// A job this worker now holds.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub row: JobRow,
    /// The worker whose lease had expired when this one took the job over.
    pub taken_over_from: Option<String>,
}

/// What a [`Store::sync_jobs`] call changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobSync {
    pub added: Vec<String>,
    /// Jobs whose stored definition differed (edited source, or another worker reading
    /// another version of the configuration): due at once with this one.
    pub redefined: Vec<String>,
    pub removed: Vec<String>,
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

impl Store {
    /// Makes `specs` the jobs of `sources`: adds the missing ones, redefines the changed
    /// ones (due at once), and removes the jobs of those sources that `specs` no longer
    /// holds (an account that left the organisation, a removed source). Jobs of other
    /// sources are left alone: another process may be running them.
    pub fn sync_jobs(
        &self,
        sources: &[String],
        specs: &[JobSpec],
        now: DateTime<Utc>,
    ) -> Result<JobSync, StorageError> {
        let now = naive(now);
        write_tx!(self, conn => {
            let stored: Vec<(String, String, i64, Option<String>)> = sweep_jobs::table
                .filter(sweep_jobs::source.eq_any(sources))
                .select((sweep_jobs::job, sweep_jobs::definition, sweep_jobs::interval_ms, sweep_jobs::role_arn))
                .load(conn)?;
            let mut sync = JobSync::default();
            for spec in specs {
                let interval_ms = spec.interval.num_milliseconds();
                match stored.iter().find(|(job, ..)| job == &spec.job) {
                    None => {
                        diesel::insert_into(sweep_jobs::table)
                            .values((
                                sweep_jobs::job.eq(&spec.job),
                                sweep_jobs::source.eq(&spec.source),
                                sweep_jobs::account.eq(&spec.account),
                                sweep_jobs::role_arn.eq(&spec.role_arn),
                                sweep_jobs::definition.eq(&spec.definition),
                                sweep_jobs::interval_ms.eq(interval_ms),
                                sweep_jobs::due_at.eq(naive(spec.first_due)),
                            ))
                            .on_conflict(sweep_jobs::job)
                            .do_nothing()
                            .execute(conn)?;
                        sync.added.push(spec.job.clone());
                    }
                    Some((_, definition, interval, role)) => {
                        if definition != &spec.definition || *interval != interval_ms {
                            diesel::update(sweep_jobs::table.find(&spec.job))
                                .set((
                                    sweep_jobs::definition.eq(&spec.definition),
                                    sweep_jobs::interval_ms.eq(interval_ms),
                                    sweep_jobs::role_arn.eq(&spec.role_arn),
                                    sweep_jobs::due_at.eq(now),
                                ))
                                .execute(conn)?;
                            sync.redefined.push(spec.job.clone());
                        } else if role != &spec.role_arn {
                            diesel::update(sweep_jobs::table.find(&spec.job))
                                .set(sweep_jobs::role_arn.eq(&spec.role_arn))
                                .execute(conn)?;
                        }
                    }
                }
            }
            for (job, ..) in &stored {
                if !specs.iter().any(|s| &s.job == job) {
                    diesel::delete(sweep_jobs::table.find(job)).execute(conn)?;
                    sync.removed.push(job.clone());
                }
            }
            Ok(sync)
        })
    }

    /// Expires at once the job leases of workers that ran on this host and are gone
    /// (killed, crashed), so their jobs are taken over without waiting out the lease.
    /// Workers on other hosts are only presumed dead when their lease expires.
    pub fn expire_gone_workers(&self, now: DateTime<Utc>) -> Result<Vec<String>, StorageError> {
        let now = naive(now);
        let holders: Vec<Option<String>> = crate::with_conn!(self, conn => {
            sweep_jobs::table
                .filter(sweep_jobs::lease_until.ge(now))
                .select(sweep_jobs::leased_by)
                .distinct()
                .load(conn)?
        });
        let gone: Vec<String> = holders
            .into_iter()
            .flatten()
            .filter(|h| owner_gone(h))
            .collect();
        if !gone.is_empty() {
            write_tx!(self, conn => {
                diesel::update(sweep_jobs::table.filter(sweep_jobs::leased_by.eq_any(&gone)))
                    .set(sweep_jobs::lease_until.eq(Some(now - Duration::seconds(1))))
                    .execute(conn)?;
                Ok(())
            })?;
        }
        Ok(gone)
    }

    /// Takes the job among `mine` due longest ago whose lease is free or expired, for
    /// `lease`. `None`: nothing of `mine` is due (or every due one is held).
    pub fn claim_job(
        &self,
        worker: &str,
        mine: &[String],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, StorageError> {
        let now = naive(now);
        let until = now + lease;
        let claimable = sweep_jobs::job
            .eq_any(mine)
            .and(sweep_jobs::due_at.le(now))
            .and(
                sweep_jobs::lease_until
                    .is_null()
                    .or(sweep_jobs::lease_until.lt(now)),
            );
        macro_rules! take {
            ($conn:ident, $candidate:expr) => {{
                let Some(mut row): Option<JobRow> = $candidate else {
                    return Ok(None);
                };
                let taken_over_from = row.leased_by.clone().filter(|w| w != worker);
                // Guarded again by the lease condition: on SQLite the transaction is the
                // lock; on PostgreSQL the row lock already is, and this costs nothing.
                let n = diesel::update(
                    sweep_jobs::table.find(&row.job).filter(
                        sweep_jobs::lease_until
                            .is_null()
                            .or(sweep_jobs::lease_until.lt(now)),
                    ),
                )
                .set((
                    sweep_jobs::leased_by.eq(Some(worker)),
                    sweep_jobs::lease_until.eq(Some(until)),
                    sweep_jobs::started_at.eq(Some(now)),
                    sweep_jobs::takeovers
                        .eq(sweep_jobs::takeovers + i64::from(taken_over_from.is_some())),
                ))
                .execute($conn)?;
                if n == 0 {
                    return Ok(None);
                }
                row.leased_by = Some(worker.to_owned());
                row.lease_until = Some(until);
                row.started_at = Some(now);
                row.takeovers += i64::from(taken_over_from.is_some());
                Ok(Some(ClaimedJob {
                    row,
                    taken_over_from,
                }))
            }};
        }
        match &self.inner.pool {
            DbPool::Pg(pool) => {
                let mut conn = pool.get()?;
                conn.transaction(|conn| {
                    let candidate = sweep_jobs::table
                        .filter(claimable)
                        .order((sweep_jobs::due_at, sweep_jobs::job))
                        .select(JobRow::as_select())
                        .for_update()
                        .skip_locked()
                        .first(conn)
                        .optional()?;
                    take!(conn, candidate)
                })
            }
            DbPool::Sqlite(_) => write_tx!(self, conn => {
                let candidate = sweep_jobs::table
                    .filter(claimable)
                    .order((sweep_jobs::due_at, sweep_jobs::job))
                    .select(JobRow::as_select())
                    .first(conn)
                    .optional()?;
                take!(conn, candidate)
            }),
        }
    }

    /// Gives a finished job back: next due at `next_due` (unless its definition changed
    /// while it ran: then it stays due at once). `false`: this worker no longer held the
    /// lease (its heartbeat stopped long enough for another worker to take the job).
    pub fn finish_job(
        &self,
        job: &ClaimedJob,
        worker: &str,
        now: DateTime<Utc>,
        status: &str,
        message: &str,
        next_due: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let now = naive(now);
        write_tx!(self, conn => {
            let mine = sweep_jobs::table
                .find(&job.row.job)
                .filter(sweep_jobs::leased_by.eq(worker));
            let n = diesel::update(mine)
                .set((
                    sweep_jobs::leased_by.eq(None::<String>),
                    sweep_jobs::lease_until.eq(None::<NaiveDateTime>),
                    sweep_jobs::finished_at.eq(Some(now)),
                    sweep_jobs::runs.eq(sweep_jobs::runs + 1),
                    sweep_jobs::last_status.eq(Some(status)),
                    sweep_jobs::last_message.eq(Some(message)),
                ))
                .execute(conn)?;
            if n > 0 {
                diesel::update(
                    sweep_jobs::table
                        .find(&job.row.job)
                        .filter(sweep_jobs::definition.eq(&job.row.definition)),
                )
                .set(sweep_jobs::due_at.eq(naive(next_due)))
                .execute(conn)?;
            }
            Ok(n > 0)
        })
    }

    /// Extends every lease `worker` holds (jobs and named leases) to `now + lease`.
    pub fn renew_leases(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<usize, StorageError> {
        let until = naive(now) + lease;
        write_tx!(self, conn => {
            let jobs = diesel::update(sweep_jobs::table.filter(sweep_jobs::leased_by.eq(worker)))
                .set(sweep_jobs::lease_until.eq(Some(until)))
                .execute(conn)?;
            let named = diesel::update(worker_leases::table.filter(worker_leases::holder.eq(worker)))
                .set(worker_leases::lease_until.eq(Some(until)))
                .execute(conn)?;
            Ok(jobs + named)
        })
    }

    /// Every job, by source and job name.
    pub fn jobs(&self) -> Result<Vec<JobRow>, StorageError> {
        Ok(crate::with_conn!(self, conn => {
            sweep_jobs::table
                .order((sweep_jobs::source, sweep_jobs::job))
                .select(JobRow::as_select())
                .load(conn)?
        }))
    }

    /// Takes the named lease for `holder` when it is free, expired or already theirs.
    pub fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StorageError> {
        let now = naive(now);
        write_tx!(self, conn => {
            diesel::insert_into(worker_leases::table)
                .values(worker_leases::name.eq(name))
                .on_conflict(worker_leases::name)
                .do_nothing()
                .execute(conn)?;
            // A holder that ran on this host and is gone frees the lease at once.
            let current: Option<String> = worker_leases::table
                .find(name)
                .select(worker_leases::holder)
                .first(conn)?;
            let gone = current.as_deref().is_some_and(|h| h != holder && owner_gone(h));
            if gone {
                diesel::update(worker_leases::table.find(name))
                    .set(worker_leases::holder.eq(None::<String>))
                    .execute(conn)?;
            }
            let n = diesel::update(
                worker_leases::table.find(name).filter(
                    worker_leases::holder
                        .is_null()
                        .or(worker_leases::holder.eq(holder))
                        .or(worker_leases::lease_until.lt(now)),
                ),
            )
            .set((
                worker_leases::holder.eq(Some(holder)),
                worker_leases::lease_until.eq(Some(now + lease)),
            ))
            .execute(conn)?;
            Ok(n > 0)
        })
    }

    /// Gives the named lease back (a no-op when `holder` no longer has it).
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError> {
        write_tx!(self, conn => {
            diesel::update(
                worker_leases::table
                    .find(name)
                    .filter(worker_leases::holder.eq(holder)),
            )
            .set((
                worker_leases::holder.eq(None::<String>),
                worker_leases::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
            Ok(())
        })
    }

    /// Who this process is to the leases and sweeps it holds: host and process id.
    pub fn worker_id() -> String {
        Store::sweep_owner()
    }
}
