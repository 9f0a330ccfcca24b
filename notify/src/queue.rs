//! Routing: finding events and revisions recorded since the last pass become outbox
//! rows, each already rendered by its route's channel. Idempotent: a crash before a
//! cursor moves re-queues the same dedup keys, which the outbox skips.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use guardrail_model::{Actor, DiffEntry};
use guardrail_storage::{NewOutbox, StorageError, Store};
use serde::Serialize;

use crate::notifier::{BaselineMessage, ChangeMessage, FindingMessage, Found};
use crate::render::Links;
use crate::route::{Notice, Route};
use crate::NotifySettings;

const CURSOR: &str = "notify";
const CHANGES_CURSOR: &str = "notify-changes";
const PAGE: i64 = 500;

#[derive(Debug, Default, Clone, Serialize)]
pub struct RouteSummary {
    pub events: u64,
    pub queued: u64,
}

/// How a routing pass turns events into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One message per event (or the route's own digest).
    Each,
    /// A baseline (the first sweep of a source, or `--baseline`): the events become one
    /// summary per route (and destination) instead of a message per pre-existing
    /// finding.
    Baseline,
}

/// Turns finding events recorded since the last pass into outbox rows.
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
    // Per revision: what changed, and who changed it.
    let mut cache: HashMap<i64, (Vec<DiffEntry>, Option<Actor>)> = HashMap::new();
    loop {
        let (_, page) = store.events_after_cursor(CURSOR, PAGE)?;
        let Some(last) = page.last().map(|e| e.0.id) else {
            break;
        };
        let mut rows = Vec::new();
        for (ev, f, item) in &page {
            summary.events += 1;
            let Some(notice) = Notice::of(ev.event) else {
                continue;
            };
            let routes: Vec<&Route> = settings
                .routes
                .iter()
                .filter(|r| r.matches(notice, f, item))
                .collect();
            if routes.is_empty() {
                continue;
            }
            let (changes, actor) = match ev.revision_id {
                Some(id) if notice.is_opening() => match cache.get(&id) {
                    Some(d) => d.clone(),
                    None => {
                        let d = store
                            .revision_diff(id)?
                            .map(|(rev, d)| (d, rev.actor()))
                            .unwrap_or_default();
                        cache.insert(id, d.clone());
                        d
                    }
                },
                _ => (Vec::new(), None),
            };
            let links = Links::new(settings.ui_base_url.as_deref(), f);
            for route in routes {
                let dedup_key = format!("{}:{}", route.name, ev.id);
                let message = FindingMessage {
                    route,
                    notice,
                    finding: f,
                    item,
                    changes: &changes,
                    actor: actor.as_ref(),
                    links: &links,
                    delivery_id: &dedup_key,
                };
                let notifier = route.notifier();
                let (digest_window, next, payload) = match route.digest_seconds {
                    Some(m) => {
                        let width = Duration::seconds(i64::from(m));
                        let at = ev.at.and_utc();
                        let start = at.duration_trunc(width).unwrap_or(at);
                        let entry = notifier.digest_entry(&message);
                        (Some(start.naive_utc()), (start + width).naive_utc(), entry)
                    }
                    None => (None, now.naive_utc(), notifier.finding(&message)),
                };
                rows.push(NewOutbox {
                    route: route.name.clone(),
                    channel: notifier.name().into(),
                    dedup_key,
                    event: notice.as_str().into(),
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
    if settings.routes.iter().any(|r| r.wants(Notice::Changed)) {
        route_changes(store, settings, now, &mut summary)?;
    }
    Ok(summary)
}

/// A baseline: every routed opening since the cursor, summarised once per route and
/// destination. The cursor moves past all of them in the same transaction.
fn route_baseline(
    store: &Store,
    settings: &NotifySettings,
    now: DateTime<Utc>,
) -> Result<RouteSummary, StorageError> {
    let mut summary = RouteSummary::default();
    let mut groups: BTreeMap<(usize, Option<String>), Vec<Found>> = BTreeMap::new();
    let mut last_id = None;
    loop {
        let (_, page) = store.events_after_cursor(CURSOR, PAGE)?;
        let Some(last) = page.last().map(|e| e.0.id) else {
            break;
        };
        for (ev, f, item) in &page {
            summary.events += 1;
            let Some(notice) = Notice::of(ev.event).filter(|n| n.is_opening()) else {
                continue;
            };
            let links = Links::new(settings.ui_base_url.as_deref(), f);
            for (i, route) in settings.routes.iter().enumerate() {
                if !route.matches(notice, f, item) {
                    continue;
                }
                let notifier = route.notifier();
                let message = FindingMessage {
                    route,
                    notice,
                    finding: f,
                    item,
                    changes: &[],
                    actor: None,
                    links: &links,
                    delivery_id: "",
                };
                let line = notifier.digest_entry(&message)["line"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                groups
                    .entry((i, notifier.destination(route, item)))
                    .or_default()
                    .push(Found {
                        score: f.score,
                        severity: f.severity.clone(),
                        line,
                        finding: guardrail_storage::finding_json(f, item),
                    });
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
    for ((i, destination), mut found) in groups {
        let route = &settings.routes[i];
        found.sort_by_key(|f| std::cmp::Reverse(f.score));
        let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
        for f in &found {
            *by_severity.entry(f.severity.clone()).or_default() += 1;
        }
        let counts = by_severity
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let dedup_key = format!(
            "{}:baseline:{last}:{}",
            route.name,
            destination.as_deref().unwrap_or("")
        );
        let headline = format!(
            "guardrail baseline: {} existing findings recorded ({counts}); from now on each new one is sent as it happens",
            found.len()
        );
        let notifier = route.notifier();
        let payload = notifier.baseline(&BaselineMessage {
            route,
            destination: destination.as_deref(),
            headline: &headline,
            by_severity: &by_severity,
            found: &found,
            delivery_id: &dedup_key,
        });
        rows.push(NewOutbox {
            route: route.name.clone(),
            channel: notifier.name().into(),
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

/// The `changed` notice: every new revision of an item a route watches.
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
            let changes = store.diff_with_previous(rev)?;
            let item_url = settings
                .ui_base_url
                .as_deref()
                .map(|b| format!("{}/items/{}", b.trim_end_matches('/'), item.id));
            for route in routes {
                let dedup_key = format!("{}:revision:{}", route.name, rev.id);
                let notifier = route.notifier();
                let Some(payload) = notifier.change(&ChangeMessage {
                    route,
                    revision: rev,
                    item,
                    changes: &changes,
                    item_url: item_url.as_deref(),
                    delivery_id: &dedup_key,
                }) else {
                    continue;
                };
                rows.push(NewOutbox {
                    route: route.name.clone(),
                    channel: notifier.name().into(),
                    dedup_key,
                    event: Notice::Changed.as_str().into(),
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
