//! Delivering: lease due outbox rows, group a route's digest rows by window and
//! destination, hand each group to the route's channel, and record the outcome with
//! capped exponential backoff. Nothing channel-specific lives here.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use guardrail_storage::{OutboxRow, StorageError, Store};
use serde::Serialize;
use serde_json::Value;

use crate::notifier::Outgoing;
use crate::send::{Http, SendError};
use crate::NotifySettings;

#[derive(Debug, Default, Clone, Serialize)]
pub struct DispatchSummary {
    pub delivered: u64,
    pub failed: u64,
    pub gave_up: u64,
    /// Messages sent (a digest counts once for all its rows).
    pub messages: u64,
}

fn backoff(settings: &NotifySettings, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let secs = settings
        .retry_initial_seconds
        .saturating_mul(2u64.saturating_pow(exp));
    Duration::seconds(i64::try_from(secs.min(settings.retry_max_seconds)).unwrap_or(i64::MAX))
}

/// One message's worth of leased rows: the route, the digest window (if any) and its
/// destination, or the row itself.
type GroupKey = (String, Option<i64>, String, i64);

async fn deliver(
    http: &Http,
    settings: &NotifySettings,
    route_name: &str,
    rows: &[&OutboxRow],
) -> Result<(), SendError> {
    let route = settings.route(route_name).ok_or_else(|| {
        SendError::Permanent(format!("route {route_name:?} is no longer configured"))
    })?;
    let payloads = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.payload))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SendError::Permanent(format!("stored payload is not JSON: {e}")))?;
    let out = Outgoing {
        route,
        rows,
        payloads,
    };
    route.notifier().send(http, &out).await
}

/// Leases due rows and tries to deliver each (digest rows of one route, window and
/// destination together as one message). Storage calls are blocking and run off the
/// async thread.
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
    let mut groups: BTreeMap<GroupKey, Vec<&OutboxRow>> = BTreeMap::new();
    for r in &leased {
        // Digest rows group by route, window and destination (each owner's channel
        // gets its own digest); every other row is its own message.
        let key = match (r.digest_window, settings.route(&r.route)) {
            (Some(w), Some(route)) => {
                let payload = serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null);
                let to = route.notifier().digest_group(&payload);
                (r.route.clone(), Some(w.and_utc().timestamp()), to, 0)
            }
            _ => (r.route.clone(), None, String::new(), r.id),
        };
        groups.entry(key).or_default().push(r);
    }
    let mut s = DispatchSummary::default();
    for ((route_name, _, _, _), rows) in groups {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let outcome = deliver(http, settings, &route_name, &rows).await;
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
