//! PagerDuty Events API v2: openings trigger an incident, fixes and justifications
//! resolve it. The dedup key is the finding's fingerprint, so PagerDuty folds repeats
//! into one incident.

use async_trait::async_trait;
use guardrail_storage::finding_json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::notifier::{BaselineMessage, ChangeMessage, FindingMessage, Notifier, Outgoing};
use crate::render::{diff_lines, truncate};
use crate::route::{Notice, Route, Secret};
use crate::send::{self, Http, SendError};

const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    #[serde(default)]
    pub routing_key: Option<Secret>,
    /// Another Events API endpoint (EU service region, a test server).
    #[serde(default)]
    pub events_url: Option<String>,
}

/// PagerDuty Events API v2 severity for a score.
pub fn severity(score: i64) -> &'static str {
    match score {
        9.. => "critical",
        7..=8 => "error",
        4..=6 => "warning",
        _ => "info",
    }
}

#[async_trait]
impl Notifier for PagerdutyConfig {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn validate(&self, route: &Route) -> Result<(), String> {
        if self.routing_key.is_none() {
            return Err("a pagerduty route needs routing_key = { env = \"...\" }".into());
        }
        if route.wants(Notice::Changed) {
            return Err("pagerduty routes page on findings; \"changed\" items go to slack or webhook routes".into());
        }
        if route.digest_seconds.is_some() {
            return Err(
                "pagerduty routes deliver immediately (trigger/resolve); remove digest_seconds"
                    .into(),
            );
        }
        Ok(())
    }

    /// Without its routing key (added at send time, never stored).
    fn finding(&self, m: &FindingMessage) -> Value {
        let (f, item) = (m.finding, m.item);
        if matches!(m.notice, Notice::Fixed | Notice::Justified) {
            return json!({"event_action": "resolve", "dedup_key": f.fingerprint});
        }
        let mut e = json!({
            "event_action": "trigger",
            "dedup_key": f.fingerprint,
            "client": "guardrail",
            "payload": {
                "summary": truncate(&format!("[guardrail] {} ({}/{})", f.title, item.account, item.region), 1024),
                "source": item.arn.clone().unwrap_or_else(|| item.resource_id.clone()),
                "severity": severity(f.score),
                "component": item.resource_type,
                "group": item.account,
                "class": f.rule_id,
                "custom_details": {
                    "finding": finding_json(f, item),
                    "event": m.notice.as_str(),
                    "what_changed": diff_lines(m.changes),
                    "changed_by": m.actor,
                },
            },
        });
        if let Some(url) = &m.links.finding {
            e["links"] = json!([{"href": url, "text": "Finding in guardrail"}]);
            e["client_url"] = json!(url);
        }
        e
    }

    fn change(&self, _m: &ChangeMessage) -> Option<Value> {
        None
    }

    fn baseline(&self, m: &BaselineMessage) -> Value {
        json!({
            "event_action": "trigger",
            "dedup_key": m.delivery_id,
            "client": "guardrail",
            "payload": {
                "summary": truncate(&format!("[guardrail] {}", m.headline), 1024),
                "source": "guardrail",
                "severity": "info",
                "class": "baseline",
                "custom_details": {
                    "by_severity": m.by_severity,
                    "top": m.found.iter().take(20).map(|f| f.line.clone()).collect::<Vec<_>>(),
                },
            },
        })
    }

    fn test(&self, _route: &Route, delivery_id: &str) -> Value {
        json!({
            "event_action": "trigger", "dedup_key": delivery_id, "client": "guardrail",
            "payload": {"summary": "[guardrail] test notification: this route works", "source": "guardrail", "severity": "info", "class": "test"},
        })
    }

    async fn send(&self, http: &Http, out: &Outgoing<'_>) -> Result<(), SendError> {
        let key = out.secret(self.routing_key.as_ref(), "routing_key")?;
        let (_, first) = out.first()?;
        let url = self.events_url.as_deref().unwrap_or(DEFAULT_EVENTS_URL);
        send::pagerduty(http, url, &key, first).await
    }
}
