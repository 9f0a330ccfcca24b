//! `/metrics` in the Prometheus text format: figures from the database (findings,
//! outbox, rule errors, the latest sweep of each source) and this process's counters.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::{db, AppError, AppState};

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A per-sweep gauge: name, help and how to read it from the sweep.
type SweepGauge = (
    &'static str,
    &'static str,
    fn(&guardrail_storage::SweepRow) -> f64,
);

pub async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let snap = db(&state, |s| s.metrics_snapshot()).await?;
    let mut out = String::new();
    family(
        &mut out,
        "guardrail_findings",
        "gauge",
        "Findings by state and severity.",
    );
    for (st, sev, n) in &snap.findings_by_state_severity {
        let _ = writeln!(
            out,
            "guardrail_findings{{state=\"{}\",severity=\"{}\"}} {n}",
            label(st),
            label(sev)
        );
    }
    family(
        &mut out,
        "guardrail_outbox_pending",
        "gauge",
        "Notifications not yet delivered or given up.",
    );
    let _ = writeln!(out, "guardrail_outbox_pending {}", snap.outbox_pending);
    family(
        &mut out,
        "guardrail_outbox_gave_up",
        "gauge",
        "Notifications given up after retries.",
    );
    let _ = writeln!(out, "guardrail_outbox_gave_up {}", snap.outbox_gave_up);
    family(
        &mut out,
        "guardrail_rule_errors",
        "gauge",
        "Rule errors recorded.",
    );
    let _ = writeln!(out, "guardrail_rule_errors {}", snap.rule_errors);
    family(
        &mut out,
        "guardrail_rules",
        "gauge",
        "Rules by health as of the last audit pass that ran them (not_loaded, erroring and suspended rules judge nothing or not everything).",
    );
    for (status, n) in &snap.rules_by_status {
        let _ = writeln!(out, "guardrail_rules{{status=\"{status}\"}} {n}");
    }
    family(
        &mut out,
        "guardrail_items_unaudited",
        "gauge",
        "Active items whose latest revision has not been judged yet (the next audit pass judges them).",
    );
    let _ = writeln!(out, "guardrail_items_unaudited {}", snap.items_unaudited);
    family(
        &mut out,
        "guardrail_items_active",
        "gauge",
        "Items currently present.",
    );
    let _ = writeln!(out, "guardrail_items_active {}", snap.items_active);
    let sweeps: [SweepGauge; 5] = [
        (
            "guardrail_sweep_last_duration_seconds",
            "Duration of the latest sweep of each source.",
            |s| {
                s.finished_at.map_or(0.0, |f| {
                    (f - s.started_at).num_milliseconds() as f64 / 1000.0
                })
            },
        ),
        (
            "guardrail_sweep_last_items",
            "Items seen by the latest sweep of each source.",
            |s| s.items_seen as f64,
        ),
        (
            "guardrail_sweep_last_changes",
            "Revisions (created, modified, deleted) written by the latest sweep.",
            |s| (s.created + s.modified + s.deleted) as f64,
        ),
        (
            "guardrail_sweep_last_errors",
            "Errors of the latest sweep of each source.",
            |s| s.errors as f64,
        ),
        (
            "guardrail_sweep_last_start_timestamp_seconds",
            "Start of the latest sweep of each source.",
            |s| s.started_at.and_utc().timestamp() as f64,
        ),
    ];
    for (name, help, value) in sweeps {
        family(&mut out, name, "gauge", help);
        for s in &snap.latest_sweeps {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\",status=\"{}\"}} {}",
                label(&s.source),
                label(&s.status),
                value(s)
            );
        }
    }
    let m = &state.metrics;
    for (name, help, v) in [
        (
            "guardrail_sweeps_run_total",
            "Sweeps run by this process.",
            &m.sweeps_run,
        ),
        (
            "guardrail_sweeps_failed_total",
            "Sweeps that failed in this process.",
            &m.sweeps_failed,
        ),
        (
            "guardrail_audits_run_total",
            "Audits (after sweeps, or re-audits after rule or settings changes) run by this process.",
            &m.audits_run,
        ),
        (
            "guardrail_notifications_delivered_total",
            "Notifications delivered by this process.",
            &m.notifications_delivered,
        ),
        (
            "guardrail_notifications_failed_total",
            "Failed notification attempts in this process.",
            &m.notifications_failed,
        ),
        (
            "guardrail_http_requests_total",
            "HTTP requests served by this process.",
            &m.http_requests,
        ),
    ] {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
