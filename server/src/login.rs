//! Signing in and out of the UI: the login form (double-submit CSRF cookie, since
//! there is no session yet), token verification with a per-address failure limit,
//! and the session cookie. The middleware that checks sessions is in `auth`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::auth::{cookie, same, set_cookie, LOGIN_COOKIE, SESSION_COOKIE};
use crate::{db, AppError, AppState};

pub async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_page(&state, &headers, StatusCode::OK, None)
}

/// The login form. A login cookie the browser already holds is kept: any other request
/// that lands here meanwhile (the browser's favicon fetch redirected to /login, a
/// second tab) would otherwise replace it and make the open form's token stale.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let held = cookie(headers, LOGIN_COOKIE)
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let csrf = match held {
        Some(c) => c,
        None => match guardrail_storage::auth::random_hex(32) {
            Ok(c) => c,
            Err(e) => return AppError::from(e).into_response(),
        },
    };
    let mut r = crate::ui::login_page(status, &csrf, error);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &csrf, 3600),
    );
    r
}

/// Failed logins per client address: after [`LOGIN_FAILURES`] within
/// [`LOGIN_WINDOW`] the address is refused (429) until the oldest failure ages out.
/// Written here rather than with `governor`/`tower_governor`: those count every request,
/// and only failures may count, so a team behind one address is never locked out by
/// its own successful logins.
#[derive(Default)]
pub struct LoginLimiter {
    failures:
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, Vec<std::time::Instant>>>,
}

pub const LOGIN_FAILURES: usize = 10;
pub const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

impl LoginLimiter {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<std::net::IpAddr, Vec<std::time::Instant>>) -> T,
    ) -> T {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        map.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < LOGIN_WINDOW);
            !times.is_empty()
        });
        f(&mut map)
    }

    /// How long `ip` must wait, if it is refused now.
    pub fn refused(&self, ip: std::net::IpAddr) -> Option<std::time::Duration> {
        self.with(|map| {
            let times = map.get(&ip)?;
            (times.len() >= LOGIN_FAILURES).then(|| {
                let oldest = times
                    .iter()
                    .min()
                    .copied()
                    .unwrap_or_else(std::time::Instant::now);
                LOGIN_WINDOW.saturating_sub(oldest.elapsed())
            })
        })
    }

    pub fn failed(&self, ip: std::net::IpAddr) {
        self.with(|map| map.entry(ip).or_default().push(std::time::Instant::now()));
    }

    pub fn succeeded(&self, ip: std::net::IpAddr) {
        self.with(|map| map.remove(&ip));
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let ip = peer.map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |p| {
        p.0 .0.ip()
    });
    if let Some(wait) = state.logins.refused(ip) {
        tracing::warn!(%ip, "login refused: too many failed attempts");
        let mut r = login_page(
            &state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "too many failed logins from this address; try again in {} s",
                wait.as_secs().max(1)
            )),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(expected, &f.csrf) {
        return crate::ui::error_page(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: open the login page again and resubmit",
        );
    }
    let now = Utc::now();
    let token = f.token.trim().to_owned();
    let principal = match db(&state, move |s| s.verify_token(&token, now)).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            state.logins.failed(ip);
            tracing::warn!(%ip, "login with an unknown or revoked token");
            return login_page(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                Some("unknown or revoked token"),
            );
        }
        Err(e) => return e.into_response(),
    };
    let ttl = chrono::Duration::hours(state.settings.session_hours as i64);
    let p = principal.clone();
    let (sid, _) = match db(&state, move |s| s.create_session(&p, ttl, now)).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    state.logins.succeeded(ip);
    tracing::info!(user = %principal.name, role = %principal.role, "signed in");
    let mut r = Redirect::to("/").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &sid, ttl.num_seconds()),
    );
    h.append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", 0));
    r
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE).map(str::to_owned) {
        if let Err(e) = db(&state, move |s| s.delete_session(&id)).await {
            return e.into_response();
        }
    }
    let mut r = Redirect::to("/login").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    r
}
