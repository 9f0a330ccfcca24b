//! What every paged listing shares: the page cap, text search and tag lookups that
//! work on both backends, and how stored UTC times appear in JSON.

use chrono::NaiveDateTime;
use diesel::sql_types::{Nullable, Text};

use crate::Backend;

/// Largest page any listing returns, whatever the caller asks for; a caller that
/// wants more (the CLI's `--limit`) follows the cursor page by page.
pub const MAX_PAGE: i64 = 500;

diesel::define_sql_function!(fn lower(x: Nullable<Text>) -> Nullable<Text>);

pub(crate) fn page_limit(limit: i64, default: i64) -> i64 {
    if limit <= 0 {
        default
    } else {
        limit.min(MAX_PAGE)
    }
}

pub(crate) fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `items.tags ->> key` on either backend (SQLite ≥ 3.38 has the operator natively).
pub(crate) fn tag_expr(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "(items.tags ->> ",
        Backend::Postgres => "(items.tags::jsonb ->> ",
    }
}

pub(crate) fn utc<S: serde::Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    utc_serde::serialize(t, s)
}

pub(crate) fn utc_opt<S: serde::Serializer>(
    t: &Option<NaiveDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    utc_serde::option::serialize(t, s)
}

/// Stored UTC timestamps as RFC 3339 in JSON output (`#[serde(with = ...)]`).
pub mod utc_serde {
    use chrono::NaiveDateTime;

    pub fn serialize<S: serde::Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &t.and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    }

    pub mod option {
        use chrono::NaiveDateTime;

        pub fn serialize<S: serde::Serializer>(
            t: &Option<NaiveDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
    }
}
