//! What the API and the UI both do, written once: the list filters as query
//! parameters, a finding with its history and the change that opened it, justifying
//! and unjustifying as the caller, and the diff of two versions of an item. Handlers
//! in `api` (JSON) and `ui` (pages) call these and only render.

use chrono::{DateTime, Utc};
use guardrail_model::{diff as json_diff, DiffEntry, FindingState};
use guardrail_storage::{
    FindingQuery, FindingRow, FindingSort, ItemQuery, ItemRow, StorageError, Store,
};
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Auth;
use crate::{db, AppError, AppState};

pub(crate) fn split(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Query parameters of the findings list, shared by the API, the export and the UI.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct FindingParams {
    /// Comma-separated states; default `open`, `all` for every state.
    pub state: Option<String>,
    pub min_score: Option<String>,
    /// Comma-separated severities.
    pub severity: Option<String>,
    pub account: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    pub rule: Option<String>,
    pub owner: Option<String>,
    /// Text in the item's name, ARN or resource id.
    pub q: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl FindingParams {
    pub fn to_query(&self, owner_tag: &str) -> Result<FindingQuery, AppError> {
        let words = split(&self.state);
        let states = if words.is_empty() {
            vec![FindingState::Open]
        } else {
            FindingState::parse_filter(&words).map_err(AppError::BadRequest)?
        };
        let min_score = match nonempty(&self.min_score) {
            Some(m) => Some(m.parse::<i64>().map_err(|_| {
                AppError::BadRequest(format!("min_score {m:?}: use a number from 0 to 10"))
            })?),
            None => None,
        };
        let sort = match nonempty(&self.sort) {
            Some(s) => FindingSort::parse(&s)?,
            None => FindingSort::Score,
        };
        Ok(FindingQuery {
            states,
            min_score,
            severities: split(&self.severity),
            account: nonempty(&self.account),
            resource_type: nonempty(&self.resource_type),
            rule_id: nonempty(&self.rule),
            item_id: None,
            owner: nonempty(&self.owner),
            owner_tag: owner_tag.to_owned(),
            text: nonempty(&self.q),
            sort,
            cursor: nonempty(&self.cursor),
            limit: self.limit.unwrap_or(50),
        })
    }
}

pub(crate) struct FindingDetail {
    pub finding: FindingRow,
    pub item: ItemRow,
    pub events: Vec<guardrail_storage::FindingEventRow>,
    pub opening: Option<(i64, i64, Vec<DiffEntry>)>,
    /// Who made the change that opened it, when known.
    pub changed_by: Option<guardrail_model::Actor>,
}

pub(crate) async fn finding_detail(state: &AppState, id: i64) -> Result<FindingDetail, AppError> {
    db(state, move |s| {
        let finding = s
            .finding(id)?
            .ok_or_else(|| StorageError::NotFound(format!("no finding {id}")))?;
        let item = s
            .item(finding.item_id)?
            .ok_or_else(|| StorageError::Corrupt(format!("finding {id} has no item")))?;
        let events = s.finding_events(id)?;
        // The change that opened it: its first revision against the one before.
        let (opening, changed_by) = match finding.first_revision_id {
            Some(rev) => match s.revision_diff(rev)? {
                Some((rev, d)) => (Some((rev.version - 1, rev.version, d)), rev.actor()),
                None => (None, None),
            },
            None => (None, None),
        };
        Ok(FindingDetail {
            finding,
            item,
            events,
            opening,
            changed_by,
        })
    })
    .await
}

pub(crate) fn parse_until(until: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(u) = until.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(u) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Some(d.and_utc()))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "until {u:?}: use a date (2027-03-01) or an RFC 3339 time"
            ))
        })
}

/// Justifies a finding as the caller; the storage layer records who.
pub(crate) async fn do_justify(
    state: &AppState,
    auth: &Auth,
    id: i64,
    reason: String,
    until: Option<DateTime<Utc>>,
) -> Result<(FindingRow, ItemRow), AppError> {
    if reason.trim().is_empty() {
        return Err(AppError::BadRequest(
            "a justification needs a reason".into(),
        ));
    }
    let who = auth.principal.name.clone();
    change_finding(state, id, move |s, now| {
        s.justify(id, &who, reason.trim(), until, now)
    })
    .await
}

/// Removes a finding's justification as the caller.
pub(crate) async fn do_unjustify(
    state: &AppState,
    auth: &Auth,
    id: i64,
) -> Result<(FindingRow, ItemRow), AppError> {
    let who = auth.principal.name.clone();
    change_finding(state, id, move |s, now| s.unjustify(id, &who, now)).await
}

/// Runs one lifecycle change of an existing finding and returns it with its item.
/// A missing finding is 404; past that, storage's refusals are about the request (400).
async fn change_finding(
    state: &AppState,
    id: i64,
    change: impl FnOnce(&Store, DateTime<Utc>) -> Result<FindingRow, StorageError> + Send + 'static,
) -> Result<(FindingRow, ItemRow), AppError> {
    let now = Utc::now();
    let done = db(state, move |s| {
        if s.finding(id)?.is_none() {
            return Err(StorageError::NotFound(format!("no finding {id}")));
        }
        let f = change(s, now).map_err(|e| match e {
            StorageError::NotFound(m) => StorageError::Invalid(m),
            e => e,
        })?;
        let i = s
            .item(f.item_id)?
            .ok_or_else(|| StorageError::Corrupt(format!("finding {id} has no item")))?;
        Ok((f, i))
    })
    .await;
    // The dashboard's counts changed (and a failed attempt costs one recount).
    state.summary.invalidate();
    done
}

#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct ItemParams {
    pub q: Option<String>,
    /// `key` (has the tag) or `key=value`.
    pub tag: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub include_deleted: Option<bool>,
    pub cursor: Option<i64>,
    pub limit: Option<i64>,
}

impl ItemParams {
    pub fn to_query(&self) -> ItemQuery {
        let (tag_key, tag_value) = match nonempty(&self.tag) {
            Some(t) => match t.split_once('=') {
                Some((k, v)) => (Some(k.to_owned()), Some(v.to_owned())),
                None => (Some(t), None),
            },
            None => (None, None),
        };
        ItemQuery {
            text: nonempty(&self.q),
            tag_key,
            tag_value,
            resource_type: nonempty(&self.resource_type),
            account: nonempty(&self.account),
            region: nonempty(&self.region),
            include_deleted: self.include_deleted.unwrap_or(false),
            after_id: self.cursor,
            limit: self.limit.unwrap_or(50),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageParams {
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// Two versions of an item and the diff between them: (from, to, old, new, changes).
pub(crate) type VersionDiff = (i64, i64, Value, Value, Vec<DiffEntry>);

/// Diff of two versions of an item (`from` 0 = before it existed). Loads two
/// documents; synchronous, for use inside one [`db`] call with the rest of a page.
pub(crate) fn diff_versions(
    s: &Store,
    item: &ItemRow,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<VersionDiff, AppError> {
    let to = to.unwrap_or(item.version);
    let from = from.unwrap_or(to - 1);
    if from >= to || from < 0 || to > item.version {
        return Err(AppError::BadRequest(format!(
            "from={from}, to={to}: need 0 <= from < to <= {} (the latest version)",
            item.version
        )));
    }
    let id = item.id;
    let load = |v: i64| -> Result<Value, StorageError> {
        if v < 1 {
            return Ok(Value::Null);
        }
        s.revision_by_version(id, v)?
            .ok_or_else(|| StorageError::NotFound(format!("item {id} has no version {v}")))?
            .document_json()
    };
    let (old, new) = (load(from)?, load(to)?);
    let changes = json_diff(&old, &new);
    Ok((from, to, old, new, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_accepts_dates_and_times() {
        assert!(parse_until(Some("2027-03-01")).unwrap().is_some());
        assert!(parse_until(Some("2027-03-01T10:00:00Z")).unwrap().is_some());
        assert!(parse_until(Some("")).unwrap().is_none());
        assert!(parse_until(Some("next week")).is_err());
    }

    #[test]
    fn finding_params_validate() {
        let p = FindingParams {
            state: Some("open,bogus".into()),
            ..Default::default()
        };
        assert!(p.to_query("owner").is_err());
        let p = FindingParams {
            state: Some("all".into()),
            min_score: Some("7".into()),
            ..Default::default()
        };
        let q = p.to_query("owner").unwrap();
        assert!(q.states.is_empty());
        assert_eq!(q.min_score, Some(7));
        assert_eq!(
            FindingParams::default().to_query("o").unwrap().states,
            vec![FindingState::Open]
        );
    }
}

/// `?framework=` of the compliance page and API (default CIS AWS Foundations v3.0).
#[derive(Debug, Deserialize)]
pub struct ComplianceParams {
    #[serde(default = "default_framework")]
    pub framework: String,
}

fn default_framework() -> String {
    "cis-aws-3.0".into()
}

/// A framework's compliance view, computed on the blocking pool.
pub async fn compliance_view(
    state: &AppState,
    framework: String,
) -> Result<crate::ComplianceView, AppError> {
    let f = state.compliance.clone().ok_or_else(|| {
        AppError::NotFound(
            "compliance is computed by `guardrail serve`, which knows the rules; this server was started without them".into(),
        )
    })?;
    crate::db(state, move |s| Ok(f(s, &framework)))
        .await?
        .map_err(AppError::BadRequest)
}
