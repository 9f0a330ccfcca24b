//! Opening a store: URL parsing, connection pools, per-connection settings, and the
//! embedded migrations of each backend (run on every open, idempotent).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::{PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::{DbPool, StorageError, Store, StoreInner};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises concurrent `open` calls of several workers on one PostgreSQL database.
const PG_MIGRATION_LOCK: i64 = 0x6775_6172_6472_6169; // "guardrai"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug)]
struct SqliteSettings;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // WAL lets readers (the UI) run during a sweep; NORMAL sync is durable across
        // process crashes, which is the failure that matters for a monitor. Temp store in
        // memory: each multi-row INSERT … RETURNING in a transaction keeps a statement
        // journal, which on disk wrote 4.5x the final database size of a first ingest
        // (strace by file: 900 MB of /var/tmp/etilqs_* for a 103 MB database).
        conn.batch_execute(
            "PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Removes the password from a database URL so it can be printed.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    /// `sqlite://PATH` (relative or `sqlite:///absolute`) or `postgres://…`.
    pub fn open(url: &str) -> Result<Store, StorageError> {
        let shown = redact_url(url);
        let pool = if let Some(path) = sqlite_path(url) {
            DbPool::Sqlite(open_sqlite(path, &shown)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DbPool::Pg(open_pg(url, &shown)?)
        } else {
            return Err(StorageError::BadUrl(shown));
        };
        let store = Store {
            inner: Arc::new(StoreInner {
                pool,
                sqlite_writer: Mutex::new(()),
                url: url.to_owned(),
            }),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens a database that must exist already: for commands that only read, a
    /// mistyped SQLite path must name the missing file, not silently create an empty
    /// database that answers "nothing found".
    pub fn open_existing(url: &str) -> Result<Store, StorageError> {
        if let Some(path) = sqlite_path(url) {
            if path != ":memory:" && !Path::new(path).exists() {
                return Err(StorageError::Open {
                    url: redact_url(url),
                    reason: format!(
                        "no database at {path}; check --database (or GUARDRAIL_DATABASE_URL), \
                         or create it with `guardrail sweep`"
                    ),
                });
            }
        }
        Store::open(url)
    }

    fn migrate(&self) -> Result<(), StorageError> {
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Migration {
            url: self.display_url(),
            reason: e.to_string(),
        };
        match &self.inner.pool {
            DbPool::Sqlite(pool) => {
                let mut conn = pool.get()?;
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(fail)?;
            }
            DbPool::Pg(pool) => {
                let mut conn = pool.get()?;
                diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                    .execute(&mut **conn)?;
                let result = conn.run_pending_migrations(PG_MIGRATIONS).map(|_| ());
                diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                    .execute(&mut **conn)?;
                result.map_err(fail)?;
            }
        }
        Ok(())
    }
}

fn open_sqlite(
    path: &str,
    shown: &str,
) -> Result<Pool<ConnectionManager<SqliteConnection>>, StorageError> {
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| StorageError::Open {
            url: shown.to_owned(),
            reason: format!(
                "cannot create directory {}: {e}; choose another --database path",
                parent.display()
            ),
        })?;
    }
    // Open one connection directly first: r2d2 would retry a broken file for the whole
    // connection timeout and then report only "timed out".
    {
        use diesel::Connection;
        let mut probe = SqliteConnection::establish(path).map_err(|e| StorageError::Open {
            url: shown.to_owned(),
            reason: format!("{e}; check the path and that the directory is writable"),
        })?;
        SqliteSettings
            .on_acquire(&mut probe)
            .map_err(|e| StorageError::Open {
                url: shown.to_owned(),
                reason: format!("{e}; is the file a SQLite database?"),
            })?;
    }
    Pool::builder()
        .max_size(4)
        .connection_timeout(Duration::from_secs(30))
        .connection_customizer(Box::new(SqliteSettings))
        .build(ConnectionManager::<SqliteConnection>::new(path))
        .map_err(|e| StorageError::Open {
            url: shown.to_owned(),
            reason: format!(
                "{e}; check that the file is a SQLite database and the directory is writable"
            ),
        })
}

/// A pooled PostgreSQL connection and when it last answered a liveness check.
pub(crate) struct PgConn {
    conn: PgConnection,
    checked: Instant,
}

impl std::ops::Deref for PgConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// How long a connection that answered a check is trusted without another one.
const PG_CHECK_EVERY: Duration = Duration::from_secs(1);

/// r2d2's check-out test is a `SELECT 1` round trip before every query, which cost
/// 15% of the server's throughput under load (1,486 -> 1,743 requests/s without it).
/// Not testing at all would keep a dead connection (after a PostgreSQL restart) in
/// the pool for good: diesel only reports a connection broken inside a failed
/// transaction. So a connection is tested at check-out when its last good check is
/// older than [`PG_CHECK_EVERY`]; a restart costs at most that long of failed reads.
pub(crate) struct PgManager(ConnectionManager<PgConnection>);

impl diesel::r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConn, diesel::r2d2::Error> {
        Ok(PgConn {
            conn: self.0.connect()?,
            checked: Instant::now(),
        })
    }

    fn is_valid(&self, c: &mut PgConn) -> Result<(), diesel::r2d2::Error> {
        if c.checked.elapsed() < PG_CHECK_EVERY {
            return Ok(());
        }
        self.0.is_valid(&mut c.conn)?;
        c.checked = Instant::now();
        Ok(())
    }

    fn has_broken(&self, c: &mut PgConn) -> bool {
        self.0.has_broken(&mut c.conn)
    }
}

fn open_pg(url: &str, shown: &str) -> Result<Pool<PgManager>, StorageError> {
    // libpq speaks TLS through OpenSSL, which by default frees its tables in an exit
    // handler. r2d2 connects from worker threads, so a short command can exit while a
    // worker is mid-handshake, and OpenSSL's cleanup then frees memory under it
    // (segfault, seen in ~7% of `guardrail diff` runs against PostgreSQL). Initialise
    // OpenSSL without the exit handler before the first connection; the OS reclaims it.
    openssl_sys::init();
    // Fail fast with the server's own message (r2d2 would retry for the whole
    // timeout and then report only "timed out").
    use diesel::Connection;
    PgConnection::establish(url).map_err(|e| StorageError::Open {
        url: shown.to_owned(),
        reason: format!("{e}; is PostgreSQL running and does the database exist?"),
    })?;
    Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(PgManager(ConnectionManager::new(url)))
        .map_err(|e| StorageError::Open {
            url: shown.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }

    /// Applies every migration before the findings-scope one and stores two items
    /// with a finding each, as a database of an earlier release would hold them.
    fn before_scope_migration<C, DB>(conn: &mut C, migrations: EmbeddedMigrations)
    where
        DB: diesel::backend::Backend,
        C: MigrationHarness<DB> + diesel::migration::MigrationConnection<Backend = DB>,
    {
        use diesel::migration::MigrationSource;
        conn.setup().unwrap();
        let all = MigrationSource::<DB>::migrations(&migrations).unwrap();
        let scope = all
            .iter()
            .position(|m| m.name().to_string().ends_with("_findings_scope"))
            .unwrap();
        for m in &all[..scope] {
            conn.run_migration(m.as_ref()).unwrap();
        }
        conn.batch_execute(
            "INSERT INTO items (account, region, resource_type, resource_id, tags, active, version, \
             config_hash, observed_at, ephemeral, ephemeral_hash, first_seen_at) VALUES \
             ('111111111111', 'us-east-1', 'AWS::S3::Bucket', 'b', '{}', TRUE, 1, 'h', '2026-11-01 00:00:00', '{}', 'e', '2026-11-01 00:00:00'), \
             ('222222222222', 'eu-west-1', 'AWS::IAM::Role', 'r', '{}', TRUE, 1, 'h', '2026-11-01 00:00:00', '{}', 'e', '2026-11-01 00:00:00'); \
             INSERT INTO findings (fingerprint, item_id, rule_id, finding_key, kind, state, score, rule_score, \
             severity, title, detail, remediation, first_seen_at, last_seen_at, opened_at) \
             SELECT 'f' || CAST(id AS TEXT), id, 'r', 'k', 'state', 'open', 5, 5, 'medium', 't', 'd', 'm', \
             '2026-11-01 00:00:00', '2026-11-01 00:00:00', '2026-11-01 00:00:00' FROM items;",
        )
        .unwrap();
    }

    /// Opening the older database runs the migration, which copies each finding's
    /// account and type from its item; the filters that read the copies find them.
    fn scope_was_backfilled(url: &str) {
        let store = Store::open(url).unwrap();
        let q = |account: Option<&str>, rtype: Option<&str>| {
            store
                .findings_page(&crate::FindingQuery {
                    account: account.map(str::to_owned),
                    resource_type: rtype.map(str::to_owned),
                    ..Default::default()
                })
                .unwrap()
                .rows
                .into_iter()
                .map(|(_, i)| i.resource_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(q(Some("111111111111"), None), ["b"]);
        assert_eq!(q(None, Some("AWS::IAM::Role")), ["r"]);
        assert_eq!(
            q(Some("111111111111"), Some("AWS::IAM::Role")),
            Vec::<String>::new()
        );
    }

    /// Statement journals of multi-row INSERT … RETURNING go to temporary files; on
    /// disk they wrote several times the database (see `SqliteSettings`).
    #[test]
    fn sqlite_connections_keep_temporary_files_in_memory() {
        #[derive(diesel::QueryableByName)]
        struct TempStore {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            temp_store: i32,
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display())).unwrap();
        let crate::DbPool::Sqlite(pool) = &store.inner.pool else {
            panic!("a SQLite store");
        };
        let mut conn = pool.get().unwrap();
        let v: TempStore =
            diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA temp_store"), &mut *conn)
                .unwrap();
        assert_eq!(v.temp_store, 2, "temp_store = MEMORY");
    }

    #[test]
    fn sqlite_findings_scope_migration_backfills() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let path = path.to_str().unwrap();
        let mut conn = <SqliteConnection as diesel::Connection>::establish(path).unwrap();
        before_scope_migration(&mut conn, SQLITE_MIGRATIONS);
        drop(conn);
        scope_was_backfilled(&format!("sqlite://{path}"));
    }

    #[test]
    fn postgres_findings_scope_migration_backfills() {
        let Some(db) = crate::testing::PgTestDb::create_or_skip("gr_migrate") else {
            return;
        };
        let mut conn = <PgConnection as diesel::Connection>::establish(&db.url).unwrap();
        before_scope_migration(&mut conn, PG_MIGRATIONS);
        drop(conn);
        scope_was_backfilled(&db.url);
    }

    /// Connections PostgreSQL dropped (a restart, an idle timeout, an operator) are
    /// found by the check-out test once it is due and replaced; the pool does not keep
    /// handing them out.
    #[test]
    fn postgres_pool_replaces_dropped_connections() {
        let Some(db) = crate::testing::PgTestDb::create_or_skip("gr_pool") else {
            return;
        };
        let store = Store::open(&db.url).unwrap();
        store.ping().unwrap();
        let mut admin = <PgConnection as diesel::Connection>::establish(&db.url).unwrap();
        let killed = diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&mut admin)
        .unwrap();
        assert!(killed >= 1, "no pooled connection to drop");
        std::thread::sleep(PG_CHECK_EVERY + Duration::from_millis(200));
        for _ in 0..3 {
            store.ping().unwrap();
        }
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite://data/g.db"), Some("data/g.db"));
        assert_eq!(sqlite_path("sqlite:///tmp/g.db"), Some("/tmp/g.db"));
        assert_eq!(sqlite_path("sqlite://"), None);
        assert!(matches!(
            Store::open("mysql://x"),
            Err(StorageError::BadUrl(_))
        ));
    }
}
