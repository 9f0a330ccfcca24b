//! The two passes: routing events into the outbox, and delivering due rows.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use guardrail_model::{diff, DiffEntry};
use guardrail_storage::{NewOutbox, OutboxRow, StorageError, Store};
use serde::Serialize;
use serde_json::{json, Value};
use slack_morphism::prelude::SlackMessageContent;

use crate::render::{self, Links};
use crate::routes::{route_event, Channel, Route};
use crate::send::{self, Http, SendError};
use crate::NotifySettings;

const CURSOR: &str = "notify";
const CHANGES_CURSOR: &str = "notify-changes";
const PAGE: i64 = 500;
const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Default, Clone, Serialize)]
pub struct RouteSummary {
    pub events: u64,
    pub queued: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct DispatchSummary {
    pub delivered: u64,
    pub failed: u64,
    pub gave_up: u64,
    /// Messages sent (a digest counts once for all its rows).
    pub messages: u64,
}

/// The change that a finding event is about, as a diff (empty when the item is new).
fn opening_diff(
    store: &Store,
    revision_id: Option<i64>,
    cache: &mut HashMap<i64, Vec<DiffEntry>>,
) -> Result<Vec<DiffEntry>, StorageError> {
    let Some(id) = revision_id else {
        return Ok(Vec::new());
    };
    if let Some(d) = cache.get(&id) {
        return Ok(d.clone());
    }
    let d = match store.revision(id)? {
        Some(rev) if rev.version > 1 => {
            match store.revision_by_version(rev.item_id, rev.version - 1)? {
                Some(prev) => diff(&prev.document_json()?, &rev.document_json()?),
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    cache.insert(id, d.clone());
    Ok(d)
}

/// How a routing pass turns events into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One message per event (or the route's own digest).
    Each,
    /// A baseline (the first sweep of a source, or `--baseline`): the events become one
    /// summary per route (and Slack channel) instead of a message per pre-existing
    /// finding.
    Baseline,
}

/// Turns finding events recorded since the last pass into outbox rows. Idempotent: a
/// crash before the cursor moves re-queues the same dedup keys, which are skipped.
pub fn route_events(
    store: &Store,
    settings: &NotifySettings,
    now: DateTime<Utc>,
) -> Result<RouteSummary, StorageError> {
    route_events_as(store, settings, now, Delivery::Each)
}

/// [`route_events`], choosing how the events are delivered.
pub fn route_events_as(
    store: &Store,
    settings: &NotifySettings,
    now: DateTime<Utc>,
    delivery: Delivery,
) -> Result<RouteSummary, StorageError> {
    if delivery == Delivery::Baseline {
        return route_baseline(store, settings, now);
    }
    let mut summary = RouteSummary::default();
    let mut cache = HashMap::new();
    loop {
        let (_, page) = store.events_after_cursor(CURSOR, PAGE)?;
        let Some(last) = page.last().map(|e| e.0.id) else {
            break;
        };
        let mut rows = Vec::new();
        for (ev, f, item) in &page {
            summary.events += 1;
            let Some(event) = route_event(&ev.event) else {
                continue;
            };
            let routes: Vec<&Route> = settings
                .routes
                .iter()
                .filter(|r| r.matches(event, f, item))
                .collect();
            if routes.is_empty() {
                continue;
            }
            let changes = if matches!(event, "opened" | "reopened") {
                opening_diff(store, ev.revision_id, &mut cache)?
            } else {
                Vec::new()
            };
            let links = Links::new(settings.ui_base_url.as_deref(), f);
            for route in routes {
                let dedup_key = format!("{}:{}", route.name, ev.id);
                let (digest_window, next) = match route.digest_seconds {
                    Some(m) => {
                        let width = Duration::seconds(i64::from(m));
                        let start = ev
                            .at
                            .and_utc()
                            .duration_trunc(width)
                            .unwrap_or(ev.at.and_utc());
                        (Some(start.naive_utc()), (start + width).naive_utc())
                    }
                    None => (None, now.naive_utc()),
                };
                let payload = match (route.channel, digest_window.is_some()) {
                    (Channel::Slack, false) => json!({
                        "channel": route.slack_channel_for(item),
                        "message": render::slack_message(event, f, item, &changes, &links),
                    }),
                    (Channel::Slack, true) => json!({
                        "channel": route.slack_channel_for(item),
                        "score": f.score,
                        "line": render::digest_line(event, f, item, &links),
                    }),
                    (Channel::Pagerduty, _) => {
                        render::pagerduty_event(event, f, item, &changes, &links)
                    }
                    (Channel::Webhook, _) => {
                        render::webhook_body(route, event, &dedup_key, f, item, &changes, &links)
                    }
                };
                rows.push(NewOutbox {
                    route: route.name.clone(),
                    channel: route.channel.as_str().into(),
                    dedup_key,
                    event: event.into(),
                    finding_id: Some(f.id),
                    payload: payload.to_string(),
                    created_at: now.naive_utc(),
                    next_attempt_at: next,
                    digest_window,
                });
            }
        }
        summary.queued += store.enqueue(CURSOR, last, &rows)? as u64;
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    if settings
        .routes
        .iter()
        .any(|r| r.events.iter().any(|e| e == "changed"))
    {
        route_changes(store, settings, now, &mut summary)?;
    }
    Ok(summary)
}

/// A baseline: every routed event since the cursor, summarised once per route and
/// Slack channel. The cursor moves past all of them in the same transaction.
fn route_baseline(
    store: &Store,
    settings: &NotifySettings,
    now: DateTime<Utc>,
) -> Result<RouteSummary, StorageError> {
    let mut summary = RouteSummary::default();
    // (route index, slack channel) → (score, severity, line, finding json)
    type Found = (i64, String, String, Value);
    let mut groups: BTreeMap<(usize, Option<String>), Vec<Found>> = BTreeMap::new();
    let mut last_id = None;
    loop {
        let (_, page) = store.events_after_cursor(CURSOR, PAGE)?;
        let Some(last) = page.last().map(|e| e.0.id) else {
            break;
        };
        for (ev, f, item) in &page {
            summary.events += 1;
            let Some(event) = route_event(&ev.event) else {
                continue;
            };
            if !matches!(event, "opened" | "reopened") {
                continue;
            }
            let links = Links::new(settings.ui_base_url.as_deref(), f);
            for (i, route) in settings.routes.iter().enumerate() {
                if !route.matches(event, f, item) {
                    continue;
                }
                let channel = match route.channel {
                    Channel::Slack => route.slack_channel_for(item),
                    _ => None,
                };
                groups.entry((i, channel)).or_default().push((
                    f.score,
                    f.severity.clone(),
                    render::digest_line(event, f, item, &links),
                    guardrail_storage::finding_json(f, item),
                ));
            }
        }
        // Rows are queued at the end; the cursor moves with them, so nothing is
        // summarised twice or skipped if this process dies in between.
        last_id = Some(last);
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    let Some(last) = last_id else {
        return Ok(summary);
    };
    let mut rows = Vec::new();
    for ((i, channel), mut found) in groups {
        let route = &settings.routes[i];
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
        for f in &found {
            *by_severity.entry(f.1.clone()).or_default() += 1;
        }
        let counts = by_severity
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let dedup_key = format!(
            "{}:baseline:{last}:{}",
            route.name,
            channel.as_deref().unwrap_or("")
        );
        let headline = format!(
            "guardrail baseline: {} existing findings recorded ({counts}); from now on each new one is sent as it happens",
            found.len()
        );
        let payload = match route.channel {
            Channel::Slack => {
                let lines: Vec<(i64, String)> = found.iter().map(|f| (f.0, f.2.clone())).collect();
                json!({
                    "channel": channel,
                    "message": render::slack_baseline(&route.name, &headline, &lines),
                })
            }
            Channel::Pagerduty => json!({
                "event_action": "trigger",
                "dedup_key": dedup_key,
                "client": "guardrail",
                "payload": {
                    "summary": render::truncate(&format!("[guardrail] {headline}"), 1024),
                    "source": "guardrail",
                    "severity": "info",
                    "class": "baseline",
                    "custom_details": {
                        "by_severity": by_severity,
                        "top": found.iter().take(20).map(|f| f.2.clone()).collect::<Vec<_>>(),
                    },
                },
            }),
            Channel::Webhook => json!({
                "delivery_id": dedup_key,
                "event": "baseline",
                "route": route.name,
                "baseline": {
                    "count": found.len(),
                    "by_severity": by_severity,
                    "findings": found.iter().take(200).map(|f| f.3.clone()).collect::<Vec<_>>(),
                    "truncated": found.len() > 200,
                },
            }),
        };
        rows.push(NewOutbox {
            route: route.name.clone(),
            channel: route.channel.as_str().into(),
            dedup_key,
            event: "baseline".into(),
            finding_id: None,
            payload: payload.to_string(),
            created_at: now.naive_utc(),
            next_attempt_at: now.naive_utc(),
            digest_window: None,
        });
    }
    summary.queued += store.enqueue(CURSOR, last, &rows)? as u64;
    Ok(summary)
}

/// The `changed` event: every new revision of an item a route watches.
fn route_changes(
    store: &Store,
    settings: &NotifySettings,
    now: DateTime<Utc>,
    summary: &mut RouteSummary,
) -> Result<(), StorageError> {
    loop {
        let (_, page) = store.revisions_after_cursor(CHANGES_CURSOR, PAGE)?;
        let Some(last) = page.last().map(|(r, _)| r.id) else {
            break;
        };
        let mut rows = Vec::new();
        for (rev, item) in &page {
            summary.events += 1;
            let routes: Vec<&Route> = settings
                .routes
                .iter()
                .filter(|r| r.matches_change(item))
                .collect();
            if routes.is_empty() {
                continue;
            }
            let changes = if rev.change == "modified" {
                match store.revision_by_version(item.id, rev.version - 1)? {
                    Some(prev) => diff(&prev.document_json()?, &rev.document_json()?),
                    None => Vec::new(),
                }
            } else {
                Vec::new()
            };
            let item_url = settings
                .ui_base_url
                .as_deref()
                .map(|b| format!("{}/items/{}", b.trim_end_matches('/'), item.id));
            for route in routes {
                let dedup_key = format!("{}:revision:{}", route.name, rev.id);
                let payload = match route.channel {
                    Channel::Slack => json!({
                        "channel": route.slack_channel_for(item),
                        "message": render::slack_change(&rev.change, rev.version, item, &changes, item_url.as_deref()),
                    }),
                    _ => json!({
                        "delivery_id": dedup_key,
                        "event": "changed",
                        "route": route.name,
                        "guardrail": {"item": item, "revision": rev, "what_changed": changes, "links": {"item": item_url}},
                    }),
                };
                rows.push(NewOutbox {
                    route: route.name.clone(),
                    channel: route.channel.as_str().into(),
                    dedup_key,
                    event: "changed".into(),
                    finding_id: None,
                    payload: payload.to_string(),
                    created_at: now.naive_utc(),
                    next_attempt_at: now.naive_utc(),
                    digest_window: None,
                });
            }
        }
        summary.queued += store.enqueue(CHANGES_CURSOR, last, &rows)? as u64;
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    Ok(())
}

fn backoff(settings: &NotifySettings, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let secs = settings
        .retry_initial_seconds
        .saturating_mul(2u64.saturating_pow(exp));
    Duration::seconds(i64::try_from(secs.min(settings.retry_max_seconds)).unwrap_or(i64::MAX))
}

async fn send_rows(http: &Http, route: &Route, rows: &[&OutboxRow]) -> Result<(), SendError> {
    let payload = |r: &OutboxRow| -> Result<Value, SendError> {
        serde_json::from_str(&r.payload)
            .map_err(|e| SendError::Permanent(format!("stored payload is not JSON: {e}")))
    };
    let first = rows
        .first()
        .ok_or_else(|| SendError::Permanent("nothing to send".into()))?;
    match route.channel {
        Channel::Slack => {
            let p = payload(first)?;
            let content: SlackMessageContent = if first.digest_window.is_some() {
                let lines: Vec<(i64, String)> = rows
                    .iter()
                    .filter_map(|r| payload(r).ok())
                    .map(|p| {
                        (
                            p["score"].as_i64().unwrap_or(0),
                            p["line"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                let window = first
                    .digest_window
                    .map(|w| w.and_utc().to_rfc3339())
                    .unwrap_or_default();
                render::slack_digest(&route.name, &lines, &window)
            } else {
                serde_json::from_value(p["message"].clone()).map_err(|e| {
                    SendError::Permanent(format!("stored Slack message is invalid: {e}"))
                })?
            };
            match (&route.slack_token, &route.slack_webhook_url) {
                (Some(token), _) => {
                    let token = token
                        .resolve(&format!("route {}: slack_token", route.name))
                        .map_err(SendError::Retry)?;
                    let channel = p["channel"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| route.slack_channel.clone())
                        .ok_or_else(|| {
                            SendError::Permanent(format!(
                                "route {}: no Slack channel for this resource",
                                route.name
                            ))
                        })?;
                    send::slack_post(
                        http,
                        route.slack_api_url.as_deref(),
                        &token,
                        &channel,
                        content,
                    )
                    .await
                }
                (None, Some(hook)) => {
                    let url = hook
                        .resolve(&format!("route {}: slack_webhook_url", route.name))
                        .map_err(SendError::Retry)?;
                    send::slack_webhook(http, &url, content).await
                }
                (None, None) => Err(SendError::Permanent(format!(
                    "route {}: no Slack token or webhook",
                    route.name
                ))),
            }
        }
        Channel::Pagerduty => {
            let key = route
                .routing_key
                .as_ref()
                .ok_or_else(|| SendError::Permanent("no routing key".into()))?
                .resolve(&format!("route {}: routing_key", route.name))
                .map_err(SendError::Retry)?;
            send::pagerduty(
                http,
                route.events_url.as_deref().unwrap_or(DEFAULT_EVENTS_URL),
                &key,
                &payload(first)?,
            )
            .await
        }
        Channel::Webhook => {
            let secret = route
                .secret
                .as_ref()
                .ok_or_else(|| SendError::Permanent("no secret".into()))?
                .resolve(&format!("route {}: secret", route.name))
                .map_err(SendError::Retry)?;
            let url = route
                .url
                .as_deref()
                .ok_or_else(|| SendError::Permanent("no url".into()))?;
            let body = if first.digest_window.is_some() {
                let events: Vec<Value> = rows.iter().filter_map(|r| payload(r).ok()).collect();
                json!({"delivery_id": format!("{}:digest:{}", route.name, first.digest_window.map(|w| w.and_utc().timestamp()).unwrap_or(0)),
                       "digest": {"route": route.name, "window_start": first.digest_window.map(|w| w.and_utc().to_rfc3339()), "count": events.len(), "events": events}})
            } else {
                payload(first)?
            };
            let delivery = body["delivery_id"]
                .as_str()
                .unwrap_or(&first.dedup_key)
                .to_owned();
            send::webhook(http, url, &secret, &delivery, &body).await
        }
    }
}

/// Leases due rows and tries to deliver each (digest rows of one route and window
/// together as one message). Storage calls are blocking and run off the async thread.
pub async fn dispatch_once(
    store: &Store,
    settings: &NotifySettings,
    http: &Http,
) -> Result<DispatchSummary, StorageError> {
    let now = Utc::now();
    let lease = Duration::seconds(i64::try_from(settings.lease_seconds).unwrap_or(120));
    let leased = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.lease_due(now, lease, 200))
            .await
            .map_err(|e| StorageError::Corrupt(format!("dispatcher task failed: {e}")))??
    };
    let mut groups: BTreeMap<(String, Option<i64>, i64), Vec<&OutboxRow>> = BTreeMap::new();
    for r in &leased {
        // Digest rows group by route and window; every other row is its own message.
        let key = match r.digest_window {
            Some(w) => (r.route.clone(), Some(w.and_utc().timestamp()), 0),
            None => (r.route.clone(), None, r.id),
        };
        groups.entry(key).or_default().push(r);
    }
    let mut s = DispatchSummary::default();
    for ((route_name, _, _), rows) in groups {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let outcome = match settings.route(&route_name) {
            Some(route) => send_rows(http, route, &rows).await,
            None => Err(SendError::Permanent(format!(
                "route {route_name:?} is no longer configured"
            ))),
        };
        let now = Utc::now();
        let store = store.clone();
        match outcome {
            Ok(()) => {
                s.messages += 1;
                s.delivered += ids.len() as u64;
                tokio::task::spawn_blocking(move || store.mark_delivered(&ids, now))
                    .await
                    .map_err(|e| StorageError::Corrupt(e.to_string()))??;
            }
            Err(e) => {
                let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0);
                let oldest = rows
                    .iter()
                    .map(|r| r.trying_since())
                    .min()
                    .unwrap_or(now.naive_utc());
                let expired = now.naive_utc() - oldest
                    >= Duration::seconds(
                        i64::try_from(settings.give_up_after_seconds).unwrap_or(i64::MAX),
                    );
                let give_up = e.is_permanent() || expired;
                let message = if expired && !e.is_permanent() {
                    format!(
                        "{e}; gave up after {}s undelivered",
                        settings.give_up_after_seconds
                    )
                } else {
                    e.to_string()
                };
                tracing::warn!(route = %route_name, rows = ids.len(), error = %message, "notification not delivered");
                if give_up {
                    s.gave_up += ids.len() as u64
                } else {
                    s.failed += ids.len() as u64
                }
                // The receiver's Retry-After wins over our backoff when it is longer.
                let mut wait = backoff(settings, attempts);
                if let Some(after) = e.retry_after().and_then(|d| Duration::from_std(d).ok()) {
                    wait = wait.max(after);
                }
                let next = now + wait;
                tokio::task::spawn_blocking(move || {
                    store.mark_failed(&ids, &message, next, give_up, now)
                })
                .await
                .map_err(|e| StorageError::Corrupt(e.to_string()))??;
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let s = NotifySettings {
            retry_initial_seconds: 5,
            retry_max_seconds: 60,
            ..NotifySettings::default()
        };
        let secs: Vec<i64> = (0..6).map(|a| backoff(&s, a).num_seconds()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(&s, 1_000).num_seconds(), 60);
    }
}
