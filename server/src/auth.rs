//! Who is asking: bearer tokens for the API, session cookies for the UI, and identity
//! headers from trusted reverse proxies for SSO; plus role checks and CSRF.
//!
//! CSRF: a browser attaches cookies (and a proxy its identity headers) to any
//! cross-site form post, so every state-changing request authenticated that way must
//! carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`). A bearer
//! token is never attached by a browser on its own, so bearer requests need none. The
//! login form (`login`), which has no session yet, uses a double-submit cookie.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use guardrail_storage::{Principal, Role};

use crate::{db, AppError, AppState};

pub const SESSION_COOKIE: &str = "guardrail_session";
pub const LOGIN_COOKIE: &str = "guardrail_login";
/// Forms are small; a bigger body on a CSRF-checked route is refused, not buffered.
const MAX_FORM_BYTES: usize = 64 * 1024;

pub use crate::caller::{Auth, Via};

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let v = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    // Values are hex we generated; this cannot fail, but never panic on a header.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Compares secrets without returning early on the first differing byte.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn unauthenticated(path: &str) -> Response {
    if is_api(path) {
        AppError::Unauthorized.into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

fn forbidden(path: &str, why: &str) -> Response {
    if is_api(path) {
        AppError::Forbidden(why.to_owned()).into_response()
    } else {
        crate::ui::error_page(StatusCode::FORBIDDEN, why)
    }
}

/// The identity a trusted proxy asserts, if the peer is one.
fn proxy_identity(state: &AppState, req: &Request) -> Result<Option<Principal>, String> {
    let Some(user_header) = state.settings.proxy_user_header.as_deref() else {
        return Ok(None);
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| state.trusted.iter().any(|n| n.contains(&ip)));
    if !trusted {
        // Anyone can send these headers; only the proxy's word counts.
        return Ok(None);
    }
    let Some(user) = req
        .headers()
        .get(user_header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    if user.len() > 256 {
        return Err("the proxy's user header is longer than 256 characters".into());
    }
    let role = match state
        .settings
        .proxy_role_header
        .as_deref()
        .and_then(|h| req.headers().get(h))
    {
        Some(v) => Role::parse(v.to_str().unwrap_or_default()).map_err(|e| e.to_string())?,
        None => Role::parse(&state.settings.proxy_default_role).map_err(|e| e.to_string())?,
    };
    Ok(Some(Principal {
        name: user.to_owned(),
        role,
        token_id: None,
    }))
}

/// Authenticates every request it wraps, checks CSRF on state-changing requests made
/// with browser credentials, and puts [`Auth`] in the request's extensions.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let now = Utc::now();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or("").trim().to_owned());
    let mut new_session: Option<HeaderValue> = None;
    let auth = if let Some(token) = bearer {
        // A wrong token is an error even with a valid cookie: the caller meant the token.
        match db(&state, move |s| s.verify_token(&token, now)).await {
            Ok(Some(p)) => Auth {
                principal: p,
                via: Via::Token,
                csrf: None,
            },
            Ok(None) => return AppError::Unauthorized.into_response(),
            Err(e) => return e.into_response(),
        }
    } else {
        let proxied = match proxy_identity(&state, &req) {
            Ok(p) => p,
            Err(why) => return forbidden(&path, &why),
        };
        let session = match cookie(req.headers(), SESSION_COOKIE).map(str::to_owned) {
            Some(id) => match db(&state, move |s| s.session(&id, now)).await {
                Ok(s) => s,
                Err(e) => return e.into_response(),
            },
            None => None,
        };
        match (proxied, session) {
            (Some(p), Some((sp, row))) if sp == p => Auth {
                principal: p,
                via: Via::Proxy,
                csrf: Some(row.csrf_token),
            },
            // API clients behind the proxy get no session (one per request would pile
            // up); without one they can read but not post, which needs a CSRF token.
            (Some(p), _) if is_api(&path) => Auth {
                principal: p,
                via: Via::Proxy,
                csrf: None,
            },
            (Some(p), _) => {
                // First page of a proxy user (or a changed identity or role): give the
                // browser a session so its forms have a CSRF token to carry.
                let ttl = chrono::Duration::hours(state.settings.session_hours as i64);
                let p2 = p.clone();
                let (sid, csrf) = match db(&state, move |s| s.create_session(&p2, ttl, now)).await {
                    Ok(v) => v,
                    Err(e) => return e.into_response(),
                };
                new_session = Some(set_cookie(&state, SESSION_COOKIE, &sid, ttl.num_seconds()));
                tracing::info!(user = %p.name, role = %p.role, "proxy user signed in");
                Auth {
                    principal: p,
                    via: Via::Proxy,
                    csrf: Some(csrf),
                }
            }
            (None, Some((p, row))) => Auth {
                principal: p,
                via: Via::Session,
                csrf: Some(row.csrf_token),
            },
            (None, None) => return unauthenticated(&path),
        }
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && auth.via != Via::Token {
        let expected = auth.csrf.clone().unwrap_or_default();
        let from_header = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ok = match from_header {
            Some(t) => same(&t, &expected),
            None => {
                let (parts, body) = req.into_parts();
                let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
                    Ok(b) => b,
                    Err(_) => return forbidden(&path, "form too large"),
                };
                let sent = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                    .ok()
                    .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf"))
                    .map(|(_, v)| v);
                req = Request::from_parts(parts, Body::from(bytes));
                sent.is_some_and(|t| same(&t, &expected))
            }
        };
        if !ok || expected.is_empty() {
            tracing::warn!(path = %path, user = %auth.principal.name, "refused a state-changing request without a valid CSRF token");
            return forbidden(
                &path,
                "missing or wrong CSRF token: reload the page and submit the form again",
            );
        }
    }
    req.extensions_mut().insert(auth);
    let mut resp = next.run(req).await;
    if let Some(c) = new_session {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn role_of(min: u8) -> Role {
    match min {
        0 => Role::Viewer,
        1 => Role::Triager,
        _ => Role::Admin,
    }
}

/// Refuses callers below role `MIN` (a `Role as u8`) with 403.
pub async fn require<const MIN: u8>(req: Request, next: Next) -> Response {
    let need = role_of(MIN);
    let path = req.uri().path().to_owned();
    match req.extensions().get::<Auth>() {
        None => unauthenticated(&path),
        Some(a) if a.principal.role < need => forbidden(
            &path,
            &format!(
                "{} has role {}; this needs {need} or higher",
                a.principal.name, a.principal.role
            ),
        ),
        Some(_) => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; guardrail_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn secrets_compare() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
