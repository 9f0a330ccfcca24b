//! Throw-away databases for tests and benchmarks: a temporary SQLite file, or a fresh
//! PostgreSQL database created on the server named by `GUARDRAIL_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) and dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::{Connection, PgConnection, RunQueryDsl};

pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether PostgreSQL tests must run (CI sets `GUARDRAIL_REQUIRE_PG=1`): then an
/// unreachable server fails the test instead of skipping it.
pub fn pg_required() -> bool {
    std::env::var("GUARDRAIL_REQUIRE_PG").is_ok_and(|v| v == "1" || v == "true")
}

pub fn pg_admin_url() -> String {
    std::env::var("GUARDRAIL_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned())
}

/// A PostgreSQL database that exists for the lifetime of the value.
pub struct PgTestDb {
    admin_url: String,
    name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl PgTestDb {
    /// Creates a fresh database, or returns `Err` with the reason the server could not
    /// be used (callers skip unless [`pg_required`]).
    pub fn create(prefix: &str) -> Result<PgTestDb, String> {
        let admin_url = pg_admin_url();
        let mut admin = PgConnection::establish(&admin_url)
            .map_err(|e| format!("PostgreSQL at {admin_url} is not usable: {e}"))?;
        let name = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .map_err(|e| format!("cannot create test database {name}: {e}"))?;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => return Err(format!("cannot derive a database URL from {admin_url}")),
        };
        Ok(PgTestDb {
            admin_url,
            name,
            url,
        })
    }

    /// Like [`PgTestDb::create`], but panics when PostgreSQL is required and missing,
    /// and returns `None` (after saying so on stderr) when it may be skipped.
    pub fn create_or_skip(prefix: &str) -> Option<PgTestDb> {
        match PgTestDb::create(prefix) {
            Ok(db) => Some(db),
            Err(reason) if pg_required() => {
                panic!("{reason} (GUARDRAIL_REQUIRE_PG is set, so this is a failure)")
            }
            Err(reason) => {
                eprintln!("skipping PostgreSQL test: {reason}");
                None
            }
        }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Runs SQL straight against a database URL (`sqlite://PATH` or `postgres://…`), for
/// tests that break the database on purpose (a trigger that fails inserts, say).
pub fn execute_sql(url: &str, sql: &str) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let fail = |e: &dyn std::fmt::Display| format!("{url}: {e}");
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = diesel::SqliteConnection::establish(path).map_err(|e| fail(&e))?;
        conn.batch_execute(sql).map_err(|e| fail(&e))
    } else {
        let mut conn = PgConnection::establish(url).map_err(|e| fail(&e))?;
        conn.batch_execute(sql).map_err(|e| fail(&e))
    }
}
