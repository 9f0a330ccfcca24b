//! One module per subcommand.

pub mod accounts;
pub mod audit;
pub mod bench;
pub mod changes;
pub mod diff;
pub mod events;
pub mod findings;
pub mod history;
pub mod items;
pub mod notify;
pub mod policy;
pub mod rules;
pub mod serve;
pub mod show;
pub mod status;
pub mod sweep;
pub mod sweeps;
pub mod token;
pub mod watch;
pub mod worker;

use anyhow::Context as _;
use guardrail_storage::Store;

use crate::output::Format;

pub struct Context {
    pub database_url: String,
    pub format: Format,
    pub rules_dir: std::path::PathBuf,
    pub config: crate::config::Config,
    /// The configuration file, re-read by the scheduler when it changes.
    pub config_path: Option<std::path::PathBuf>,
}

impl Context {
    /// Text or JSON; CSV and OCSF are export formats of `findings`.
    pub fn format(&self) -> anyhow::Result<Format> {
        match self.format {
            Format::Csv | Format::Ocsf | Format::OcsfNdjson => {
                anyhow::bail!("--format csv, ocsf and ocsf-ndjson are for `guardrail findings`; use text or json here")
            }
            f => Ok(f),
        }
    }

    pub fn auditor(&self) -> anyhow::Result<crate::audit::Auditor> {
        crate::audit::Auditor::new(&self.rules_dir, &self.config)
    }

    /// Opens the database, creating it if needed: for commands that write
    /// (sweep, watch, serve, token, notify).
    pub fn open_store(&self) -> anyhow::Result<Store> {
        Store::open(&self.database_url).with_context(|| {
            "opening the database (set --database or GUARDRAIL_DATABASE_URL)".to_owned()
        })
    }

    /// Opens a database that must exist: for commands that read what sweeps stored.
    pub fn open_existing_store(&self) -> anyhow::Result<Store> {
        Store::open_existing(&self.database_url).with_context(|| {
            "opening the database (set --database or GUARDRAIL_DATABASE_URL)".to_owned()
        })
    }
}

/// Shortens a timestamp for tables.
pub fn short_time(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Says on stderr when a listing stopped at its limit, so a cut list never reads as
/// the whole (stdout stays the data, for scripts).
pub fn note_if_cut(shown: usize, limit: i64, what: &str) {
    if limit > 0 && shown as i64 >= limit {
        eprintln!("note: showing the first {limit} {what}; there may be more (raise --limit)");
    }
}

/// Like [`note_if_cut`] when the listing knows there is more and where it continues.
pub fn note_more<C: std::fmt::Display>(shown: usize, what: &str, next: Option<C>) {
    if let Some(next) = next {
        eprintln!("note: showing the first {shown} {what}; there are more (raise --limit, or continue with --after {next})");
    }
}

/// Up to `limit` rows (`<= 0`: all) of one of storage's paged queries, following its
/// cursor from `start`: storage caps a page at [`guardrail_storage::MAX_PAGE`], so the
/// CLI and the server run the same query and only the CLI asks for several pages.
/// Returns the rows and, when more exist, the cursor after the last one.
pub fn collect_pages<T, C>(
    limit: i64,
    start: Option<C>,
    mut page: impl FnMut(Option<C>, i64) -> Result<(Vec<T>, Option<C>), guardrail_storage::StorageError>,
) -> Result<(Vec<T>, Option<C>), guardrail_storage::StorageError> {
    let limit = if limit <= 0 { i64::MAX } else { limit };
    let mut rows = Vec::new();
    let mut cursor = start;
    loop {
        let want = (limit - rows.len() as i64).min(guardrail_storage::MAX_PAGE);
        let (got, next) = page(cursor.take(), want)?;
        rows.extend(got);
        match next {
            Some(next) if (rows.len() as i64) < limit => cursor = Some(next),
            next => return Ok((rows, next)),
        }
    }
}

/// The cursor of a "before this id" page: the last row's key when the page was full.
pub fn before_cursor<T>(rows: &[T], asked: i64, key: impl Fn(&T) -> i64) -> Option<i64> {
    (rows.len() as i64 >= asked)
        .then(|| rows.last().map(key))
        .flatten()
}

/// A point in time on the command line: an RFC 3339 time, a date (`2026-11-20`, midnight
/// UTC), or a duration back from now (`24h`, `7d`, `90m`, `2weeks`).
pub fn past_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Some(t) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    humantime::parse_duration(s)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| chrono::Utc::now() - d)
        .ok_or_else(|| {
            format!(
                "{s:?} is not a time: use an RFC 3339 time (2026-11-20T12:00:00Z), a date (2026-11-20) or a duration back from now (24h, 7d)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_dates_or_durations_ago() {
        let t = past_time("2026-11-20T12:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-20T12:00:00+00:00");
        assert_eq!(
            past_time("2026-11-20").unwrap().to_rfc3339(),
            "2026-11-20T00:00:00+00:00"
        );
        let ago = chrono::Utc::now() - past_time("24h").unwrap();
        assert!((ago.num_seconds() - 86_400).abs() < 5, "{ago}");
        let ago = chrono::Utc::now() - past_time("7d").unwrap();
        assert!((ago.num_seconds() - 7 * 86_400).abs() < 5, "{ago}");
        let e = past_time("yesterday").unwrap_err();
        assert!(e.contains("RFC 3339") && e.contains("24h"), "{e}");
    }
}
