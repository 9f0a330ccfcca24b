//! `/api/v1`: JSON over the same storage queries as the UI. Documented in
//! `server/openapi.json`; a test keeps the two in step.

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use guardrail_storage::{finding_json, to_ocsf, FindingQuery, ItemRow, Role, StorageError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::caller::Auth;
use crate::usecase::{
    diff_versions, do_justify, do_unjustify, finding_detail, parse_until, FindingParams,
    ItemParams, PageParams,
};
use crate::{db, AppError, AppState};

type ApiResult = Result<Json<Value>, AppError>;

pub async fn me(Extension(auth): Extension<Auth>) -> Json<Value> {
    Json(json!({ "name": auth.principal.name, "role": auth.principal.role }))
}

pub async fn findings(State(state): State<AppState>, Query(p): Query<FindingParams>) -> ApiResult {
    let q = p.to_query(&state.settings.owner_tag)?;
    let page = db(&state, move |s| s.findings_page(&q)).await?;
    Ok(Json(json!({
        "findings": page.rows.iter().map(|(f, i)| finding_json(f, i)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

pub async fn finding(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult {
    let d = finding_detail(&state, id).await?;
    Ok(Json(json!({
        "finding": finding_json(&d.finding, &d.item),
        "item": item_json(&d.item),
        "events": d.events,
        "changed_by": d.changed_by,
        "opening_diff": d.opening.map(|(from, to, changes)| json!({"from": from, "to": to, "changes": changes})),
    })))
}

fn item_json(i: &ItemRow) -> Value {
    let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("tags".into(), i.tags_json());
    }
    v
}

#[derive(Deserialize)]
pub struct JustifyBody {
    pub reason: String,
    /// RFC 3339; absent: until someone unjustifies it.
    pub until: Option<String>,
}

pub async fn justify(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
    body: Result<Json<JustifyBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(b) = body.map_err(|e| {
        AppError::BadRequest(format!(
            "{e}: send JSON {{\"reason\": \"...\", \"until\": \"2027-03-01\"}}"
        ))
    })?;
    let until = parse_until(b.until.as_deref())?;
    let (f, i) = do_justify(&state, &auth, id, b.reason, until).await?;
    Ok(Json(finding_json(&f, &i)))
}

pub async fn unjustify(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
) -> ApiResult {
    let (f, i) = do_unjustify(&state, &auth, id).await?;
    Ok(Json(finding_json(&f, &i)))
}

pub async fn items(State(state): State<AppState>, Query(p): Query<ItemParams>) -> ApiResult {
    let q = p.to_query();
    let page = db(&state, move |s| s.items_page(&q)).await?;
    Ok(Json(json!({
        "items": page.rows.iter().map(item_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

pub async fn item(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult {
    let owner_tag = state.settings.owner_tag.clone();
    let (item, latest, findings) = db(&state, move |s| {
        let item = s
            .item(id)?
            .ok_or_else(|| StorageError::NotFound(format!("no item {id}")))?;
        let latest = s.revision_by_version(id, item.version)?;
        let findings = s.findings_page(&FindingQuery {
            item_id: Some(id),
            owner_tag,
            limit: 100,
            ..Default::default()
        })?;
        Ok((item, latest, findings))
    })
    .await?;
    Ok(Json(json!({
        "item": item_json(&item),
        "document": latest.map(|r| r.document_json()).transpose()?,
        "findings": findings.rows.iter().map(|(f, i)| finding_json(f, i)).collect::<Vec<_>>(),
    })))
}

pub async fn revisions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(p): Query<PageParams>,
) -> ApiResult {
    let limit = p.limit.unwrap_or(50);
    let revs = db(&state, move |s| {
        if s.item(id)?.is_none() {
            return Err(StorageError::NotFound(format!("no item {id}")));
        }
        s.revisions_page(id, p.before, limit)
    })
    .await?;
    let next = revs.last().filter(|r| r.version > 1).map(|r| r.version);
    Ok(Json(json!({ "revisions": revs, "next_before": next })))
}

#[derive(Deserialize)]
pub struct DiffParams {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

pub async fn diff(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(p): Query<DiffParams>,
) -> ApiResult {
    let diff = db(&state, move |s| {
        let item = s
            .item(id)?
            .ok_or_else(|| StorageError::NotFound(format!("no item {id}")))?;
        Ok(diff_versions(s, &item, p.from, p.to))
    })
    .await?;
    let (from, to, _, _, changes) = diff?;
    Ok(Json(
        json!({ "item_id": id, "from": from, "to": to, "changes": changes }),
    ))
}

pub async fn sweeps(State(state): State<AppState>, Query(p): Query<PageParams>) -> ApiResult {
    let limit = p.limit.unwrap_or(50);
    let (sweeps, health) = db(&state, move |s| {
        Ok((s.sweeps_page(p.before, limit)?, s.sweep_health()?))
    })
    .await?;
    let next = sweeps.last().map(|s| s.id);
    Ok(Json(
        json!({ "sweeps": sweeps, "health": health, "next_before": next }),
    ))
}

pub async fn sweep(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult {
    let (sweep, errors) = db(&state, move |s| {
        let sweep = s
            .sweep(id)?
            .ok_or_else(|| StorageError::NotFound(format!("no sweep {id}")))?;
        Ok((sweep, s.sweep_errors_page(id, None, 500)?))
    })
    .await?;
    Ok(Json(json!({ "sweep": sweep, "errors": errors })))
}

/// A framework's controls with their status, counts and failing resources.
pub async fn compliance(
    State(state): State<AppState>,
    Query(p): Query<crate::usecase::ComplianceParams>,
) -> ApiResult {
    let view = crate::usecase::compliance_view(&state, p.framework).await?;
    Ok(Json(serde_json::to_value(view).unwrap_or(Value::Null)))
}

pub async fn rule_errors(State(state): State<AppState>, Query(p): Query<PageParams>) -> ApiResult {
    let limit = p.limit.unwrap_or(50);
    let rows = db(&state, move |s| s.rule_errors_page(p.before, limit)).await?;
    let next = rows.last().map(|r| r.id);
    Ok(Json(json!({ "rule_errors": rows, "next_before": next })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SummaryParams {
    /// RFC 3339; default 24 hours ago.
    pub since: Option<String>,
}

pub async fn summary(State(state): State<AppState>, Query(p): Query<SummaryParams>) -> ApiResult {
    let since = match p.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|e| AppError::BadRequest(format!("since {s:?}: {e}; use RFC 3339")))?
            .with_timezone(&Utc),
        None => Utc::now() - Duration::hours(24),
    };
    let counts = crate::summary::counts(&state).await?;
    let new_since = db(&state, move |s| s.new_findings_since(since)).await?;
    #[derive(serde::Serialize)]
    struct Body {
        #[serde(flatten)]
        summary: guardrail_storage::Summary,
        counts_as_of: String,
    }
    let body = Body {
        summary: guardrail_storage::Summary {
            counts: (*counts.counts).clone(),
            new_since,
            since: since.naive_utc(),
        },
        counts_as_of: counts
            .as_of
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    Ok(Json(
        serde_json::to_value(body).map_err(|e| AppError::Internal(e.to_string()))?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ExportParams {
    pub format: Option<String>,
    #[serde(flatten)]
    pub filter: FindingParams,
}

fn csv_line(fields: &[String]) -> String {
    let mut out = String::new();
    for (n, f) in fields.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push('\n');
    out
}

#[derive(Clone, Copy)]
enum ExportFormat {
    Json,
    Csv,
    Ocsf,
    /// One OCSF record per line, what SIEM pipelines ingest.
    OcsfNdjson,
}

/// Findings as a JSON array, CSV or OCSF, streamed page by page: the response starts
/// at once and memory stays one page deep whatever the number of findings.
pub async fn export(
    State(state): State<AppState>,
    Query(p): Query<ExportParams>,
) -> Result<Response, AppError> {
    let format = match p.format.as_deref().unwrap_or("json") {
        "json" => ExportFormat::Json,
        "csv" => ExportFormat::Csv,
        "ocsf" => ExportFormat::Ocsf,
        "ocsf-ndjson" => ExportFormat::OcsfNdjson,
        other => {
            return Err(AppError::BadRequest(format!(
                "format {other:?}: use json, csv, ocsf or ocsf-ndjson"
            )))
        }
    };
    let mut q = p.filter.to_query(&state.settings.owner_tag)?;
    q.limit = guardrail_storage::MAX_PAGE;
    q.cursor = None;
    // Fail before the 200 if the filter is wrong or the database is down.
    let first = {
        let q = q.clone();
        db(&state, move |s| s.findings_page(&q)).await?
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut page = first;
        let mut n = 0usize;
        let head = match format {
            ExportFormat::Csv => {
                csv_line(&guardrail_storage::FINDING_CSV_COLUMNS.map(String::from))
            }
            ExportFormat::OcsfNdjson => String::new(),
            _ => "[".to_owned(),
        };
        if tx.blocking_send(Ok(head)).is_err() {
            return;
        }
        loop {
            let mut chunk = String::new();
            for (f, i) in &page.rows {
                match format {
                    ExportFormat::Csv => {
                        chunk.push_str(&csv_line(&guardrail_storage::finding_csv_fields(f, i)))
                    }
                    ExportFormat::OcsfNdjson => {
                        chunk.push_str(&to_ocsf(f, i).to_string());
                        chunk.push('\n');
                    }
                    ExportFormat::Json | ExportFormat::Ocsf => {
                        if n > 0 {
                            chunk.push(',');
                        }
                        let v = match format {
                            ExportFormat::Ocsf => to_ocsf(f, i),
                            _ => finding_json(f, i),
                        };
                        chunk.push_str(&v.to_string());
                        chunk.push('\n');
                    }
                }
                n += 1;
            }
            // A client that went away stops the export.
            if tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
            let Some(c) = page.next_cursor.take() else {
                break;
            };
            q.cursor = Some(c);
            match store.findings_page(&q) {
                Ok(p) => page = p,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            }
        }
        if matches!(format, ExportFormat::Json | ExportFormat::Ocsf) {
            let _ = tx.blocking_send(Ok("]\n".to_owned()));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (ctype, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::OcsfNdjson => ("application/x-ndjson", "ndjson"),
        _ => ("application/json", "json"),
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"guardrail-findings.{ext}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn tokens(State(state): State<AppState>) -> ApiResult {
    let rows = db(&state, |s| s.tokens()).await?;
    Ok(Json(json!({ "tokens": rows })))
}

#[derive(Deserialize)]
pub struct NewToken {
    pub name: String,
    pub role: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(b) = body.map_err(|e| {
        AppError::BadRequest(format!(
            "{e}: send JSON {{\"name\": \"ci\", \"role\": \"viewer\"}}"
        ))
    })?;
    let role = Role::parse(&b.role)?;
    let now = Utc::now();
    let (row, secret) = db(&state, move |s| s.create_token(&b.name, role, now)).await?;
    tracing::info!(token = %row.name, role = %role, by = %auth.principal.name, "token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": row, "secret": secret, "note": "the secret is shown once; store it now" })),
    )
        .into_response())
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let n = name.clone();
    let now = Utc::now();
    if db(&state, move |s| s.revoke_token(&n, now)).await? {
        tracing::info!(token = %name, by = %auth.principal.name, "token revoked");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(AppError::NotFound(format!("no live token named {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            csv_line(&["a".into(), "b,c".into(), "d\"e".into()]),
            "a,\"b,c\",\"d\"\"e\"\n"
        );
    }
}
