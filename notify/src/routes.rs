//! Routes: which finding events go where, and how (immediately or as a digest).

use std::collections::BTreeMap;
use std::path::PathBuf;

use guardrail_storage::{FindingRow, ItemRow};
use serde::Deserialize;

/// A secret given by environment variable or file, never inline in the config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

impl Secret {
    pub fn resolve(&self, what: &str) -> Result<String, String> {
        match (&self.env, &self.file) {
            (Some(var), _) => std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| format!("{what}: environment variable {var} is not set")),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|v| v.trim().to_owned())
                .map_err(|e| format!("{what}: cannot read {}: {e}", path.display())),
            (None, None) => Err(format!("{what}: give env = \"VAR\" or file = \"/path\"")),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Slack,
    Pagerduty,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Pagerduty => "pagerduty",
            Channel::Webhook => "webhook",
        }
    }
}

/// The events a route can ask for. `changed` is any new revision of a matching item
/// (created, modified, deleted), with its diff; it is not a default.
pub const EVENTS: &[&str] = &["opened", "reopened", "fixed", "justified", "changed"];

fn default_events() -> Vec<String> {
    ["opened", "reopened", "fixed", "justified"]
        .iter()
        .map(|e| (*e).to_owned())
        .collect()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    pub channel: Channel,
    // What to match.
    #[serde(default)]
    pub min_score: Option<i64>,
    #[serde(default)]
    pub severities: Vec<String>,
    /// Account id globs.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub resource_types: Vec<String>,
    /// Rule id globs.
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// The resource tag that names its owner (e.g. "team").
    #[serde(default)]
    pub owner_tag: Option<String>,
    /// Only these owners (globs on the owner tag's value); empty: any.
    #[serde(default)]
    pub owners: Vec<String>,
    // How to deliver.
    /// Collect events for this many seconds (e.g. 3600) and send one summary.
    #[serde(default)]
    pub digest_seconds: Option<u32>,
    // Slack.
    #[serde(default)]
    pub slack_channel: Option<String>,
    /// Owner tag value → Slack channel; owners without an entry go to `slack_channel`.
    #[serde(default)]
    pub owner_channels: BTreeMap<String, String>,
    #[serde(default)]
    pub slack_token: Option<Secret>,
    #[serde(default)]
    pub slack_webhook_url: Option<Secret>,
    #[serde(default)]
    pub slack_api_url: Option<String>,
    // PagerDuty.
    #[serde(default)]
    pub routing_key: Option<Secret>,
    #[serde(default)]
    pub events_url: Option<String>,
    // Webhook.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secret: Option<Secret>,
}

fn glob(pattern: &str, value: &str) -> bool {
    guardrail_model::glob::wildcard_match(pattern, value, false)
}

fn any_glob(patterns: &[String], value: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob(p, value))
}

/// Maps a stored finding event to the event a route subscribes to.
pub fn route_event(stored: &str) -> Option<&'static str> {
    match stored {
        "opened" => Some("opened"),
        "reopened" | "justification expired" | "unjustified" => Some("reopened"),
        "fixed" => Some("fixed"),
        "justified" => Some("justified"),
        _ => None,
    }
}

impl Route {
    pub fn validate(&self) -> Result<(), String> {
        let need = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("notify.routes \"{}\": {what}", self.name))
            }
        };
        need(!self.name.trim().is_empty(), "a route needs a name")?;
        for e in &self.events {
            need(
                EVENTS.contains(&e.as_str()),
                &format!("unknown event {e:?}; use {}", EVENTS.join(", ")),
            )?;
        }
        if let Some(m) = self.min_score {
            need((0..=10).contains(&m), "min_score is 0 to 10")?;
        }
        need(
            self.digest_seconds != Some(0),
            "digest_seconds must be at least 1",
        )?;
        match self.channel {
            Channel::Slack => need(
                self.slack_webhook_url.is_some() || (self.slack_token.is_some() && (self.slack_channel.is_some() || !self.owner_channels.is_empty())),
                "a slack route needs slack_webhook_url = { env = \"...\" }, or slack_token = { env = \"...\" } with slack_channel",
            ),
            Channel::Pagerduty => {
                need(self.routing_key.is_some(), "a pagerduty route needs routing_key = { env = \"...\" }")?;
                need(!self.events.iter().any(|e| e == "changed"), "pagerduty routes page on findings; \"changed\" items go to slack or webhook routes")?;
                need(self.digest_seconds.is_none(), "pagerduty routes deliver immediately (trigger/resolve); remove digest_seconds")
            }
            Channel::Webhook => {
                need(self.url.is_some(), "a webhook route needs url = \"https://...\"")?;
                need(self.secret.is_some(), "a webhook route needs secret = { env = \"...\" } to sign its requests")
            }
        }
    }

    pub fn owner(&self, item: &ItemRow) -> Option<String> {
        let tag = self.owner_tag.as_ref()?;
        item.tags_json()
            .get(tag)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }

    /// Whether this route wants `event` (a route event name) for this finding.
    pub fn matches(&self, event: &str, f: &FindingRow, item: &ItemRow) -> bool {
        if !self.events.iter().any(|e| e == event) {
            return false;
        }
        // Suppressed findings are recorded, not announced.
        if event == "opened" && f.state == "suppressed" {
            return false;
        }
        if self.min_score.is_some_and(|m| f.score < m) {
            return false;
        }
        if !self.severities.is_empty() && !self.severities.contains(&f.severity) {
            return false;
        }
        if !any_glob(&self.accounts, &item.account) || !any_glob(&self.rules, &f.rule_id) {
            return false;
        }
        if !self.resource_types.is_empty() && !self.resource_types.contains(&item.resource_type) {
            return false;
        }
        if !self.owners.is_empty() {
            match self.owner(item) {
                Some(o) => self.owners.iter().any(|p| glob(p, &o)),
                None => false,
            }
        } else {
            true
        }
    }

    /// Whether this route wants the new revision of `item` (the `changed` event).
    /// Finding filters (score, severity, rule) do not apply to a change.
    pub fn matches_change(&self, item: &ItemRow) -> bool {
        self.events.iter().any(|e| e == "changed")
            && any_glob(&self.accounts, &item.account)
            && (self.resource_types.is_empty() || self.resource_types.contains(&item.resource_type))
            && (self.owners.is_empty()
                || self
                    .owner(item)
                    .is_some_and(|o| self.owners.iter().any(|p| glob(p, &o))))
    }

    /// The Slack channel for an item: its owner's channel, else the route's.
    pub fn slack_channel_for(&self, item: &ItemRow) -> Option<String> {
        self.owner(item)
            .and_then(|o| self.owner_channels.get(&o).cloned())
            .or_else(|| self.slack_channel.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("1111*", "111111111111"));
        assert!(glob("ec2/*", "ec2/sg_admin_ports_open"));
        assert!(!glob("ec2/*", "s3/bucket_logging"));
        assert!(glob("*", ""));
    }

    #[test]
    fn validation_names_the_route_and_fix() {
        let r: Route =
            serde_json::from_value(serde_json::json!({"name": "pd", "channel": "pagerduty"}))
                .unwrap();
        assert!(r
            .validate()
            .unwrap_err()
            .contains("notify.routes \"pd\": a pagerduty route needs routing_key"));
        let r: Route = serde_json::from_value(serde_json::json!({"name": "w", "channel": "webhook", "url": "http://x", "secret": {"env": "S"}, "events": ["exploded"]})).unwrap();
        assert!(r.validate().unwrap_err().contains("unknown event"));
        let s = Secret {
            env: Some("GUARDRAIL_TEST_SURELY_UNSET".into()),
            file: None,
        };
        assert!(s
            .resolve("route x token")
            .unwrap_err()
            .contains("GUARDRAIL_TEST_SURELY_UNSET is not set"));
    }
}
