//! `/metrics` in the OpenMetrics text format (which Prometheus scrapes), written by
//! prometheus-client: figures from the database (findings, outbox, rule errors, the
//! latest sweep of each source) and this process's counters. A registry is built per
//! scrape from one database snapshot, so every figure in a scrape is from one moment.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{db, AppError, AppState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateSeverity {
    state: String,
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleStatus {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SweepSource {
    source: String,
    status: String,
}

/// A per-sweep gauge: name, help and how to read it from the sweep.
type SweepGauge = (
    &'static str,
    &'static str,
    fn(&guardrail_storage::SweepRow) -> f64,
);

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

pub async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let snap = db(&state, |s| s.metrics_snapshot()).await?;
    let mut registry = Registry::default();

    let findings = Family::<StateSeverity, Gauge>::default();
    for (state, severity, n) in &snap.findings_by_state_severity {
        findings
            .get_or_create(&StateSeverity {
                state: state.clone(),
                severity: severity.clone(),
            })
            .set(*n);
    }
    registry.register(
        "guardrail_findings",
        "Findings by state and severity",
        findings,
    );
    gauge(
        &mut registry,
        "guardrail_outbox_pending",
        "Notifications not yet delivered or given up",
        snap.outbox_pending,
    );
    gauge(
        &mut registry,
        "guardrail_outbox_gave_up",
        "Notifications given up after retries",
        snap.outbox_gave_up,
    );
    gauge(
        &mut registry,
        "guardrail_rule_errors",
        "Rule errors recorded",
        snap.rule_errors,
    );
    let rules = Family::<RuleStatus, Gauge>::default();
    for (status, n) in &snap.rules_by_status {
        rules
            .get_or_create(&RuleStatus {
                status: status.clone(),
            })
            .set(*n);
    }
    registry.register(
        "guardrail_rules",
        "Rules by health as of the last audit pass that ran them (not_loaded, erroring and suspended rules judge nothing or not everything)",
        rules,
    );
    gauge(
        &mut registry,
        "guardrail_items_unaudited",
        "Active items whose latest revision has not been judged yet (the next audit pass judges them)",
        snap.items_unaudited,
    );
    gauge(
        &mut registry,
        "guardrail_items_active",
        "Items currently present",
        snap.items_active,
    );
    let sweeps: [SweepGauge; 5] = [
        (
            "guardrail_sweep_last_duration_seconds",
            "Duration of the latest sweep of each source",
            |s| {
                s.finished_at.map_or(0.0, |f| {
                    (f - s.started_at).num_milliseconds() as f64 / 1000.0
                })
            },
        ),
        (
            "guardrail_sweep_last_items",
            "Items seen by the latest sweep of each source",
            |s| s.items_seen as f64,
        ),
        (
            "guardrail_sweep_last_changes",
            "Revisions (created, modified, deleted) written by the latest sweep",
            |s| (s.created + s.modified + s.deleted) as f64,
        ),
        (
            "guardrail_sweep_last_errors",
            "Errors of the latest sweep of each source",
            |s| s.errors as f64,
        ),
        (
            "guardrail_sweep_last_start_timestamp_seconds",
            "Start of the latest sweep of each source",
            |s| s.started_at.and_utc().timestamp() as f64,
        ),
    ];
    for (name, help, value) in sweeps {
        let family = Family::<SweepSource, Gauge<f64, AtomicU64>>::default();
        for s in &snap.latest_sweeps {
            family
                .get_or_create(&SweepSource {
                    source: s.source.clone(),
                    status: s.status.clone(),
                })
                .set(value(s));
        }
        registry.register(name, help, family);
    }
    let m = &state.metrics;
    // Counter names get their `_total` from prometheus-client.
    for (name, help, v) in [
        ("guardrail_sweeps_run", "Sweeps run by this process", &m.sweeps_run),
        ("guardrail_sweeps_failed", "Sweeps that failed in this process", &m.sweeps_failed),
        (
            "guardrail_audits_run",
            "Audits (after sweeps, or re-audits after rule or settings changes) run by this process",
            &m.audits_run,
        ),
        (
            "guardrail_notifications_delivered",
            "Notifications delivered by this process",
            &m.notifications_delivered,
        ),
        (
            "guardrail_notifications_failed",
            "Failed notification attempts in this process",
            &m.notifications_failed,
        ),
        ("guardrail_http_requests", "HTTP requests served by this process", &m.http_requests),
        (
            "guardrail_event_messages",
            "Event messages received from event-source queues by this process",
            &m.events.messages,
        ),
        (
            "guardrail_event_refreshes",
            "Items re-read because an event named them (one per item per burst)",
            &m.events.refreshed,
        ),
        (
            "guardrail_event_config_items",
            "AWS Config item-change events stored as delivered",
            &m.events.recorded,
        ),
        (
            "guardrail_event_deletions",
            "Items recorded deleted after an event and AWS's not-found for that one id",
            &m.events.deleted,
        ),
        (
            "guardrail_event_retries",
            "Event messages left on the queue because the refresh failed (they come again)",
            &m.events.retried,
        ),
    ] {
        let c: Counter = Counter::default();
        c.inc_by(v.load(Ordering::Relaxed));
        registry.register(name, help, c);
    }
    let ignored = Family::<Reason, Counter>::default();
    for (reason, n) in m.events.ignored() {
        ignored.get_or_create(&Reason { reason }).inc_by(n);
    }
    registry.register(
        "guardrail_events_ignored",
        "Events not acted on, by reason (malformed, unknown_event, unknown_account, not_refreshable); the log says why for each",
        ignored,
    );
    let mut out = String::new();
    encode(&mut out, &registry)
        .map_err(|e| AppError::Internal(format!("cannot write the metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
