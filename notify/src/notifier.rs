//! The one trait a channel implements. Routing (`queue.rs`) asks a route's notifier
//! to render what it will send when the notification is queued, so every retry
//! sends the same thing and nothing secret is stored; dispatching (`dispatch.rs`)
//! hands it the stored rows to deliver. Everything channel-specific lives behind it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use guardrail_model::{Actor, DiffEntry};
use guardrail_storage::{FindingRow, ItemRow, OutboxRow, RevisionRow};
use serde_json::{json, Value};

use crate::render::{self, Links};
use crate::route::{Notice, Route};
use crate::send::{Http, SendError};

/// One finding event for one route.
pub struct FindingMessage<'a> {
    pub route: &'a Route,
    pub notice: Notice,
    pub finding: &'a FindingRow,
    pub item: &'a ItemRow,
    /// What changed in the revision that opened it (empty when not an opening).
    pub changes: &'a [DiffEntry],
    /// Who made the change that opened it, when known (an event, or CloudTrail).
    pub actor: Option<&'a Actor>,
    pub links: &'a Links,
    /// The outbox dedup key: receivers can use it to drop a repeat.
    pub delivery_id: &'a str,
}

/// One new revision of an item (the `changed` notice).
pub struct ChangeMessage<'a> {
    pub route: &'a Route,
    pub revision: &'a RevisionRow,
    pub item: &'a ItemRow,
    pub changes: &'a [DiffEntry],
    pub item_url: Option<&'a str>,
    pub delivery_id: &'a str,
}

/// One finding in a baseline summary.
pub struct Found {
    pub score: i64,
    pub severity: String,
    pub line: String,
    pub finding: Value,
}

/// What a first sweep found, for one route and destination, highest score first.
pub struct BaselineMessage<'a> {
    pub route: &'a Route,
    pub destination: Option<&'a str>,
    pub headline: &'a str,
    pub by_severity: &'a BTreeMap<String, u64>,
    pub found: &'a [Found],
    pub delivery_id: &'a str,
}

/// Stored rows to deliver as one message: one row, or a route's digest for one
/// window and destination.
pub struct Outgoing<'a> {
    pub route: &'a Route,
    pub rows: &'a [&'a OutboxRow],
    pub payloads: Vec<Value>,
}

impl Outgoing<'_> {
    pub fn first(&self) -> Result<(&OutboxRow, &Value), SendError> {
        match (self.rows.first(), self.payloads.first()) {
            (Some(r), Some(p)) => Ok((r, p)),
            _ => Err(SendError::Permanent("nothing to send".into())),
        }
    }

    pub fn is_digest(&self) -> bool {
        self.rows.first().is_some_and(|r| r.digest_window.is_some())
    }

    /// The digest window's start, RFC 3339 (empty when not a digest).
    pub fn window(&self) -> String {
        self.rows
            .first()
            .and_then(|r| r.digest_window)
            .map(|w| w.and_utc().to_rfc3339())
            .unwrap_or_default()
    }

    /// Digest lines as `(score, line)`, as stored by [`Notifier::digest_entry`].
    pub fn digest_lines(&self) -> Vec<(i64, String)> {
        self.payloads
            .iter()
            .map(|p| {
                (
                    p["score"].as_i64().unwrap_or(0),
                    p["line"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Resolves one of the route's secrets; a missing one is retried (it may be
    /// provisioned later), never given up silently.
    pub fn secret(&self, s: Option<&crate::Secret>, field: &str) -> Result<String, SendError> {
        s.ok_or_else(|| SendError::Permanent(format!("route {}: no {field}", self.route.name)))?
            .resolve(&format!("route {}: {field}", self.route.name))
            .map_err(SendError::Retry)
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// The channel's name in the configuration and the outbox (`channel = "slack"`).
    fn name(&self) -> &'static str;

    /// What is missing or contradictory in this route for this channel, as the fix.
    fn validate(&self, route: &Route) -> Result<(), String>;

    /// Where this route's message about `item` goes when the channel addresses per
    /// owner (a Slack channel, e-mail recipients). Baselines and digests are grouped
    /// by it, so each owner gets their own.
    fn destination(&self, _route: &Route, _item: &ItemRow) -> Option<String> {
        None
    }

    /// The stored form of a finding event sent on its own.
    fn finding(&self, m: &FindingMessage) -> Value;

    /// The stored form of a finding event collected into a digest.
    fn digest_entry(&self, m: &FindingMessage) -> Value {
        json!({
            "to": self.destination(m.route, m.item),
            "score": m.finding.score,
            "line": render::digest_line(m.notice, m.finding, m.item, m.links),
        })
    }

    /// The digest group of a stored digest entry (its destination).
    fn digest_group(&self, payload: &Value) -> String {
        payload["to"].as_str().unwrap_or_default().to_owned()
    }

    /// The stored form of a changed item; `None` when this channel does not take
    /// changes (validation refuses `changed` for it).
    fn change(&self, m: &ChangeMessage) -> Option<Value>;

    /// The stored form of a baseline summary.
    fn baseline(&self, m: &BaselineMessage) -> Value;

    /// A realistic message for `guardrail notify test`.
    fn test(&self, route: &Route, delivery_id: &str) -> Value;

    /// Delivers stored rows as one message.
    async fn send(&self, http: &Http, out: &Outgoing<'_>) -> Result<(), SendError>;
}
