//! Transports. One HTTP client (hyper, rustls on ring) serves PagerDuty and webhooks
//! and is handed to slack-morphism for Slack. Every call has a timeout. Failures are
//! either worth retrying (network, 429, 5xx) or not (the receiver refuses the request).

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
    Permanent(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Retry(m) => write!(f, "{m} (will retry)"),
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

    /// POSTs JSON; returns the status and (trimmed) body.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(u16, String), SendError> {
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
        Ok((status, body))
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

fn classify(status: u16, body: &str, who: &str) -> Result<(), SendError> {
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(SendError::Retry(format!(
            "{who} answered HTTP {status}: {body}"
        ))),
        _ => Err(SendError::Permanent(format!(
            "{who} refused the request with HTTP {status}: {body}"
        ))),
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
    let (status, text) = http.post(events_url, &[], bytes).await?;
    classify(status, &text, "PagerDuty")
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
    let (status, text) = http.post(url, &headers, bytes).await?;
    classify(status, &text, "the webhook receiver")
}

fn slack_error(e: slack_morphism::errors::SlackClientError) -> SendError {
    use slack_morphism::errors::SlackClientError as E;
    match e {
        E::ApiError(api) => {
            let code = api.code.clone();
            let retry = [
                "ratelimited",
                "internal_error",
                "fatal_error",
                "request_timeout",
                "service_unavailable",
            ]
            .contains(&code.as_str());
            let m = format!("Slack refused the message: {code}");
            if retry {
                SendError::Retry(m)
            } else {
                SendError::Permanent(m)
            }
        }
        E::HttpError(h) if h.status_code.as_u16() == 429 || h.status_code.is_server_error() => {
            SendError::Retry(format!("Slack answered HTTP {}", h.status_code))
        }
        E::HttpError(h) => SendError::Permanent(format!("Slack answered HTTP {}", h.status_code)),
        E::RateLimitError(_) => SendError::Retry("Slack rate limit".into()),
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
