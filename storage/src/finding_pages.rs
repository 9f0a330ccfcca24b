//! Pages of findings: filters on the finding's own indexed columns, keyset cursors
//! per sort order. One query serves the CLI, the API and the UI.

use chrono::{DateTime, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use guardrail_model::FindingState;
use serde::Serialize;

use crate::findings::FindingRow;
use crate::items::ItemRow;
use crate::query::{like_pattern, lower, page_limit, tag_expr};
use crate::schema::{findings, items};
use crate::{with_conn, StorageError, Store};

/// The orders a findings page can be sorted in; each is descending with the id as
/// the tie-breaker, so a (key, id) pair is a stable cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingSort {
    #[default]
    Score,
    LastSeen,
    FirstSeen,
}

impl FindingSort {
    pub fn parse(s: &str) -> Result<FindingSort, StorageError> {
        match s {
            "score" => Ok(FindingSort::Score),
            "last_seen" => Ok(FindingSort::LastSeen),
            "first_seen" => Ok(FindingSort::FirstSeen),
            _ => Err(StorageError::Invalid(format!(
                "unknown sort {s:?}: use score, last_seen or first_seen"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FindingSort::Score => "score",
            FindingSort::LastSeen => "last_seen",
            FindingSort::FirstSeen => "first_seen",
        }
    }
}

/// One page of findings: filters, order and where the previous page ended.
#[derive(Debug, Clone, Default)]
pub struct FindingQuery {
    /// Any of these states; empty: all.
    pub states: Vec<FindingState>,
    pub min_score: Option<i64>,
    /// Any of these severities; empty: all.
    pub severities: Vec<String>,
    pub account: Option<String>,
    pub resource_type: Option<String>,
    pub rule_id: Option<String>,
    pub item_id: Option<i64>,
    /// Value of the owner tag (`owner_tag`) on the finding's item.
    pub owner: Option<String>,
    pub owner_tag: String,
    /// Case-insensitive substring of the item's name, ARN or resource id.
    pub text: Option<String>,
    pub sort: FindingSort,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct FindingPage {
    pub rows: Vec<(FindingRow, ItemRow)>,
    /// Present when there is another page.
    pub next_cursor: Option<String>,
}

/// A cursor is the sort, its key and the id, hex-encoded so callers treat it as opaque.
fn encode_cursor(sort: FindingSort, f: &FindingRow) -> String {
    let key = match sort {
        FindingSort::Score => f.score,
        FindingSort::LastSeen => f.last_seen_at.and_utc().timestamp_micros(),
        FindingSort::FirstSeen => f.first_seen_at.and_utc().timestamp_micros(),
    };
    hex::encode(format!("{}:{key}:{}", sort.as_str(), f.id))
}

fn decode_cursor(sort: FindingSort, cursor: &str) -> Result<(i64, i64), StorageError> {
    let bad = || {
        StorageError::Invalid(format!(
            "cursor {cursor:?} is not one this server issued for sort={}: pass next_cursor from the previous page unchanged, with the same sort",
            sort.as_str()
        ))
    };
    let text = hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let mut parts = text.split(':');
    let (Some(s), Some(k), Some(i), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if s != sort.as_str() {
        return Err(bad());
    }
    Ok((k.parse().map_err(|_| bad())?, i.parse().map_err(|_| bad())?))
}

fn micros(t: i64) -> Result<NaiveDateTime, StorageError> {
    DateTime::from_timestamp_micros(t)
        .map(|d| d.naive_utc())
        .ok_or_else(|| StorageError::Invalid(format!("cursor time {t} is out of range")))
}

impl Store {
    /// A page of findings with their items. Sorted descending by the chosen key, ties
    /// by id descending; the cursor continues strictly after the last row, so rows
    /// inserted meanwhile never shift a page.
    pub fn findings_page(&self, q: &FindingQuery) -> Result<FindingPage, StorageError> {
        let limit = page_limit(q.limit, 50);
        let after = q
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| decode_cursor(q.sort, c))
            .transpose()?;
        let after_time = match (q.sort, after) {
            (FindingSort::Score, _) | (_, None) => None,
            (_, Some((k, _))) => Some(micros(k)?),
        };
        let tag = tag_expr(self.backend());
        let mut rows: Vec<(FindingRow, ItemRow)> = with_conn!(self, conn => {
            let mut b = findings::table
                .inner_join(items::table)
                .select((FindingRow::as_select(), ItemRow::as_select()))
                .into_boxed();
            // One state is an equality, not `= ANY($1)`: PostgreSQL can then walk the
            // (state, key, id) index in order instead of sorting every match.
            match q.states.as_slice() {
                [] => {}
                [one] => b = b.filter(findings::state.eq(one.as_str())),
                many => b = b.filter(findings::state.eq_any(many.iter().map(|s| s.as_str()))),
            }
            if let Some(m) = q.min_score {
                b = b.filter(findings::score.ge(m));
            }
            if !q.severities.is_empty() {
                b = b.filter(findings::severity.eq_any(q.severities.clone()));
            }
            // The finding's own copies, so an (state, account|type, score, id) index
            // range serves the page in order.
            if let Some(a) = &q.account {
                b = b.filter(findings::account.eq(a.clone()));
            }
            if let Some(t) = &q.resource_type {
                b = b.filter(findings::resource_type.eq(t.clone()));
            }
            if let Some(r) = &q.rule_id {
                b = b.filter(findings::rule_id.eq(r.clone()));
            }
            if let Some(i) = q.item_id {
                b = b.filter(findings::item_id.eq(i));
            }
            if let Some(o) = &q.owner {
                b = b.filter(
                    sql::<Bool>(tag)
                        .bind::<Text, _>(q.owner_tag.clone())
                        .sql(" = ")
                        .bind::<Text, _>(o.clone())
                        .sql(")"),
                );
            }
            if let Some(t) = q.text.as_deref().filter(|t| !t.is_empty()) {
                let p = like_pattern(&t.to_lowercase());
                b = b.filter(
                    lower(items::name.nullable()).like(p.clone()).escape('\\')
                        .or(lower(items::arn.nullable()).like(p.clone()).escape('\\'))
                        .or(lower(items::resource_id.nullable()).like(p).escape('\\')),
                );
            }
            match q.sort {
                FindingSort::Score => {
                    if let Some((k, id)) = after {
                        // The redundant `<=` is what an index range scan can start from;
                        // the OR alone makes PostgreSQL read and drop every earlier row.
                        b = b.filter(findings::score.le(k)).filter(findings::score.lt(k).or(findings::score.eq(k).and(findings::id.lt(id))));
                    }
                    b = b.order((findings::score.desc(), findings::id.desc()));
                }
                FindingSort::LastSeen => {
                    if let (Some(t), Some((_, id))) = (after_time, after) {
                        b = b.filter(findings::last_seen_at.le(t)).filter(findings::last_seen_at.lt(t).or(findings::last_seen_at.eq(t).and(findings::id.lt(id))));
                    }
                    b = b.order((findings::last_seen_at.desc(), findings::id.desc()));
                }
                FindingSort::FirstSeen => {
                    if let (Some(t), Some((_, id))) = (after_time, after) {
                        b = b.filter(findings::first_seen_at.le(t)).filter(findings::first_seen_at.lt(t).or(findings::first_seen_at.eq(t).and(findings::id.lt(id))));
                    }
                    b = b.order((findings::first_seen_at.desc(), findings::id.desc()));
                }
            }
            b.limit(limit + 1).load(conn)?
        });
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|(f, _)| encode_cursor(q.sort, f))
        } else {
            None
        };
        Ok(FindingPage { rows, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_other_sorts() {
        let c = hex::encode("score:7:42");
        assert_eq!(decode_cursor(FindingSort::Score, &c).unwrap(), (7, 42));
        assert!(decode_cursor(FindingSort::LastSeen, &c).is_err());
        assert!(decode_cursor(FindingSort::Score, "zz").is_err());
        assert!(decode_cursor(FindingSort::Score, &hex::encode("score:7")).is_err());
        assert!(decode_cursor(FindingSort::Score, &hex::encode("score:x:1")).is_err());
    }
}
