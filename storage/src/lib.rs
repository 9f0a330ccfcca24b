//! Versioned history of cloud configuration items.
//!
//! One revision per durable change (canonical JSON plus its SHA-256), ephemeral data
//! kept on the item, deletions inferred only from complete listings. SQLite is the
//! embedded default; PostgreSQL serves teams running several workers. Both backends
//! share one schema definition and one set of queries: each query body is written
//! once and compiled against both concrete connection types by [`with_conn!`], which
//! keeps diesel's type checking without generic-bound gymnastics.

// One module per entity (items, revisions, sweeps, findings and their pages, the
// outbox, tokens); each holds its row types and the one query per question that the
// CLI and the server both use.
mod audit_state;
pub mod auth;
mod dashboard;
mod error;
pub mod export;
mod finding_pages;
pub mod findings;
mod ingest;
mod items;
mod jobs;
mod open;
pub mod outbox;
mod query;
mod revisions;
pub mod schema;
mod sweeps;
pub mod testing;

pub use audit_state::{DueAudit, DueRule, RuleHealthRow, SWEEP_SILENCE};
pub use auth::{Principal, Role, TokenRow};
pub use dashboard::{Count, MetricsSnapshot, Summary, SummaryCounts};
pub use error::StorageError;
pub use export::{finding_csv_fields, finding_json, to_ocsf, FINDING_CSV_COLUMNS, OCSF_VERSION};
pub use finding_pages::{FindingPage, FindingQuery, FindingSort};
pub use findings::{
    fingerprint, AuditSummary, AuditedAs, FindingEventRow, FindingRow, ItemAudit, NewFinding,
    RuleErrorRow, RuleResult,
};
pub use ingest::{Ingestor, SweepSummary};
pub use items::{ItemPage, ItemQuery, ItemRow};
pub use jobs::{ClaimedJob, JobRow, JobSpec, JobSync};
pub use open::{redact_url, Backend};
pub use outbox::{NewOutbox, OutboxRow, RoutableEvent};
pub use query::MAX_PAGE;
pub use revisions::{actor_of, RevisionMeta, RevisionRow};
pub use sweeps::{SourceHealth, SweepErrorRow, SweepRow};

use diesel::r2d2::{ConnectionManager, Pool};
use diesel::SqliteConnection;
use std::sync::{Arc, Mutex};

pub(crate) enum DbPool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Pg(Pool<open::PgManager>),
}

/// A handle on the store; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

pub(crate) struct StoreInner {
    pub(crate) pool: DbPool,
    /// SQLite allows one writer; serialising writers in-process avoids lock
    /// upgrades failing with SQLITE_BUSY despite the busy timeout.
    pub(crate) sqlite_writer: Mutex<()>,
    pub(crate) url: String,
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the
/// store uses. The body is compiled once per backend.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:expr) => {
        match &$store.inner.pool {
            $crate::DbPool::Sqlite(pool) => {
                let mut guard = pool.get()?;
                let $conn = &mut *guard;
                $body
            }
            $crate::DbPool::Pg(pool) => {
                let mut guard = pool.get()?;
                let $conn: &mut diesel::PgConnection = &mut *guard;
                $body
            }
        }
    };
}

/// Like [`with_conn!`] inside a write transaction (`BEGIN IMMEDIATE` on SQLite).
/// `$body` returns `Result<T, StorageError>`; an error rolls everything back.
macro_rules! write_tx {
    ($store:expr, $conn:ident => $body:expr) => {
        match &$store.inner.pool {
            $crate::DbPool::Sqlite(pool) => {
                let _writer = $store
                    .inner
                    .sqlite_writer
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let mut guard = pool.get()?;
                guard.immediate_transaction(|$conn| -> Result<_, $crate::StorageError> { $body })
            }
            $crate::DbPool::Pg(pool) => {
                let mut guard = pool.get()?;
                guard.transaction(|$conn| -> Result<_, $crate::StorageError> { $body })
            }
        }
    };
}

pub(crate) use with_conn;
pub(crate) use write_tx;

impl Store {
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            DbPool::Sqlite(_) => Backend::Sqlite,
            DbPool::Pg(_) => Backend::Postgres,
        }
    }

    /// How many database connections the store's pool holds: the most queries that
    /// can run at once.
    pub fn max_connections(&self) -> u32 {
        match &self.inner.pool {
            DbPool::Sqlite(p) => p.max_size(),
            DbPool::Pg(p) => p.max_size(),
        }
    }

    /// The URL the store was opened with, password removed.
    pub fn display_url(&self) -> String {
        redact_url(&self.inner.url)
    }
}
