//! Opening a store: URL parsing, connection pools, per-connection settings, and the
//! embedded migrations of each backend (run on every open, idempotent).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        // process crashes, which is the failure that matters for a monitor.
        conn.batch_execute(
            "PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON;",
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
                    .execute(&mut *conn)?;
                let result = conn.run_pending_migrations(PG_MIGRATIONS).map(|_| ());
                diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                    .execute(&mut *conn)?;
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

fn open_pg(url: &str, shown: &str) -> Result<Pool<ConnectionManager<PgConnection>>, StorageError> {
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
        .build(ConnectionManager::<PgConnection>::new(url))
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
