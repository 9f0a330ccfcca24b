//! Signed webhooks: JSON (the finding in OCSF form plus guardrail's own fields),
//! signed with HMAC-SHA256 over timestamp and body (see README for receivers).

use async_trait::async_trait;
use guardrail_storage::{finding_json, to_ocsf};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::notifier::{BaselineMessage, ChangeMessage, FindingMessage, Notifier, Outgoing};
use crate::route::{Route, Secret};
use crate::send::{self, Http, SendError};

/// Findings listed in a baseline body; the rest are counted.
const BASELINE_FINDINGS: usize = 200;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secret: Option<Secret>,
}

#[async_trait]
impl Notifier for WebhookConfig {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn validate(&self, _route: &Route) -> Result<(), String> {
        if self.url.is_none() {
            return Err("a webhook route needs url = \"https://...\"".into());
        }
        if self.secret.is_none() {
            return Err(
                "a webhook route needs secret = { env = \"...\" } to sign its requests".into(),
            );
        }
        Ok(())
    }

    fn finding(&self, m: &FindingMessage) -> Value {
        let (f, item) = (m.finding, m.item);
        let mut ocsf = to_ocsf(f, item);
        if let Some(a) = m.actor {
            ocsf["actor"] = crate::render::ocsf_actor(a);
            if let Some(ip) = &a.source_ip {
                ocsf["src_endpoint"] = json!({"ip": ip});
            }
        }
        json!({
            "delivery_id": m.delivery_id,
            "event": m.notice.as_str(),
            "route": m.route.name,
            "ocsf": ocsf,
            "guardrail": {
                "finding": finding_json(f, item),
                "what_changed": m.changes,
                "changed_by": m.actor,
                "links": {"finding": m.links.finding, "item": m.links.item},
            },
        })
    }

    /// A digest entry is the event's own body; the digest wraps them at send time.
    fn digest_entry(&self, m: &FindingMessage) -> Value {
        self.finding(m)
    }

    fn change(&self, m: &ChangeMessage) -> Option<Value> {
        Some(json!({
            "delivery_id": m.delivery_id,
            "event": "changed",
            "route": m.route.name,
            "guardrail": {"item": m.item, "revision": m.revision, "what_changed": m.changes, "links": {"item": m.item_url}},
        }))
    }

    fn baseline(&self, m: &BaselineMessage) -> Value {
        json!({
            "delivery_id": m.delivery_id,
            "event": "baseline",
            "route": m.route.name,
            "baseline": {
                "count": m.found.len(),
                "by_severity": m.by_severity,
                "findings": m.found.iter().take(BASELINE_FINDINGS).map(|f| f.finding.clone()).collect::<Vec<_>>(),
                "truncated": m.found.len() > BASELINE_FINDINGS,
            },
        })
    }

    fn test(&self, route: &Route, delivery_id: &str) -> Value {
        json!({"delivery_id": delivery_id, "event": "test", "route": route.name, "message": "[guardrail] test notification: this route works"})
    }

    async fn send(&self, http: &Http, out: &Outgoing<'_>) -> Result<(), SendError> {
        let secret = out.secret(self.secret.as_ref(), "secret")?;
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| SendError::Permanent(format!("route {}: no url", out.route.name)))?;
        let (first_row, first) = out.first()?;
        let body = if out.is_digest() {
            let start = first_row.digest_window.map(|w| w.and_utc());
            json!({
                "delivery_id": format!("{}:digest:{}", out.route.name, start.map(|w| w.timestamp()).unwrap_or(0)),
                "digest": {"route": out.route.name, "window_start": start.map(|w| w.to_rfc3339()), "count": out.payloads.len(), "events": out.payloads},
            })
        } else {
            first.clone()
        };
        let delivery = body["delivery_id"]
            .as_str()
            .unwrap_or(&first_row.dedup_key)
            .to_owned();
        send::webhook(http, url, &secret, &delivery, &body).await
    }
}
