//! Items: the resources guardrail watches, one row each; found by id, by what a
//! person calls them, or a page at a time (one query for the CLI and the server).

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde::Serialize;
use serde_json::Value;

use crate::query::{like_pattern, lower, page_limit, tag_expr, utc};
use crate::schema::items;
use crate::{with_conn, StorageError, Store};
use guardrail_model::ItemKey;

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

#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Case-insensitive substring of the name, ARN or resource id.
    pub text: Option<String>,
    /// A tag key, and optionally the value it must have.
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
    pub resource_type: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub include_deleted: bool,
    /// Items with an id greater than this (the previous page's `next_cursor`).
    pub after_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct ItemPage {
    pub rows: Vec<ItemRow>,
    pub next_cursor: Option<i64>,
}

impl Store {
    /// A page of items by id: search by name/ARN/resource id, tag, type, account, region.
    pub fn items_page(&self, q: &ItemQuery) -> Result<ItemPage, StorageError> {
        let limit = page_limit(q.limit, 50);
        let tag = tag_expr(self.backend());
        let mut rows: Vec<ItemRow> = with_conn!(self, conn => {
            let mut b = items::table.select(ItemRow::as_select()).into_boxed();
            if let Some(t) = &q.resource_type {
                b = b.filter(items::resource_type.eq(t.clone()));
            }
            if let Some(a) = &q.account {
                b = b.filter(items::account.eq(a.clone()));
            }
            if let Some(r) = &q.region {
                b = b.filter(items::region.eq(r.clone()));
            }
            if !q.include_deleted {
                b = b.filter(items::active.eq(true));
            }
            if let Some(t) = q.text.as_deref().filter(|t| !t.is_empty()) {
                let p = like_pattern(&t.to_lowercase());
                b = b.filter(
                    lower(items::name.nullable()).like(p.clone()).escape('\\')
                        .or(lower(items::arn.nullable()).like(p.clone()).escape('\\'))
                        .or(lower(items::resource_id.nullable()).like(p).escape('\\')),
                );
            }
            if let Some(k) = q.tag_key.as_deref().filter(|k| !k.is_empty()) {
                b = match &q.tag_value {
                    Some(v) => b.filter(sql::<Bool>(tag).bind::<Text, _>(k.to_owned()).sql(" = ").bind::<Text, _>(v.clone()).sql(")")),
                    None => b.filter(sql::<Bool>(tag).bind::<Text, _>(k.to_owned()).sql(" IS NOT NULL)")),
                };
            }
            if let Some(after) = q.after_id {
                b = b.filter(items::id.gt(after));
            }
            b.order(items::id).limit(limit + 1).load(conn)?
        });
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|i| i.id)
        } else {
            None
        };
        Ok(ItemPage { rows, next_cursor })
    }

    /// The active items of `types` in one account and region with their latest
    /// documents: the neighbourhood the auditors judge reachability from.
    pub fn scope_items(
        &self,
        account: &str,
        region: &str,
        types: &[&str],
        after_item: i64,
        limit: i64,
    ) -> Result<Vec<(ItemRow, String)>, StorageError> {
        use crate::schema::revisions;
        // The items first (the index on (type, account, region, id) gives them in id
        // order), then their latest documents: one query joining both had PostgreSQL
        // join and sort every remaining item of the scope for each page.
        let (items, documents): (Vec<ItemRow>, Vec<(i64, String)>) = with_conn!(self, conn => {
            let mut q = items::table
                .filter(items::account.eq(account))
                .filter(items::region.eq(region))
                .filter(items::active.eq(true))
                .filter(items::id.gt(after_item))
                .into_boxed();
            // One type is an equality, which keeps the index's id order on PostgreSQL
            // (`= ANY` of a list does not).
            q = match types {
                [one] => q.filter(items::resource_type.eq(*one)),
                many => q.filter(items::resource_type.eq_any(many.to_vec())),
            };
            let items: Vec<ItemRow> = q
                .order(items::id)
                .limit(limit)
                .select(ItemRow::as_select())
                .load(conn)?;
            let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
            // Filtered on the items' primary key, so the plan is their ids, then each
            // one's revision by (item_id, version).
            let documents: Vec<(i64, String)> = items::table
                .filter(items::id.eq_any(&ids))
                .inner_join(revisions::table.on(revisions::item_id.eq(items::id).and(revisions::version.eq(items::version))))
                .select((revisions::item_id, revisions::document))
                .load(conn)?;
            (items, documents)
        });
        let mut by_item: std::collections::HashMap<i64, String> = documents.into_iter().collect();
        items
            .into_iter()
            .map(|item| {
                // A short page ends the caller's paging: an item without its latest
                // revision is a broken database, said so, not a scope cut short.
                let document = by_item
                    .remove(&item.id)
                    .ok_or_else(|| no_latest_revision(&item))?;
                Ok((item, document))
            })
            .collect()
    }

    /// How many active items of each resource type are stored, by type.
    pub fn active_counts_by_type(&self) -> Result<Vec<(String, i64)>, StorageError> {
        use diesel::dsl::count_star;
        Ok(with_conn!(self, conn => {
            items::table
                .filter(items::active.eq(true))
                .group_by(items::resource_type)
                .select((items::resource_type, count_star()))
                .order(items::resource_type)
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

    /// The active item an event names, in one account and type: by its id, else (IAM
    /// principals, which events name by name) by name, else by ARN.
    pub fn active_item_named(
        &self,
        account: &str,
        resource_type: &str,
        reference: &str,
    ) -> Result<Option<ItemKey>, StorageError> {
        let r = reference.to_owned();
        let found: Option<ItemRow> = with_conn!(self, conn => {
            let base = || {
                items::table
                    .filter(items::account.eq(account))
                    .filter(items::resource_type.eq(resource_type))
                    .filter(items::active.eq(true))
                    .select(ItemRow::as_select())
            };
            match base().filter(items::resource_id.eq(&r)).first(conn).optional()? {
                Some(i) => Some(i),
                None => match base().filter(items::name.eq(&r)).first(conn).optional()? {
                    Some(i) => Some(i),
                    None => base().filter(items::arn.eq(&r)).first(conn).optional()?,
                },
            }
        });
        Ok(found.map(|i| ItemKey {
            account: i.account,
            region: i.region,
            resource_type: i.resource_type,
            resource_id: i.resource_id,
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
}

/// An item whose latest revision is missing: a broken database, never a row to skip
/// (pages of items followed by their revisions would come back short, and a short
/// page ends the reader's paging).
pub(crate) fn no_latest_revision(item: &ItemRow) -> StorageError {
    StorageError::Corrupt(format!(
        "item {} ({} {}) has no revision {}",
        item.id, item.resource_type, item.resource_id, item.version
    ))
}
