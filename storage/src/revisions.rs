//! Revisions: one per real change of an item; pages of a timeline without
//! documents, one revision with its document, time travel and the diff of a change.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guardrail_model::{diff, ChangeKind, DiffEntry};
use serde::Serialize;
use serde_json::Value;

use crate::items::ItemRow;
use crate::query::{page_limit, utc};
use crate::schema::{items, revisions};
use crate::{with_conn, StorageError, Store};

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
    /// Who made the change, when known (JSON of [`guardrail_model::Actor`]).
    #[serde(serialize_with = "actor_json")]
    pub actor: Option<String>,
    #[serde(skip)]
    pub actor_arn: Option<String>,
}

/// The stored actor as its JSON object (null when unknown or unreadable).
fn actor_json<S: serde::Serializer>(a: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    a.as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .unwrap_or(Value::Null)
        .serialize(s)
}

/// The stored actor, when it is known and readable.
pub fn actor_of(a: Option<&str>) -> Option<guardrail_model::Actor> {
    a.and_then(|t| serde_json::from_str(t).ok())
}

impl RevisionRow {
    pub fn actor(&self) -> Option<guardrail_model::Actor> {
        actor_of(self.actor.as_deref())
    }

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
    /// Who made the change, when known (JSON of [`guardrail_model::Actor`]).
    #[serde(serialize_with = "actor_json")]
    pub actor: Option<String>,
    #[serde(skip)]
    pub actor_arn: Option<String>,
}

impl Store {
    /// Revisions of an item (without documents), newest first, older than
    /// `before_version` if given.
    pub fn revisions_page(
        &self,
        item_id: i64,
        before_version: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RevisionMeta>, StorageError> {
        let limit = page_limit(limit, 50);
        Ok(with_conn!(self, conn => {
            let mut b = revisions::table
                .filter(revisions::item_id.eq(item_id))
                .select(RevisionMeta::as_select())
                .into_boxed();
            if let Some(v) = before_version {
                b = b.filter(revisions::version.lt(v));
            }
            b.order(revisions::version.desc()).limit(limit).load(conn)?
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
        actor: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(RevisionRow, ItemRow)>, StorageError> {
        let since = since.naive_utc();
        // Whoever the text names: the principal, the role behind a session, the
        // session name or the source address (all in the stored actor).
        let actor = actor
            .filter(|a| !a.is_empty())
            .map(|a| crate::query::like_pattern(&a.to_lowercase()));
        Ok(with_conn!(self, conn => {
            let mut q = revisions::table
                .inner_join(items::table)
                .filter(revisions::observed_at.ge(since))
                .select((RevisionRow::as_select(), ItemRow::as_select()))
                .into_boxed();
            if let Some(p) = &actor {
                q = q.filter(crate::query::lower(revisions::actor).like(p.clone()).escape('\\'));
            }
            q.order((revisions::observed_at.desc(), revisions::id.desc()))
                .limit(limit.max(1))
                .load(conn)?
        }))
    }

    /// Changes found by a sweep (no actor yet, asked about fewer than `max_lookups`
    /// times, observed since `since`) of AWS API items, oldest first, each with its
    /// item and when the version before it was observed: the window in which CloudTrail
    /// holds the call that made it.
    pub fn unattributed_changes(
        &self,
        since: DateTime<Utc>,
        max_lookups: i32,
        limit: i64,
    ) -> Result<Vec<(RevisionRow, ItemRow, Option<NaiveDateTime>)>, StorageError> {
        let since = since.naive_utc();
        let rows: Vec<(RevisionRow, ItemRow)> = with_conn!(self, conn => {
            revisions::table
                .inner_join(items::table)
                .filter(revisions::actor.is_null())
                .filter(revisions::cause.eq("sweep"))
                .filter(revisions::actor_lookups.lt(max_lookups))
                .filter(revisions::observed_at.ge(since))
                .order(revisions::id)
                .limit(limit.max(1))
                .select((RevisionRow::as_select(), ItemRow::as_select()))
                .load(conn)?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (rev, item) in rows {
            let before = match rev.version {
                v if v > 1 => self
                    .revision_by_version(rev.item_id, v - 1)?
                    .map(|r| r.observed_at),
                _ => None,
            };
            out.push((rev, item, before));
        }
        Ok(out)
    }

    /// A source's first sweep finds what already existed, not changes: nobody is
    /// looked up for its revisions.
    pub fn settle_attribution(&self, sweep_id: i64, max_lookups: i32) -> Result<(), StorageError> {
        with_conn!(self, conn => {
            diesel::update(revisions::table.filter(revisions::sweep_id.eq(Some(sweep_id))))
                .set(revisions::actor_lookups.eq(max_lookups))
                .execute(conn)?;
        });
        Ok(())
    }

    /// Records what CloudTrail said about a sweep-found change: its actor when found
    /// (never over one already known), and one more lookup either way.
    pub fn attribute_revision(
        &self,
        revision_id: i64,
        actor: Option<&guardrail_model::Actor>,
    ) -> Result<(), StorageError> {
        let json = actor
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::Corrupt(format!("actor not serialisable: {e}")))?;
        let arn = actor.and_then(|a| a.principal.clone());
        with_conn!(self, conn => {
            diesel::update(revisions::table.find(revision_id))
                .set(revisions::actor_lookups.eq(revisions::actor_lookups + 1))
                .execute(conn)?;
            if json.is_some() {
                diesel::update(revisions::table.find(revision_id).filter(revisions::actor.is_null()))
                    .set((revisions::actor.eq(&json), revisions::actor_arn.eq(&arn)))
                    .execute(conn)?;
            }
        });
        Ok(())
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
}
