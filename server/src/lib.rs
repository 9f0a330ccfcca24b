//! guardrail's HTTP server: the JSON API (`/api/v1`), the server-rendered triage UI,
//! authentication (API tokens, DB-backed sessions, trusted-proxy SSO) with roles
//! viewer ⊂ triager ⊂ admin, `/metrics` and `/healthz`.
//!
//! Every route but `/healthz` and the login form goes through [`auth::authenticate`],
//! and each group of routes carries the least role it needs, so a new route is
//! protected by the group it is added to rather than by remembering a check. Storage
//! is synchronous (diesel); handlers reach it through [`db`] on the blocking pool.
//! The scheduler that sweeps sources lives in the binary, which shares [`Metrics`].

pub mod api;
pub mod auth;
mod caller;
mod login;
mod metrics;
mod settings;
mod summary;
mod ui;
mod usecase;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::handler::Handler;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use guardrail_storage::{Role, StorageError, Store};

pub use settings::ServerSettings;

/// Counters kept by this process (the database holds everything else).
#[derive(Debug, Default)]
pub struct Metrics {
    pub sweeps_run: AtomicU64,
    pub sweeps_failed: AtomicU64,
    pub notifications_delivered: AtomicU64,
    pub notifications_failed: AtomicU64,
    pub http_requests: AtomicU64,
    /// Audits (after a sweep, or a re-audit after a rule or settings change) that
    /// finished in this process: findings may have changed.
    pub audits_run: AtomicU64,
    /// Woken by each finished audit (the dashboard's counts are recomputed).
    pub findings_changed: tokio::sync::Notify,
    /// The scheduler's sources and when each is next due (shown on the sweeps page).
    schedule: std::sync::Mutex<Vec<ScheduledSource>>,
    /// What the event sources did with the messages they received.
    pub events: EventCounters,
}

/// Event-source counters, summed over every event source of this process.
#[derive(Debug, Default)]
pub struct EventCounters {
    pub messages: AtomicU64,
    pub refreshed: AtomicU64,
    pub recorded: AtomicU64,
    pub deleted: AtomicU64,
    pub retried: AtomicU64,
    /// Events not acted on, by reason (`malformed`, `unknown_event`, ...).
    ignored: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// One batch as the event source counted it.
#[derive(Debug, Default)]
pub struct EventBatch<'a> {
    pub messages: u64,
    pub refreshed: u64,
    pub recorded: u64,
    pub deleted: u64,
    pub retried: u64,
    pub ignored: Vec<(&'a str, u64)>,
}

impl EventCounters {
    pub fn record(&self, b: &EventBatch) {
        self.messages.fetch_add(b.messages, Ordering::Relaxed);
        self.refreshed.fetch_add(b.refreshed, Ordering::Relaxed);
        self.recorded.fetch_add(b.recorded, Ordering::Relaxed);
        self.deleted.fetch_add(b.deleted, Ordering::Relaxed);
        self.retried.fetch_add(b.retried, Ordering::Relaxed);
        let mut ignored = self.ignored.lock().unwrap_or_else(|p| p.into_inner());
        for (why, n) in &b.ignored {
            *ignored.entry((*why).to_owned()).or_default() += n;
        }
    }

    pub fn ignored(&self) -> Vec<(String, u64)> {
        self.ignored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// One scheduled source as the scheduler last planned it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduledSource {
    pub name: String,
    /// What it sweeps (a path, a bucket, AWS accounts and services).
    pub what: String,
    pub interval_seconds: f64,
    pub next_due: Option<chrono::DateTime<chrono::Utc>>,
    /// The worker running it now, if any (`host:pid`).
    pub leased_by: Option<String>,
    pub runs: i64,
    /// Times it was taken over from a worker whose lease expired.
    pub takeovers: i64,
    pub last_status: Option<String>,
}

impl Metrics {
    pub fn set_schedule(&self, rows: Vec<ScheduledSource>) {
        *self.schedule.lock().unwrap_or_else(|p| p.into_inner()) = rows;
    }

    pub fn schedule(&self) -> Vec<ScheduledSource> {
        self.schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn record_sweep(&self, ok: bool) {
        self.sweeps_run.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.sweeps_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn record_audit(&self) {
        self.audits_run.fetch_add(1, Ordering::SeqCst);
        self.findings_changed.notify_one();
    }

    pub fn record_dispatch(&self, delivered: u64, failed: u64) {
        self.notifications_delivered
            .fetch_add(delivered, Ordering::Relaxed);
        self.notifications_failed
            .fetch_add(failed, Ordering::Relaxed);
    }
}

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<ServerSettings>,
    pub metrics: Arc<Metrics>,
    pub(crate) trusted: Arc<Vec<ipnet::IpNet>>,
    /// One permit per pooled connection; see [`db`].
    db_permits: Arc<tokio::sync::Semaphore>,
    pub(crate) summary: Arc<summary::SummaryCache>,
    pub(crate) logins: Arc<login::LoginLimiter>,
    /// How a framework's compliance is computed (the rule set lives with the caller,
    /// the server knows no rules); `None`: the compliance page says it is unavailable.
    pub compliance: Option<ComplianceFn>,
}

/// Computes a framework's compliance view from the store (`serve` passes one that
/// reads the rules in use). The error is for people (an unknown framework).
pub type ComplianceFn = Arc<dyn Fn(&Store, &str) -> Result<ComplianceView, String> + Send + Sync>;

/// A compliance framework's controls, as the page and the API show them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComplianceView {
    pub framework: String,
    pub name: String,
    /// The control list is the whole framework (a bundled catalogue).
    pub complete_catalogue: bool,
    pub controls: Vec<ControlView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ControlView {
    pub id: String,
    pub title: String,
    /// `fail`, `rule errors`, `pass`, `nothing to judge` or `not covered`.
    pub status: String,
    pub automated: bool,
    pub rules: Vec<String>,
    pub judged: i64,
    pub failing: i64,
    pub passing: i64,
    pub failing_resources: Vec<String>,
}

impl AppState {
    /// Checks the settings (an invalid proxy address is an error, not ignored).
    pub fn new(
        store: Store,
        settings: ServerSettings,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<AppState> {
        settings.validate()?;
        let trusted = settings.trusted_networks()?;
        let permits = store.max_connections().max(1) as usize;
        Ok(AppState {
            db_permits: Arc::new(tokio::sync::Semaphore::new(permits)),
            summary: Arc::default(),
            logins: Arc::default(),
            store,
            settings: Arc::new(settings),
            metrics,
            trusted: Arc::new(trusted),
            compliance: None,
        })
    }

    /// Gives the server a way to compute compliance views.
    pub fn with_compliance(mut self, f: ComplianceFn) -> AppState {
        self.compliance = Some(f);
        self
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.settings
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// An error as the API reports it: a status and a message saying what to change.
#[derive(Debug)]
pub enum AppError {
    Unauthorized,
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> String {
        match self {
            AppError::Unauthorized => {
                "authentication required: send Authorization: Bearer <token> (create one with `guardrail token create`)".into()
            }
            // Internal details go to the log, not to the client.
            AppError::Internal(_) => "internal error; see the server log".into(),
            AppError::Forbidden(m) | AppError::NotFound(m) | AppError::BadRequest(m) => m.clone(),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> AppError {
        match e {
            StorageError::NotFound(m) => AppError::NotFound(m),
            StorageError::Invalid(m) | StorageError::Ambiguous(m) => AppError::BadRequest(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(m) = &self {
            tracing::error!(error = %m, "request failed");
        }
        let mut r = (
            self.status(),
            Json(serde_json::json!({ "error": self.message() })),
        )
            .into_response();
        if matches!(self, AppError::Unauthorized) {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Runs a storage call on the blocking pool (diesel is synchronous).
///
/// Calls queue here, first come first served, for one permit per pooled connection,
/// rather than as blocked threads on the pool's condition variable: under 50
/// concurrent clients that woke waiters in no particular order (a long latency tail)
/// and kept ~50 threads switching in and out for 8 connections.
pub(crate) async fn db<T, F>(state: &AppState, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StorageError> + Send + 'static,
{
    let permit = state
        .db_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AppError::Internal(format!("database queue closed: {e}")))?;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let r = f(&store);
        drop(permit);
        r
    })
    .await
    .map_err(|e| AppError::Internal(format!("database task failed: {e}")))?
    .map_err(AppError::from)
}

/// An HTTP method a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// One route and the least role it needs (`None`: public).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteInfo {
    pub verb: Verb,
    pub path: &'static str,
    pub role: Option<Role>,
}

/// Routes that share a minimum role; recording each route as it is added keeps the
/// route table (checked against the OpenAPI file by the tests) true by construction.
struct Group {
    role: Option<Role>,
    router: Router<AppState>,
    list: Vec<RouteInfo>,
}

impl Group {
    fn new(role: Option<Role>) -> Group {
        Group {
            role,
            router: Router::new(),
            list: Vec::new(),
        }
    }

    fn at<H, T>(mut self, verb: Verb, path: &'static str, handler: H) -> Group
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.list.push(RouteInfo {
            verb,
            path,
            role: self.role,
        });
        self.router = self.router.route(path, on(verb.filter(), handler));
        self
    }
}

fn groups() -> [Group; 4] {
    use Verb::{Delete, Get, Post};
    let public = Group::new(None)
        .at(Get, "/healthz", healthz)
        .at(Get, "/login", login::login_form)
        .at(Post, "/login", login::login);
    let viewer = Group::new(Some(Role::Viewer))
        .at(Get, "/api/v1/me", api::me)
        .at(Get, "/api/v1/findings", api::findings)
        .at(Get, "/api/v1/findings/{id}", api::finding)
        .at(Get, "/api/v1/items", api::items)
        .at(Get, "/api/v1/items/{id}", api::item)
        .at(Get, "/api/v1/items/{id}/revisions", api::revisions)
        .at(Get, "/api/v1/items/{id}/diff", api::diff)
        .at(Get, "/api/v1/sweeps", api::sweeps)
        .at(Get, "/api/v1/sweeps/{id}", api::sweep)
        .at(Get, "/api/v1/rule-errors", api::rule_errors)
        .at(Get, "/api/v1/summary", api::summary)
        .at(Get, "/api/v1/export", api::export)
        .at(Get, "/api/v1/compliance", api::compliance)
        .at(Get, "/metrics", metrics::metrics)
        .at(Get, "/", ui::dashboard)
        .at(Get, "/findings", ui::findings)
        .at(Get, "/findings/{id}", ui::finding)
        .at(Get, "/items", ui::items)
        .at(Get, "/items/{id}", ui::item)
        .at(Get, "/sweeps", ui::sweeps)
        .at(Get, "/rule-errors", ui::rule_errors)
        .at(Get, "/compliance", ui::compliance)
        .at(Get, "/static/style.css", ui::stylesheet)
        .at(Post, "/logout", login::logout);
    let triager = Group::new(Some(Role::Triager))
        .at(Post, "/api/v1/findings/{id}/justify", api::justify)
        .at(Post, "/api/v1/findings/{id}/unjustify", api::unjustify)
        .at(Post, "/findings/{id}/justify", ui::justify)
        .at(Post, "/findings/{id}/unjustify", ui::unjustify);
    let admin = Group::new(Some(Role::Admin))
        .at(Get, "/api/v1/tokens", api::tokens)
        .at(Post, "/api/v1/tokens", api::create_token)
        .at(Delete, "/api/v1/tokens/{name}", api::revoke_token);
    [public, viewer, triager, admin]
}

/// Every route the server answers, with the role it needs.
pub fn route_table() -> Vec<RouteInfo> {
    groups().into_iter().flat_map(|g| g.list).collect()
}

/// The whole application: API, UI, metrics and health.
pub fn router(state: AppState) -> Router {
    let mut public = Router::new();
    let mut protected = Router::new();
    for g in groups() {
        match g.role {
            None => public = public.merge(g.router),
            Some(Role::Viewer) => {
                protected = protected.merge(
                    g.router
                        .route_layer(from_fn(auth::require::<{ Role::Viewer as u8 }>)),
                )
            }
            Some(Role::Triager) => {
                protected = protected.merge(
                    g.router
                        .route_layer(from_fn(auth::require::<{ Role::Triager as u8 }>)),
                )
            }
            Some(Role::Admin) => {
                protected = protected.merge(
                    g.router
                        .route_layer(from_fn(auth::require::<{ Role::Admin as u8 }>)),
                )
            }
        }
    }
    let protected = protected
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    protected
        .merge(public)
        .layer(from_fn_with_state(state.clone(), security_headers))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::NotFound("no such route; the API is documented in server/openapi.json".into())
}

/// Liveness and database reachability; the only route that needs no authentication.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match db(&state, |s| s.ping()).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = ?e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
    // A NUL in a filter (`?tag=%00`) would reach the database, which refuses it
    // (PostgreSQL text cannot hold NUL): say what is wrong instead of a 500.
    if req
        .uri()
        .query()
        .is_some_and(|q| q.to_ascii_lowercase().contains("%00"))
    {
        return AppError::BadRequest(
            "a query parameter contains a NUL character (%00); remove it".into(),
        )
        .into_response();
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    // A page may set a stricter or more specific policy of its own (the login page).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Findings and tokens must not linger in shared or browser caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(summary::watch_audits(state.clone()));
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
