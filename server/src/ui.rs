//! The triage UI: server-rendered HTML from askama templates compiled into the
//! binary (`server/templates/`), one stylesheet, no JavaScript. Every page is one or
//! a few paged, indexed queries. Element ids and classes are stable hooks for browser
//! tests (`#token`, `#login`, `table.findings tr.finding a`, `#justify-reason`, …).

use askama::Template;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDateTime, Utc};
use guardrail_model::{DiffEntry, DiffOp, FindingState};
use guardrail_storage::{FindingQuery, FindingRow, FindingSort, ItemRow, Role, StorageError};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{FindingParams, ItemParams, PageParams};
use crate::auth::Auth;
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
const STYLESHEET: &str = include_str!("../static/style.css");

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

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardTemplate {
    l: Layout,
    open: i64,
    new_since: i64,
    newest: Vec<FindingView>,
    top: Vec<FindingView>,
    by_severity: Vec<Kv>,
    by_owner: Vec<Kv>,
    by_account: Vec<Kv>,
    owner_tag: String,
    health: Vec<SweepView>,
    counts_as_of: String,
    /// Rules not judging as they should: shown as a banner, never silent.
    broken_rules: Vec<guardrail_storage::RuleHealthRow>,
}

fn kvs(v: &[guardrail_storage::Count]) -> Vec<Kv> {
    v.iter()
        .map(|c| Kv {
            key: c.key.clone().unwrap_or_else(|| "(none)".into()),
            count: c.count,
        })
        .collect()
}

pub async fn dashboard(State(state): State<AppState>, Extension(auth): Extension<Auth>) -> Page {
    let tag = state.settings.owner_tag.clone();
    let since = Utc::now() - Duration::hours(24);
    let counts = crate::summary::counts(&state).await?;
    let (new_since, top, newest, health, broken_rules) = db(&state, move |s| {
        let base = FindingQuery {
            states: vec![FindingState::Open],
            owner_tag: tag,
            limit: 10,
            ..Default::default()
        };
        let top = s.findings_page(&base)?;
        let newest = s.findings_page(&FindingQuery {
            sort: FindingSort::FirstSeen,
            ..base
        })?;
        Ok((
            s.new_findings_since(since)?,
            top,
            newest,
            s.sweep_health()?,
            s.unhealthy_rules()?,
        ))
    })
    .await?;
    let since_naive = since.naive_utc();
    let c = &counts.counts;
    Ok(render(
        StatusCode::OK,
        &DashboardTemplate {
            l: layout(&auth),
            open: c.open,
            new_since,
            newest: newest
                .rows
                .iter()
                .filter(|(f, _)| f.first_seen_at >= since_naive)
                .map(|(f, i)| finding_view(f, i))
                .collect(),
            top: top.rows.iter().map(|(f, i)| finding_view(f, i)).collect(),
            by_severity: kvs(&c.by_severity),
            by_owner: kvs(&c.by_owner),
            by_account: kvs(&c.by_account),
            owner_tag: state.settings.owner_tag.clone(),
            health: health.iter().map(|h| sweep_view(&h.last)).collect(),
            counts_as_of: counts.as_of.format("%H:%M:%S UTC").to_string(),
            broken_rules,
        },
    ))
}

/// The filter form's current values, as strings for the inputs.
pub struct Filters {
    pub state: String,
    pub min_score: String,
    pub severity: String,
    pub account: String,
    pub resource_type: String,
    pub rule: String,
    pub owner: String,
    pub q: String,
    pub sort: String,
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsTemplate {
    l: Layout,
    f: Filters,
    rows: Vec<FindingView>,
    next: Option<String>,
}

pub async fn findings(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<FindingParams>,
) -> Page {
    let q = p.to_query(&state.settings.owner_tag)?;
    let page = db(&state, move |s| s.findings_page(&q)).await?;
    let next = page.next_cursor.map(|c| {
        let mut n = p.clone();
        n.cursor = Some(c);
        format!(
            "/findings?{}",
            serde_urlencoded::to_string(&n).unwrap_or_default()
        )
    });
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(render(
        StatusCode::OK,
        &FindingsTemplate {
            l: layout(&auth),
            f: Filters {
                state: p.state.clone().unwrap_or_else(|| "open".into()),
                min_score: s(&p.min_score),
                severity: s(&p.severity),
                account: s(&p.account),
                resource_type: s(&p.resource_type),
                rule: s(&p.rule),
                owner: s(&p.owner),
                q: s(&p.q),
                sort: p.sort.clone().unwrap_or_else(|| "score".into()),
            },
            rows: page.rows.iter().map(|(f, i)| finding_view(f, i)).collect(),
            next,
        },
    ))
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

pub struct EventView {
    pub at: String,
    pub event: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "finding.html")]
struct FindingTemplate {
    l: Layout,
    f: FindingView,
    detail: String,
    remediation: String,
    fingerprint: String,
    rule_score: i64,
    justification: Option<String>,
    opening: Option<String>,
    diff: Vec<DiffView>,
    events: Vec<EventView>,
    can_justify: bool,
    can_unjustify: bool,
    /// A justify form that was refused: why, and what was typed (kept, not lost).
    form_error: Option<String>,
    typed_reason: String,
    typed_until: String,
}

pub async fn finding(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
) -> Page {
    finding_page(&state, &auth, id, StatusCode::OK, None).await
}

/// The finding page; `refused` re-shows a justify form that could not be applied,
/// with the reason and what was typed.
async fn finding_page(
    state: &AppState,
    auth: &Auth,
    id: i64,
    status: StatusCode,
    refused: Option<(String, JustifyForm)>,
) -> Page {
    let d = crate::api::finding_detail(state, id).await?;
    let f = &d.finding;
    let triager = auth.principal.role >= Role::Triager;
    let justification = f.justification.as_ref().map(|j| {
        format!(
            "{j} — by {}{}",
            f.justified_by.as_deref().unwrap_or("?"),
            f.justified_until
                .map(|u| format!(", until {}", when(&u)))
                .unwrap_or_default()
        )
    });
    let (form_error, typed) = match refused {
        Some((e, form)) => (Some(e), form),
        None => (None, JustifyForm::default()),
    };
    Ok(render(
        status,
        &FindingTemplate {
            l: layout(auth),
            f: finding_view(f, &d.item),
            detail: f.detail.clone(),
            remediation: f.remediation.clone(),
            fingerprint: f.fingerprint.clone(),
            rule_score: f.rule_score,
            justification,
            opening: d
                .opening
                .as_ref()
                .map(|(from, to, _)| format!("v{from} → v{to}")),
            diff: d
                .opening
                .as_ref()
                .map(|(_, _, e)| diff_views(e))
                .unwrap_or_default(),
            events: d
                .events
                .iter()
                .map(|e| EventView {
                    at: when(&e.at),
                    event: e.event.to_string(),
                    actor: e.actor.clone().unwrap_or_default(),
                    detail: e.detail.clone(),
                })
                .collect(),
            can_justify: triager
                && matches!(f.state, FindingState::Open | FindingState::Suppressed),
            can_unjustify: triager && f.state == FindingState::Justified,
            form_error,
            typed_reason: typed.reason,
            typed_until: typed.until,
        },
    ))
}

#[derive(Deserialize, Default, Clone)]
pub struct JustifyForm {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub until: String,
}

pub async fn justify(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
    Form(form): Form<JustifyForm>,
) -> Page {
    let outcome = match crate::api::parse_until(Some(&form.until)) {
        Ok(until) => crate::api::do_justify(&state, &auth, id, form.reason.clone(), until)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/findings/{id}")).into_response()),
        // A refusal the person can fix: the page again, with why and what they typed.
        Err(AppError::BadRequest(why)) => {
            finding_page(
                &state,
                &auth,
                id,
                StatusCode::BAD_REQUEST,
                Some((why, form)),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn unjustify(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
) -> Page {
    crate::api::do_unjustify(&state, &auth, id).await?;
    Ok(Redirect::to(&format!("/findings/{id}")).into_response())
}

pub struct ItemView {
    pub id: i64,
    pub label: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    pub arn: String,
    pub version: i64,
    pub active: bool,
    pub observed: String,
}

fn item_view(i: &ItemRow) -> ItemView {
    ItemView {
        id: i.id,
        label: i.name.clone().unwrap_or_else(|| i.resource_id.clone()),
        account: i.account.clone(),
        region: i.region.clone(),
        resource_type: i.resource_type.clone(),
        resource_id: i.resource_id.clone(),
        arn: i.arn.clone().unwrap_or_default(),
        version: i.version,
        active: i.active,
        observed: when(&i.observed_at),
    }
}

#[derive(Template)]
#[template(path = "items.html")]
struct ItemsTemplate {
    l: Layout,
    q: String,
    tag: String,
    resource_type: String,
    account: String,
    rows: Vec<ItemView>,
    next: Option<String>,
}

pub async fn items(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<ItemParams>,
) -> Page {
    let q = p.to_query();
    let page = db(&state, move |s| s.items_page(&q)).await?;
    let next = page.next_cursor.map(|c| {
        let mut n = p.clone();
        n.cursor = Some(c);
        format!(
            "/items?{}",
            serde_urlencoded::to_string(&n).unwrap_or_default()
        )
    });
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(render(
        StatusCode::OK,
        &ItemsTemplate {
            l: layout(&auth),
            q: s(&p.q),
            tag: s(&p.tag),
            resource_type: s(&p.resource_type),
            account: s(&p.account),
            rows: page.rows.iter().map(item_view).collect(),
            next,
        },
    ))
}

pub struct RevView {
    pub version: i64,
    pub change: String,
    pub cause: String,
    pub observed: String,
    pub origin: String,
}

pub struct TagView {
    pub key: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "item.html")]
struct ItemTemplate {
    l: Layout,
    item: ItemView,
    tags: Vec<TagView>,
    revisions: Vec<RevView>,
    older: Option<String>,
    from: i64,
    to: i64,
    diff: Vec<DiffView>,
    diff_error: Option<String>,
    old_doc: String,
    new_doc: String,
    findings: Vec<FindingView>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ItemPageParams {
    pub before: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

pub async fn item(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<i64>,
    Query(p): Query<ItemPageParams>,
) -> Page {
    let tag = state.settings.owner_tag.clone();
    let (before, from, to) = (p.before, p.from, p.to);
    // One trip to the blocking pool for the whole page.
    let (item, revs, findings, diff) = db(&state, move |s| {
        let item = s
            .item(id)?
            .ok_or_else(|| StorageError::NotFound(format!("no item {id}")))?;
        let revs = s.revisions_page(id, before, 20)?;
        let findings = s.findings_page(&FindingQuery {
            item_id: Some(id),
            owner_tag: tag,
            limit: 100,
            ..Default::default()
        })?;
        // A bad version range is shown on the page, not an error for the whole page.
        let diff = crate::api::diff_versions(s, &item, from, to);
        Ok((item, revs, findings, diff))
    })
    .await?;
    let (from, to, diff, diff_error, old_doc, new_doc) = match diff {
        Ok((from, to, old, new, changes)) => (
            from,
            to,
            diff_views(&changes),
            None,
            serde_json::to_string_pretty(&old).unwrap_or_default(),
            serde_json::to_string_pretty(&new).unwrap_or_default(),
        ),
        Err(e) => {
            if let AppError::Internal(m) = &e {
                tracing::error!(error = %m, item = id, "item diff failed");
            }
            (
                p.from.unwrap_or(item.version - 1),
                p.to.unwrap_or(item.version),
                Vec::new(),
                Some(e.message()),
                String::new(),
                String::new(),
            )
        }
    };
    let older = revs
        .last()
        .filter(|r| r.version > 1)
        .map(|r| format!("/items/{id}?before={}", r.version));
    let tags = match item.tags_json() {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| TagView {
                key: k,
                value: v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(render(
        StatusCode::OK,
        &ItemTemplate {
            l: layout(&auth),
            item: item_view(&item),
            tags,
            revisions: revs
                .iter()
                .map(|r| RevView {
                    version: r.version,
                    change: r.change.to_string(),
                    cause: r.cause.clone(),
                    observed: when(&r.observed_at),
                    origin: r.origin.clone(),
                })
                .collect(),
            older,
            from,
            to,
            diff,
            diff_error,
            old_doc,
            new_doc,
            findings: findings
                .rows
                .iter()
                .map(|(f, i)| finding_view(f, i))
                .collect(),
        },
    ))
}

pub struct ErrorView {
    pub source: String,
    pub scope: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "sweeps.html")]
struct SweepsTemplate {
    l: Layout,
    /// (name, what, every, next due) of each scheduled source.
    schedule: Vec<(String, String, String, String)>,
    health: Vec<SweepView>,
    sweeps: Vec<SweepView>,
    errors: Vec<ErrorView>,
    older: Option<String>,
}

pub async fn sweeps(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<PageParams>,
) -> Page {
    let (health, sweeps, errors) = db(&state, move |s| {
        let health = s.sweep_health()?;
        let mut errors = Vec::new();
        for h in health.iter().filter(|h| h.errors > 0) {
            for e in s.sweep_errors_page(h.last.id, None, 20)? {
                errors.push((h.source.clone(), e));
            }
        }
        Ok((health, s.sweeps_page(p.before, 50)?, errors))
    })
    .await?;
    let older = sweeps
        .last()
        .filter(|_| sweeps.len() == 50)
        .map(|s| format!("/sweeps?before={}", s.id));
    Ok(render(
        StatusCode::OK,
        &SweepsTemplate {
            l: layout(&auth),
            schedule: state
                .metrics
                .schedule()
                .into_iter()
                .map(|s| {
                    let next = s.next_due.map_or("not scheduled".into(), |t| {
                        if t <= Utc::now() {
                            "now".to_owned()
                        } else {
                            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                        }
                    });
                    (s.name, s.what, format!("{}s", s.interval_seconds), next)
                })
                .collect(),
            health: health.iter().map(|h| sweep_view(&h.last)).collect(),
            sweeps: sweeps.iter().map(sweep_view).collect(),
            errors: errors
                .into_iter()
                .map(|(source, e)| ErrorView {
                    source,
                    scope: [e.account, e.region, e.resource_type]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" / "),
                    message: e.message,
                })
                .collect(),
            older,
        },
    ))
}

pub struct RuleErrorView {
    pub at: String,
    pub rule_id: String,
    pub item_id: Option<i64>,
    pub message: String,
}

#[derive(Template)]
#[template(path = "rule_errors.html")]
struct RuleErrorsTemplate {
    l: Layout,
    rows: Vec<RuleErrorView>,
    older: Option<String>,
}

pub async fn rule_errors(
    State(state): State<AppState>,
    Extension(auth): Extension<Auth>,
    Query(p): Query<PageParams>,
) -> Page {
    let rows = db(&state, move |s| s.rule_errors_page(p.before, 50)).await?;
    let older = rows
        .last()
        .filter(|_| rows.len() == 50)
        .map(|r| format!("/rule-errors?before={}", r.id));
    Ok(render(
        StatusCode::OK,
        &RuleErrorsTemplate {
            l: layout(&auth),
            rows: rows
                .into_iter()
                .map(|r| RuleErrorView {
                    at: when(&r.at),
                    rule_id: r.rule_id,
                    item_id: r.item_id,
                    message: r.message,
                })
                .collect(),
            older,
        },
    ))
}

pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}
