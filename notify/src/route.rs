//! Routes: which finding events go where. A route is the part every channel shares
//! (its name, what it matches, digest or not) plus one channel's own configuration.

use std::path::PathBuf;

use guardrail_model::{FindingEvent, FindingState};
use guardrail_storage::{FindingRow, ItemRow};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::channels::ChannelConfig;
use crate::Notifier;

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

/// What a route can subscribe to. `Changed` is any new revision of a matching item
/// (created, modified, deleted) with its diff; it is not a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    Opened,
    Reopened,
    Fixed,
    Justified,
    Changed,
}

impl Notice {
    pub const ALL: [Notice; 5] = [
        Notice::Opened,
        Notice::Reopened,
        Notice::Fixed,
        Notice::Justified,
        Notice::Changed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Opened => "opened",
            Notice::Reopened => "reopened",
            Notice::Fixed => "fixed",
            Notice::Justified => "justified",
            Notice::Changed => "changed",
        }
    }

    pub fn parse(s: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The notice a stored finding event is announced as (`None`: recorded only).
    pub fn of(event: FindingEvent) -> Option<Notice> {
        use FindingEvent as E;
        match event {
            E::Opened => Some(Notice::Opened),
            // A lapsed or withdrawn justification puts the finding back in front of people.
            E::Reopened | E::JustificationExpired | E::Unjustified => Some(Notice::Reopened),
            E::Fixed => Some(Notice::Fixed),
            E::Justified => Some(Notice::Justified),
            E::Suppressed | E::Unsuppressed | E::ScoreChanged => None,
        }
    }

    /// Asks someone to act (as opposed to closing something).
    pub fn is_opening(self) -> bool {
        matches!(self, Notice::Opened | Notice::Reopened)
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_events() -> Vec<Notice> {
    vec![
        Notice::Opened,
        Notice::Reopened,
        Notice::Fixed,
        Notice::Justified,
    ]
}

/// The fields every route has, whatever its channel.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Common {
    name: String,
    #[serde(default)]
    min_score: Option<i64>,
    #[serde(default)]
    severities: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    resource_types: Vec<String>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    owner_tag: Option<String>,
    #[serde(default)]
    owners: Vec<String>,
    #[serde(default)]
    digest_seconds: Option<u32>,
}

/// `Common`'s keys: everything else in a route table belongs to its channel.
const COMMON_FIELDS: &[&str] = &[
    "name",
    "min_score",
    "severities",
    "accounts",
    "resource_types",
    "rules",
    "events",
    "owner_tag",
    "owners",
    "digest_seconds",
];

/// One `[[notify.routes]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    // What to match.
    pub min_score: Option<i64>,
    pub severities: Vec<String>,
    /// Account id globs.
    pub accounts: Vec<String>,
    pub resource_types: Vec<String>,
    /// Rule id globs.
    pub rules: Vec<String>,
    pub events: Vec<Notice>,
    /// The resource tag that names its owner (e.g. "team").
    pub owner_tag: Option<String>,
    /// Only these owners (globs on the owner tag's value); empty: any.
    pub owners: Vec<String>,
    // How to deliver.
    /// Collect events for this many seconds (e.g. 3600) and send one summary.
    pub digest_seconds: Option<u32>,
    /// The channel and its own settings (`channel = "slack"` and the slack fields).
    pub channel: ChannelConfig,
}

impl<'de> Deserialize<'de> for Route {
    /// Splits the table: shared fields to `Common`, the rest to the channel named by
    /// `channel`, each refusing keys it does not know, so a typo in either half is
    /// an error naming the route instead of a setting silently ignored.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = Map::<String, Value>::deserialize(d)?;
        let name = table
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_owned();
        let fail = |e: String| D::Error::custom(format!("notify.routes \"{name}\": {e}"));
        let (common, own): (Map<_, _>, Map<_, _>) = table
            .into_iter()
            .partition(|(k, _)| COMMON_FIELDS.contains(&k.as_str()));
        if !own.contains_key("channel") {
            return Err(fail(format!(
                "a route needs channel = one of {}",
                crate::channels::NAMES.join(", ")
            )));
        }
        let c: Common =
            serde_json::from_value(Value::Object(common)).map_err(|e| fail(e.to_string()))?;
        let channel: ChannelConfig =
            serde_json::from_value(Value::Object(own)).map_err(|e| fail(e.to_string()))?;
        let events = match c.events {
            None => default_events(),
            Some(words) => words
                .iter()
                .map(|w| {
                    Notice::parse(w).ok_or_else(|| {
                        let all: Vec<&str> = Notice::ALL.iter().map(|n| n.as_str()).collect();
                        fail(format!("unknown event {w:?}; use {}", all.join(", ")))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Route {
            name: c.name,
            min_score: c.min_score,
            severities: c.severities,
            accounts: c.accounts,
            resource_types: c.resource_types,
            rules: c.rules,
            events,
            owner_tag: c.owner_tag,
            owners: c.owners,
            digest_seconds: c.digest_seconds,
            channel,
        })
    }
}

fn glob(pattern: &str, value: &str) -> bool {
    guardrail_model::glob::wildcard_match(pattern, value, false)
}

fn any_glob(patterns: &[String], value: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob(p, value))
}

impl Route {
    /// The channel that delivers this route's messages.
    pub fn notifier(&self) -> &dyn Notifier {
        self.channel.notifier()
    }

    pub fn wants(&self, notice: Notice) -> bool {
        self.events.contains(&notice)
    }

    pub fn validate(&self) -> Result<(), String> {
        let need = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(what.to_owned())
            }
        };
        let shared = (|| {
            need(!self.name.trim().is_empty(), "a route needs a name")?;
            if let Some(m) = self.min_score {
                need((0..=10).contains(&m), "min_score is 0 to 10")?;
            }
            need(
                self.digest_seconds != Some(0),
                "digest_seconds must be at least 1",
            )?;
            self.notifier().validate(self)
        })();
        shared.map_err(|e| format!("notify.routes \"{}\": {e}", self.name))
    }

    pub fn owner(&self, item: &ItemRow) -> Option<String> {
        let tag = self.owner_tag.as_ref()?;
        item.tags_json()
            .get(tag)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }

    /// Whether this route wants `notice` for this finding.
    pub fn matches(&self, notice: Notice, f: &FindingRow, item: &ItemRow) -> bool {
        if !self.wants(notice) {
            return false;
        }
        // Suppressed findings are recorded, not announced.
        if notice == Notice::Opened && f.state == FindingState::Suppressed {
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
        self.owner_matches(item)
    }

    /// Whether this route wants the new revision of `item` (the `changed` event).
    /// Finding filters (score, severity, rule) do not apply to a change.
    pub fn matches_change(&self, item: &ItemRow) -> bool {
        self.wants(Notice::Changed)
            && any_glob(&self.accounts, &item.account)
            && (self.resource_types.is_empty() || self.resource_types.contains(&item.resource_type))
            && self.owner_matches(item)
    }

    fn owner_matches(&self, item: &ItemRow) -> bool {
        self.owners.is_empty()
            || self
                .owner(item)
                .is_some_and(|o| self.owners.iter().any(|p| glob(p, &o)))
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

    fn route(v: Value) -> Result<Route, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn validation_names_the_route_and_fix() {
        let r = route(serde_json::json!({"name": "pd", "channel": "pagerduty"})).unwrap();
        assert!(r
            .validate()
            .unwrap_err()
            .contains("notify.routes \"pd\": a pagerduty route needs routing_key"));
        let e = route(serde_json::json!({"name": "w", "channel": "webhook", "url": "http://x", "secret": {"env": "S"}, "events": ["exploded"]})).unwrap_err();
        assert!(
            e.contains("notify.routes \"w\": unknown event \"exploded\""),
            "{e}"
        );
        let s = Secret {
            env: Some("GUARDRAIL_TEST_SURELY_UNSET".into()),
            file: None,
        };
        assert!(s
            .resolve("route x token")
            .unwrap_err()
            .contains("GUARDRAIL_TEST_SURELY_UNSET is not set"));
    }

    #[test]
    fn a_typo_in_either_half_of_a_route_is_an_error_naming_it() {
        let e = route(serde_json::json!({"name": "s", "channel": "slack", "slack_chanel": "#x"}))
            .unwrap_err();
        assert!(
            e.contains("notify.routes \"s\"") && e.contains("slack_chanel"),
            "{e}"
        );
        let e =
            route(serde_json::json!({"name": "s", "channel": "slack", "min_scor": 3})).unwrap_err();
        assert!(e.contains("min_scor"), "{e}");
        let e = route(serde_json::json!({"name": "s", "channel": "carrier-pigeon"})).unwrap_err();
        assert!(e.contains("carrier-pigeon"), "{e}");
        let e = route(serde_json::json!({"name": "s"})).unwrap_err();
        assert!(
            e.contains("a route needs channel = one of slack, pagerduty, webhook, email"),
            "{e}"
        );
    }

    #[test]
    fn every_common_field_is_accepted() {
        let r = route(serde_json::json!({
            "name": "all", "channel": "webhook", "url": "http://127.0.0.1:1/", "secret": {"env": "S"},
            "min_score": 5, "severities": ["high"], "accounts": ["1*"], "resource_types": ["AWS::S3::Bucket"],
            "rules": ["s3/*"], "events": ["changed"], "owner_tag": "team", "owners": ["a*"], "digest_seconds": 60,
        }))
        .unwrap();
        assert_eq!(r.events, vec![Notice::Changed]);
        assert_eq!(COMMON_FIELDS.len(), 10);
    }

    #[test]
    fn stored_events_map_to_notices() {
        assert_eq!(
            Notice::of(FindingEvent::Unjustified),
            Some(Notice::Reopened)
        );
        assert_eq!(Notice::of(FindingEvent::ScoreChanged), None);
    }
}
