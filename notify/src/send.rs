//! Transports. One HTTP client (hyper, rustls on ring) serves PagerDuty and webhooks
//! and is handed to slack-morphism for Slack; e-mail uses lettre (channels/email.rs)
//! on the same rustls provider. Every call has a timeout.
//!
//! Failures are retried unless the answer is permanent *for that receiver's API*:
//! a proxy in front of a receiver answers 404 or 502 during an outage, and giving up
//! on those loses notifications. Per channel, only these give up:
//! - PagerDuty Events v2: 400 (invalid event), 413 (payload too large).
//! - Webhooks: 400, 401, 403, 405, 410, 413, 415, 422 (the receiver refuses this
//!   request or this sender; resending the same bytes cannot succeed).
//! - Slack: API error codes that name a configuration problem (`invalid_auth`,
//!   `channel_not_found`, `not_in_channel`, `is_archived`, `token_revoked`, ...;
//!   see [`SLACK_PERMANENT`]) and HTTP 400, 401, 403, 410, 413.
//!
//! Everything else (network errors, timeouts, 404, 408, 409, 425, 429, 5xx, unknown
//! codes) is retried with backoff, honouring `Retry-After`, until the route's
//! `give_up_after_seconds`.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sha2::Sha256;
use slack_morphism::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    Retry(String),
    /// Retry, but not before the receiver's `Retry-After`.
    RetryAfter(String, Duration),
    Permanent(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }

    /// The receiver's requested pause, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::RetryAfter(_, d) => Some(*d),
            _ => None,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Retry(m) => write!(f, "{m} (will retry)"),
            SendError::RetryAfter(m, d) => {
                write!(f, "{m} (will retry, not before {}s as asked)", d.as_secs())
            }
            SendError::Permanent(m) => write!(f, "{m} (not retried)"),
        }
    }
}

/// Installs ring as rustls' process-wide crypto provider. slack-morphism's connector
/// enables ring and the AWS SDK enables aws-lc-rs; with both in one binary rustls
/// cannot choose and panics on the first handshake, so every binary calls this first.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn https_connector() -> HttpsConnector<HttpConnector> {
    install_crypto_provider();
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("no system CA certificates ({e}); HTTPS receivers will fail until ca-certificates is installed");
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    builder.https_or_http().enable_http1().build()
}

#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    connector: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl Http {
    pub fn new(timeout: Duration) -> Http {
        let connector = https_connector();
        Http {
            client: Client::builder(TokioExecutor::new()).build(connector.clone()),
            connector,
            timeout,
        }
    }

    /// The per-call timeout every channel honours.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs JSON; returns the answer's status, (trimmed) body and `Retry-After`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, SendError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| SendError::Permanent(format!("bad URL {url:?}: {e}")))?;
        let mut req = hyper::Request::post(uri)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("guardrail/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let res = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| {
                SendError::Retry(format!(
                    "no answer from {} within {:?}",
                    host(url),
                    self.timeout
                ))
            })?
            .map_err(|e| SendError::Retry(format!("cannot reach {}: {e}", host(url))))?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = tokio::time::timeout(self.timeout, res.into_body().collect())
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(300)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    fn slack_client(
        &self,
        api_url: Option<&str>,
    ) -> SlackClient<SlackClientHyperConnector<HttpsConnector<HttpConnector>>> {
        let mut connector = SlackClientHyperConnector::from(self.connector.clone());
        if let Some(url) = api_url {
            connector = connector.with_slack_api_url(url.trim_end_matches('/'));
        }
        SlackClient::new(connector)
    }
}

/// Never prints the path or query of a URL (webhook URLs carry secrets).
fn host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_else(|| "the receiver".into())
}

/// What a receiver answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<Duration>,
}

/// `Retry-After` as seconds or an HTTP date; capped at an hour so one odd answer
/// cannot park a notification for days.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let secs = match v.parse::<u64>() {
        Ok(s) => s,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            u64::try_from((at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
                .unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs.min(3600)))
}

/// HTTP answers that are permanent for PagerDuty's Events API v2.
pub const PAGERDUTY_PERMANENT: &[u16] = &[400, 413];
/// HTTP answers that are permanent for a webhook receiver.
pub const WEBHOOK_PERMANENT: &[u16] = &[400, 401, 403, 405, 410, 413, 415, 422];
/// HTTP answers that are permanent for Slack (chat.postMessage and incoming webhooks).
pub const SLACK_HTTP_PERMANENT: &[u16] = &[400, 401, 403, 410, 413];
/// Slack API error codes that name a problem only a person can fix.
pub const SLACK_PERMANENT: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "channel_is_archived",
    "restricted_action",
    "cannot_reply_to_message",
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_arguments",
    "invalid_payload",
    "msg_too_long",
    "no_text",
    "too_many_attachments",
    "no_service",
    "action_prohibited",
    "posting_to_general_channel_denied",
];

fn classify(answer: &Answer, permanent: &[u16], who: &str) -> Result<(), SendError> {
    let (status, body) = (answer.status, &answer.body);
    match status {
        200..=299 => Ok(()),
        s if permanent.contains(&s) => Err(SendError::Permanent(format!(
            "{who} refused the request with HTTP {status}: {body}"
        ))),
        _ => {
            let m = format!("{who} answered HTTP {status}: {body}");
            Err(match answer.retry_after {
                Some(d) => SendError::RetryAfter(m, d),
                None => SendError::Retry(m),
            })
        }
    }
}

pub async fn pagerduty(
    http: &Http,
    events_url: &str,
    routing_key: &str,
    event: &Value,
) -> Result<(), SendError> {
    let mut body = event.clone();
    body["routing_key"] = Value::String(routing_key.to_owned());
    let bytes = serde_json::to_vec(&body).map_err(|e| SendError::Permanent(e.to_string()))?;
    let answer = http.post(events_url, &[], bytes).await?;
    classify(&answer, PAGERDUTY_PERMANENT, "PagerDuty")
}

type HmacSha256 = Hmac<Sha256>;

/// `v1=` + hex HMAC-SHA256 over `"{timestamp}.{body}"` (see README for receivers).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch is unreachable in practice.
        HmacSha256::new_from_slice(b"guardrail").expect("fixed key")
    });
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub async fn webhook(
    http: &Http,
    url: &str,
    secret: &str,
    delivery: &str,
    body: &Value,
) -> Result<(), SendError> {
    let bytes = serde_json::to_vec(body).map_err(|e| SendError::Permanent(e.to_string()))?;
    let ts = chrono::Utc::now().timestamp();
    let headers = [
        ("x-guardrail-timestamp", ts.to_string()),
        ("x-guardrail-signature", signature(secret, ts, &bytes)),
        ("x-guardrail-delivery", delivery.to_owned()),
    ];
    let answer = http.post(url, &headers, bytes).await?;
    classify(&answer, WEBHOOK_PERMANENT, "the webhook receiver")
}

fn slack_error(e: slack_morphism::errors::SlackClientError) -> SendError {
    use slack_morphism::errors::SlackClientError as E;
    match e {
        E::ApiError(api) => {
            let code = api.code.clone();
            if SLACK_PERMANENT.contains(&code.as_str()) {
                SendError::Permanent(format!("Slack refused the message: {code}"))
            } else {
                SendError::Retry(format!("Slack answered {code}"))
            }
        }
        E::HttpError(h) if SLACK_HTTP_PERMANENT.contains(&h.status_code.as_u16()) => {
            let body = h.http_response_body.clone().unwrap_or_default();
            let body = body.trim();
            SendError::Permanent(format!(
                "Slack refused the message with HTTP {}{}{body}",
                h.status_code,
                if body.is_empty() { "" } else { ": " }
            ))
        }
        E::HttpError(h) => SendError::Retry(format!("Slack answered HTTP {}", h.status_code)),
        E::RateLimitError(r) => match r.retry_after {
            Some(d) => {
                SendError::RetryAfter("Slack rate limit".into(), d.min(Duration::from_secs(3600)))
            }
            None => SendError::Retry("Slack rate limit".into()),
        },
        other => SendError::Retry(format!("cannot reach Slack: {other}")),
    }
}

pub async fn slack_post(
    http: &Http,
    api_url: Option<&str>,
    token: &str,
    channel: &str,
    content: SlackMessageContent,
) -> Result<(), SendError> {
    let client = http.slack_client(api_url);
    let token = SlackApiToken::new(token.to_owned().into());
    let session = client.open_session(&token);
    let req = SlackApiChatPostMessageRequest::new(channel.to_owned().into(), content);
    tokio::time::timeout(http.timeout, session.chat_post_message(&req))
        .await
        .map_err(|_| SendError::Retry("no answer from Slack in time".into()))?
        .map(|_| ())
        .map_err(slack_error)
}

pub async fn slack_webhook(
    http: &Http,
    url: &str,
    content: SlackMessageContent,
) -> Result<(), SendError> {
    let client = http.slack_client(None);
    let url = url::Url::parse(url)
        .map_err(|e| SendError::Permanent(format!("bad Slack webhook URL: {e}")))?;
    let req = SlackApiPostWebhookMessageRequest::new(content);
    tokio::time::timeout(http.timeout, client.post_webhook_message(&url, &req))
        .await
        .map_err(|_| SendError::Retry("no answer from Slack in time".into()))?
        .map(|_| ())
        .map_err(slack_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_stable_and_keyed() {
        let a = signature("s3cret", 1_700_000_000, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_eq!(a, signature("s3cret", 1_700_000_000, b"{}"));
        assert_ne!(a, signature("other", 1_700_000_000, b"{}"));
        assert_ne!(a, signature("s3cret", 1_700_000_001, b"{}"));
    }

    #[test]
    fn hosts_hide_secret_paths() {
        assert_eq!(
            host("https://hooks.slack.com/services/T0/B0/SECRET"),
            "hooks.slack.com"
        );
        assert_eq!(host("http://127.0.0.1:9999/x?token=y"), "127.0.0.1:9999");
    }

    fn answer(status: u16, retry_after: Option<u64>) -> Answer {
        Answer {
            status,
            body: "x".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn only_answers_permanent_for_the_api_give_up() {
        for status in [404, 408, 409, 425, 429, 500, 502, 503, 504, 302] {
            for permanent in [PAGERDUTY_PERMANENT, WEBHOOK_PERMANENT, SLACK_HTTP_PERMANENT] {
                let e = classify(&answer(status, None), permanent, "r").unwrap_err();
                assert!(!e.is_permanent(), "{status}: {e}");
            }
        }
        assert!(
            classify(&answer(400, None), PAGERDUTY_PERMANENT, "PagerDuty")
                .unwrap_err()
                .is_permanent()
        );
        assert!(
            !classify(&answer(403, None), PAGERDUTY_PERMANENT, "PagerDuty")
                .unwrap_err()
                .is_permanent()
        );
        assert!(classify(&answer(410, None), WEBHOOK_PERMANENT, "w")
            .unwrap_err()
            .is_permanent());
        assert!(classify(&answer(202, None), PAGERDUTY_PERMANENT, "p").is_ok());
        let e = classify(&answer(429, Some(120)), WEBHOOK_PERMANENT, "w").unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("999999"), Some(Duration::from_secs(3600)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let d = parse_retry_after(&soon).unwrap().as_secs();
        assert!((85..=90).contains(&d), "{d}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test]
    async fn the_tls_stack_initialises_with_one_provider() {
        // Building the HTTPS connector is where a missing provider panics.
        let http = Http::new(Duration::from_secs(2));
        let err = http
            .post("https://127.0.0.1:1/x", &[], b"{}".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::Retry(m) if m.contains("cannot reach 127.0.0.1:1")));
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
