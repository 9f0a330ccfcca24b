//! Reads for the CLI (and later the API): all filtered and paginated in the database,
//! on indexed columns; nothing loads every revision of anything.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guardrail_model::{diff, ChangeKind, DiffEntry};
use serde::Serialize;
use serde_json::Value;

use crate::schema::{items, revisions, sweep_errors, sweeps};
use crate::{with_conn, Backend, StorageError, Store};

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = items)]
pub struct ItemRow {
    pub id: i64,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    pub arn: Option<String>,
    pub name: Option<String>,
    #[serde(skip)]
    pub tags: String,
    pub active: bool,
    pub version: i64,
    #[serde(skip)]
    pub config_hash: String,
    #[serde(serialize_with = "utc")]
    pub observed_at: NaiveDateTime,
    #[serde(skip)]
    pub ephemeral: String,
    #[serde(skip)]
    pub ephemeral_hash: String,
    #[serde(serialize_with = "utc")]
    pub first_seen_at: NaiveDateTime,
}

impl ItemRow {
    pub fn tags_json(&self) -> Value {
        serde_json::from_str(&self.tags).unwrap_or(Value::Null)
    }

    pub fn ephemeral_json(&self) -> Value {
        serde_json::from_str(&self.ephemeral).unwrap_or(Value::Null)
    }

    /// A one-line label for people: type, name (or id), account and region.
    pub fn label(&self) -> String {
        format!(
            "{} {} ({}/{})",
            self.resource_type,
            self.name.as_deref().unwrap_or(&self.resource_id),
            self.account,
            self.region
        )
    }
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = revisions)]
pub struct RevisionRow {
    pub id: i64,
    pub item_id: i64,
    pub version: i64,
    #[diesel(deserialize_as = String)]
    pub change: ChangeKind,
    pub cause: String,
    pub hash: String,
    #[serde(skip)]
    pub document: String,
    #[serde(skip)]
    pub ephemeral: String,
    #[serde(serialize_with = "utc")]
    pub observed_at: NaiveDateTime,
    #[serde(serialize_with = "utc")]
    pub recorded_at: NaiveDateTime,
    pub sweep_id: Option<i64>,
    pub origin: String,
}

impl RevisionRow {
    /// The versioned document (`null` for a deletion).
    pub fn document_json(&self) -> Result<Value, StorageError> {
        serde_json::from_str(&self.document).map_err(|e| {
            StorageError::Corrupt(format!("revision {} document is not JSON: {e}", self.id))
        })
    }
}

/// A revision without its documents: what a timeline shows. Documents can be tens
/// of kilobytes each, so pages of revisions never read them.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = revisions)]
pub struct RevisionMeta {
    pub id: i64,
    pub item_id: i64,
    pub version: i64,
    #[diesel(deserialize_as = String)]
    pub change: ChangeKind,
    pub cause: String,
    pub hash: String,
    #[serde(serialize_with = "utc")]
    pub observed_at: NaiveDateTime,
    #[serde(serialize_with = "utc")]
    pub recorded_at: NaiveDateTime,
    pub sweep_id: Option<i64>,
    pub origin: String,
}

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

fn utc<S: serde::Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    utc_serde::serialize(t, s)
}

fn utc_opt<S: serde::Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
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

#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub resource_type: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// Substring of the name (case-sensitive, as AWS names are).
    pub name: Option<String>,
    pub include_deleted: bool,
    pub limit: i64,
    pub offset: i64,
}

pub(crate) fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl Store {
    pub fn items(&self, f: &ItemFilter) -> Result<Vec<ItemRow>, StorageError> {
        let limit = if f.limit > 0 { f.limit } else { 1000 };
        Ok(with_conn!(self, conn => {
            let mut q = items::table.select(ItemRow::as_select()).into_boxed();
            if let Some(t) = &f.resource_type {
                q = q.filter(items::resource_type.eq(t.clone()));
            }
            if let Some(a) = &f.account {
                q = q.filter(items::account.eq(a.clone()));
            }
            if let Some(r) = &f.region {
                q = q.filter(items::region.eq(r.clone()));
            }
            if let Some(n) = &f.name {
                q = q.filter(items::name.like(like_pattern(n)).escape('\\'));
            }
            if !f.include_deleted {
                q = q.filter(items::active.eq(true));
            }
            q.order((items::resource_type, items::account, items::region, items::name, items::id))
                .limit(limit)
                .offset(f.offset.max(0))
                .load(conn)?
        }))
    }

    pub fn item(&self, id: i64) -> Result<Option<ItemRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            items::table
                .find(id)
                .select(ItemRow::as_select())
                .first(conn)
                .optional()?
        }))
    }

    /// Finds the item a person means: a numeric item id, an ARN, a resource id or a
    /// name. More than one match is an error listing the candidates.
    pub fn resolve_item(&self, reference: &str) -> Result<ItemRow, StorageError> {
        if let Ok(id) = reference.parse::<i64>() {
            if let Some(item) = self.item(id)? {
                return Ok(item);
            }
        }
        let r = reference.to_owned();
        let mut found: Vec<ItemRow> = with_conn!(self, conn => {
            let mut found: Vec<ItemRow> = items::table
                .filter(items::arn.eq(&r))
                .select(ItemRow::as_select())
                .limit(20)
                .load(conn)?;
            if found.is_empty() {
                found = items::table
                    .filter(items::resource_id.eq(&r))
                    .select(ItemRow::as_select())
                    .limit(20)
                    .load(conn)?;
            }
            if found.is_empty() {
                found = items::table
                    .filter(items::name.eq(&r))
                    .select(ItemRow::as_select())
                    .limit(20)
                    .load(conn)?;
            }
            found
        });
        match found.len() {
            0 => Err(StorageError::NotFound(format!(
                "no item matches {reference:?}: give an item id, ARN, resource id or name (see `guardrail items`)"
            ))),
            1 => Ok(found.remove(0)),
            _ => {
                let list: Vec<String> = found
                    .iter()
                    .map(|i| format!("  {}  {}", i.id, i.label()))
                    .collect();
                Err(StorageError::Ambiguous(format!(
                    "{reference:?} matches several items; use an item id:\n{}",
                    list.join("\n")
                )))
            }
        }
    }

    /// Revisions of an item, newest first.
    pub fn history(&self, item_id: i64, limit: i64) -> Result<Vec<RevisionRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            revisions::table
                .filter(revisions::item_id.eq(item_id))
                .order(revisions::version.desc())
                .limit(limit.max(1))
                .select(RevisionRow::as_select())
                .load(conn)?
        }))
    }

    pub fn revision(&self, id: i64) -> Result<Option<RevisionRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            revisions::table
                .find(id)
                .select(RevisionRow::as_select())
                .first(conn)
                .optional()?
        }))
    }

    pub fn revision_by_version(
        &self,
        item_id: i64,
        version: i64,
    ) -> Result<Option<RevisionRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            revisions::table
                .filter(revisions::item_id.eq(item_id))
                .filter(revisions::version.eq(version))
                .select(RevisionRow::as_select())
                .first(conn)
                .optional()?
        }))
    }

    /// The change a revision made: its document against the version before it, or
    /// against nothing for a first version (everything added). The one definition
    /// every reader uses (notifications, finding pages, the CLI).
    pub fn diff_with_previous(&self, rev: &RevisionRow) -> Result<Vec<DiffEntry>, StorageError> {
        let before = match rev.version {
            v if v > 1 => self.revision_by_version(rev.item_id, v - 1)?,
            _ => None,
        };
        let old = match before {
            Some(b) => b.document_json()?,
            None => Value::Null,
        };
        Ok(diff(&old, &rev.document_json()?))
    }

    /// [`Store::diff_with_previous`] by revision id, with the revision (`None`: no
    /// such revision).
    pub fn revision_diff(
        &self,
        revision_id: i64,
    ) -> Result<Option<(RevisionRow, Vec<DiffEntry>)>, StorageError> {
        match self.revision(revision_id)? {
            Some(rev) => {
                let d = self.diff_with_previous(&rev)?;
                Ok(Some((rev, d)))
            }
            None => Ok(None),
        }
    }

    /// Time travel: the revision in force at `at` (None if the item did not exist yet).
    pub fn revision_at(
        &self,
        item_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Option<RevisionRow>, StorageError> {
        let at = at.naive_utc();
        Ok(with_conn!(self, conn => {
            revisions::table
                .filter(revisions::item_id.eq(item_id))
                .filter(revisions::observed_at.le(at))
                .order(revisions::version.desc())
                .select(RevisionRow::as_select())
                .first(conn)
                .optional()?
        }))
    }

    /// Revisions observed at or after `since`, newest first, with their items.
    pub fn changes_since(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(RevisionRow, ItemRow)>, StorageError> {
        let since = since.naive_utc();
        Ok(with_conn!(self, conn => {
            revisions::table
                .inner_join(items::table)
                .filter(revisions::observed_at.ge(since))
                .order((revisions::observed_at.desc(), revisions::id.desc()))
                .limit(limit.max(1))
                .select((RevisionRow::as_select(), ItemRow::as_select()))
                .load(conn)?
        }))
    }

    /// A page of the revisions a sweep wrote, in the order written, with their items;
    /// deletions only when `include_deleted`.
    pub fn sweep_changes(
        &self,
        sweep_id: i64,
        after_revision: i64,
        limit: i64,
        include_deleted: bool,
    ) -> Result<Vec<(RevisionRow, ItemRow)>, StorageError> {
        Ok(with_conn!(self, conn => {
            let mut q = revisions::table
                .inner_join(items::table)
                .filter(revisions::sweep_id.eq(Some(sweep_id)))
                .filter(revisions::id.gt(after_revision))
                .select((RevisionRow::as_select(), ItemRow::as_select()))
                .into_boxed();
            if !include_deleted {
                q = q.filter(revisions::change.ne(ChangeKind::Deleted.as_str()));
            }
            q.order(revisions::id).limit(limit.max(1)).load(conn)?
        }))
    }

    /// A page of active items with their latest revision, by item id.
    pub fn latest_page(
        &self,
        after_item: i64,
        limit: i64,
    ) -> Result<Vec<(ItemRow, RevisionRow)>, StorageError> {
        Ok(with_conn!(self, conn => {
            items::table
                .inner_join(
                    revisions::table.on(revisions::item_id
                        .eq(items::id)
                        .and(revisions::version.eq(items::version))),
                )
                .filter(items::active.eq(true))
                .filter(items::id.gt(after_item))
                .order(items::id)
                .limit(limit.max(1))
                .select((ItemRow::as_select(), RevisionRow::as_select()))
                .load(conn)?
        }))
    }

    /// The documents of the given (item id, version) pairs, in one query.
    pub fn documents(
        &self,
        pairs: &[(i64, i64)],
    ) -> Result<std::collections::HashMap<(i64, i64), String>, StorageError> {
        if pairs.is_empty() {
            return Ok(Default::default());
        }
        let ids: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        let versions: Vec<i64> = pairs.iter().map(|p| p.1).collect();
        let rows: Vec<(i64, i64, String)> = with_conn!(self, conn => {
            revisions::table
                .filter(revisions::item_id.eq_any(&ids))
                .filter(revisions::version.eq_any(&versions))
                .select((revisions::item_id, revisions::version, revisions::document))
                .load(conn)?
        });
        let wanted: std::collections::HashSet<&(i64, i64)> = pairs.iter().collect();
        Ok(rows
            .into_iter()
            .filter(|(i, v, _)| wanted.contains(&(*i, *v)))
            .map(|(i, v, d)| ((i, v), d))
            .collect())
    }

    pub fn sweeps(&self, limit: i64) -> Result<Vec<SweepRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            sweeps::table
                .order(sweeps::id.desc())
                .limit(limit.max(1))
                .select(SweepRow::as_select())
                .load(conn)?
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

    pub fn sweep_errors(&self, sweep_id: i64) -> Result<Vec<SweepErrorRow>, StorageError> {
        Ok(with_conn!(self, conn => {
            sweep_errors::table
                .filter(sweep_errors::sweep_id.eq(sweep_id))
                .order(sweep_errors::id)
                .select(SweepErrorRow::as_select())
                .load(conn)?
        }))
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
