//! The triage UI: server-rendered HTML from askama templates compiled into the
//! binary (`server/templates/`), one stylesheet, no JavaScript. Every page is one or
//! a few paged, indexed queries. Element ids and classes are stable hooks for browser
//! tests (`#token`, `#login`, `table.findings tr.finding a`, `#justify-reason`, …).
//!
//! One module per page group (`dashboard`, `findings`, `items`, `sweeps`, `compliance`); this one
//! holds what they share: errors as pages, the layout, and the row views.

mod compliance;
mod dashboard;
mod findings;
mod items;
mod sweeps;

pub use compliance::compliance;
pub use dashboard::dashboard;
pub use findings::{finding, findings, justify, unjustify};
pub use items::{item, items};
pub use sweeps::{rule_errors, sweeps};

use askama::Template;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDateTime, Utc};
use guardrail_model::{DiffEntry, DiffOp, FindingState};
use guardrail_storage::{FindingQuery, FindingRow, FindingSort, ItemRow, Role, StorageError};
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Auth;
use crate::usecase::{FindingParams, ItemParams, PageParams};
use crate::{db, AppError, AppState};

/// A UI error: the same statuses as the API, as a page.
pub struct UiError(AppError);

impl From<AppError> for UiError {
    fn from(e: AppError) -> UiError {
        UiError(e)
    }
}

impl From<StorageError> for UiError {
    fn from(e: StorageError) -> UiError {
        UiError(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if let AppError::Internal(m) = &self.0 {
            tracing::error!(error = %m, "page failed");
        }
        error_page(self.0.status(), &self.0.message())
    }
}

type Page = Result<Response, UiError>;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    status: u16,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
    style: &'static str,
}

/// The one stylesheet, served to signed-in pages at `/static/style.css`.
const STYLESHEET: &str = include_str!("../../static/style.css");

/// The login page's Content-Security-Policy: the stylesheet is inlined there (the
/// stylesheet route needs a session, like every route but the login form and
/// /healthz), and allowed by its hash rather than by `'unsafe-inline'`.
fn login_csp() -> HeaderValue {
    static CSP: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(STYLESHEET.as_bytes()));
        HeaderValue::from_str(&format!(
            "default-src 'self'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
    })
    .clone()
}

fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    render(
        status,
        &ErrorTemplate {
            status: status.as_u16(),
            message,
        },
    )
}

pub fn login_page(status: StatusCode, csrf: &str, error: Option<&str>) -> Response {
    let mut r = render(
        status,
        &LoginTemplate {
            csrf,
            error,
            style: STYLESHEET,
        },
    );
    r.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, login_csp());
    r
}

/// What the layout shows on every page.
pub struct Layout {
    pub user: String,
    pub role: String,
    pub csrf: String,
}

fn layout(a: &Auth) -> Layout {
    Layout {
        user: a.principal.name.clone(),
        role: a.principal.role.to_string(),
        csrf: a.csrf.clone().unwrap_or_default(),
    }
}

fn when(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

pub struct FindingView {
    pub id: i64,
    pub score: i64,
    pub severity: String,
    pub state: String,
    pub title: String,
    pub rule_id: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource: String,
    pub item_id: i64,
    pub first_seen: String,
    pub last_seen: String,
}

fn finding_view(f: &FindingRow, i: &ItemRow) -> FindingView {
    FindingView {
        id: f.id,
        score: f.score,
        severity: f.severity.clone(),
        state: f.state.to_string(),
        title: f.title.clone(),
        rule_id: f.rule_id.clone(),
        account: i.account.clone(),
        region: i.region.clone(),
        resource_type: i.resource_type.clone(),
        resource: i.name.clone().unwrap_or_else(|| i.resource_id.clone()),
        item_id: i.id,
        first_seen: when(&f.first_seen_at),
        last_seen: when(&f.last_seen_at),
    }
}

pub struct Kv {
    pub key: String,
    pub count: i64,
}

pub struct SweepView {
    pub id: i64,
    pub source: String,
    pub started: String,
    pub status: String,
    pub seconds: String,
    pub items: i64,
    pub changes: i64,
    pub errors: i64,
}

fn sweep_view(s: &guardrail_storage::SweepRow) -> SweepView {
    SweepView {
        id: s.id,
        source: s.source.clone(),
        started: when(&s.started_at),
        status: s.status.clone(),
        seconds: s
            .finished_at
            .map(|f| {
                format!(
                    "{:.1}",
                    (f - s.started_at).num_milliseconds() as f64 / 1000.0
                )
            })
            .unwrap_or_else(|| "running".into()),
        items: s.items_seen,
        changes: s.created + s.modified + s.deleted,
        errors: s.errors,
    }
}

pub struct DiffView {
    pub path: String,
    pub op: String,
    pub old: String,
    pub new: String,
}

fn compact(v: &Option<Value>) -> String {
    match v {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn diff_views(entries: &[DiffEntry]) -> Vec<DiffView> {
    entries
        .iter()
        .map(|e| DiffView {
            path: if e.path.is_empty() {
                "(whole document)".into()
            } else {
                e.path.clone()
            },
            op: match e.op {
                DiffOp::Added => "added",
                DiffOp::Removed => "removed",
                DiffOp::Changed => "changed",
            }
            .into(),
            old: compact(&e.old),
            new: compact(&e.new),
        })
        .collect()
}

pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}
