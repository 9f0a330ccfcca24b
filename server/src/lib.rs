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
mod metrics;
mod settings;
mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
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
}

impl Metrics {
    pub fn record_sweep(&self, ok: bool) {
        self.sweeps_run.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.sweeps_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn record_dispatch(&self, delivered: u64, failed: u64) {
        self.notifications_delivered
            .fetch_add(delivered, Ordering::Relaxed);
        self.notifications_failed.fetch_add(failed, Ordering::Relaxed);
    }
}

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<ServerSettings>,
    pub metrics: Arc<Metrics>,
    pub(crate) trusted: Arc<Vec<ipnet::IpNet>>,
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
        Ok(AppState {
            store,
            settings: Arc::new(settings),
            metrics,
            trusted: Arc::new(trusted),
        })
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
pub(crate) async fn db<T, F>(state: &AppState, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StorageError> + Send + 'static,
{
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| AppError::Internal(format!("database task failed: {e}")))?
        .map_err(AppError::from)
}

/// The whole application: API, UI, metrics and health.
pub fn router(state: AppState) -> Router {
    let viewer = Router::new()
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/findings", get(api::findings))
        .route("/api/v1/findings/{id}", get(api::finding))
        .route("/api/v1/items", get(api::items))
        .route("/api/v1/items/{id}", get(api::item))
        .route("/api/v1/items/{id}/revisions", get(api::revisions))
        .route("/api/v1/items/{id}/diff", get(api::diff))
        .route("/api/v1/sweeps", get(api::sweeps))
        .route("/api/v1/sweeps/{id}", get(api::sweep))
        .route("/api/v1/rule-errors", get(api::rule_errors))
        .route("/api/v1/summary", get(api::summary))
        .route("/api/v1/export", get(api::export))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(ui::dashboard))
        .route("/findings", get(ui::findings))
        .route("/findings/{id}", get(ui::finding))
        .route("/items", get(ui::items))
        .route("/items/{id}", get(ui::item))
        .route("/sweeps", get(ui::sweeps))
        .route("/rule-errors", get(ui::rule_errors))
        .route("/static/style.css", get(ui::stylesheet))
        .route("/logout", post(auth::logout))
        .route_layer(from_fn(auth::require::<{ Role::Viewer as u8 }>));
    let triager = Router::new()
        .route("/api/v1/findings/{id}/justify", post(api::justify))
        .route("/api/v1/findings/{id}/unjustify", post(api::unjustify))
        .route("/findings/{id}/justify", post(ui::justify))
        .route("/findings/{id}/unjustify", post(ui::unjustify))
        .route_layer(from_fn(auth::require::<{ Role::Triager as u8 }>));
    let admin = Router::new()
        .route("/api/v1/tokens", get(api::tokens).post(api::create_token))
        .route("/api/v1/tokens/{name}", delete(api::revoke_token))
        .route_layer(from_fn(auth::require::<{ Role::Admin as u8 }>));
    let protected = viewer
        .merge(triager)
        .merge(admin)
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(auth::login_form).post(auth::login));
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
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
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
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
