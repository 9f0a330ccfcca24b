//! The scheduler behind `watch` and `serve`: sweeps each configured source on its own
//! interval (staggered, one at a time, so two sweeps of one source never overlap),
//! picks up changed rules and a changed configuration file without a restart, and
//! routes and delivers notifications between sweeps, never inside one.
//!
//! A sweep in progress always runs to its end (or rolls back inside the storage
//! layer); a stop request is honoured between steps. New kinds of source (AWS
//! accounts) plug in at [`Scheduler::sweep_source`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use guardrail_auditors::LoadError;
use guardrail_server::Metrics;
use guardrail_storage::Store;
use guardrail_watchers::Quiet;

use crate::audit::Auditor;
use crate::config::{Config, SourceConfig};
use crate::pipeline::{Delivery, Pipeline};

/// Where the scheduler's one-line reports go (stdout for `watch`, the log for `serve`).
pub type Report = Box<dyn Fn(&str) + Send>;

pub struct Scheduler {
    store: Store,
    rules_dir: PathBuf,
    /// Re-read when its modification time changes; a broken edit keeps the last good one.
    config_path: Option<PathBuf>,
    config_stamp: Option<SystemTime>,
    config: Config,
    /// `watch --source` replaces the configured sources.
    fixed_sources: Option<Vec<SourceConfig>>,
    auditor: Auditor,
    reported: Vec<LoadError>,
    due: BTreeMap<String, Instant>,
    /// Each source's definition when it was scheduled: an edited source is due at once.
    defined: BTreeMap<String, SourceConfig>,
    http: guardrail_notify::Http,
    rt: tokio::runtime::Runtime,
    metrics: Arc<Metrics>,
    report: Report,
    /// When the last audit pass over due items ran (`None`: not since start, so the
    /// first tick catches up on whatever an earlier process left unjudged).
    audited: Option<Instant>,
}

/// How often `serve`/`watch` look for due items when no sweep ran (the daily
/// re-check of time-dependent rules rides on this).
const DUE_CHECK: Duration = Duration::from_secs(600);

fn stamp(path: &Option<PathBuf>) -> Option<SystemTime> {
    path.as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
}

impl Scheduler {
    pub fn new(
        store: Store,
        rules_dir: PathBuf,
        config_path: Option<PathBuf>,
        config: Config,
        fixed_sources: Option<Vec<SourceConfig>>,
        metrics: Arc<Metrics>,
        report: Report,
    ) -> anyhow::Result<Scheduler> {
        let auditor = Auditor::new(&rules_dir, &config)?;
        let http = guardrail_notify::Http::new(Duration::from_secs(config.notify.timeout_seconds));
        // Notification delivery is async; the scheduler thread drives it on its own
        // small runtime so it never borrows the server's workers.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut s = Scheduler {
            store,
            rules_dir,
            config_stamp: stamp(&config_path),
            config_path,
            config,
            fixed_sources,
            reported: auditor.rules.load_errors.clone(),
            auditor,
            due: BTreeMap::new(),
            defined: BTreeMap::new(),
            http,
            rt,
            metrics,
            report,
            audited: None,
        };
        s.schedule(true);
        Ok(s)
    }

    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// The sources swept on intervals (event sources run on their own threads).
    pub fn sources(&self) -> Vec<SourceConfig> {
        self.fixed_sources
            .as_deref()
            .unwrap_or(&self.config.sources)
            .iter()
            .filter(|s| !s.is_events())
            .cloned()
            .collect()
    }

    /// Gives new sources a first due time and forgets removed ones. At start-up the
    /// sources are spread over a minute so many of them do not all start together; a
    /// source added or edited later (path, account, interval, ...) is due at once.
    fn schedule(&mut self, startup: bool) {
        let sources: Vec<SourceConfig> = self.sources();
        self.due.retain(|k, _| sources.iter().any(|s| &s.name == k));
        self.defined
            .retain(|k, _| sources.iter().any(|s| &s.name == k));
        let n = sources.len().max(1) as u32;
        let now = Instant::now();
        for (i, source) in sources.into_iter().enumerate() {
            let offset = if startup {
                Duration::from_secs(60) * i as u32 / n
            } else {
                Duration::ZERO
            };
            let edited = self
                .defined
                .get(&source.name)
                .is_some_and(|before| *before != source);
            if edited {
                self.due.insert(source.name.clone(), now);
            } else {
                self.due.entry(source.name.clone()).or_insert(now + offset);
            }
            self.defined.insert(source.name.clone(), source);
        }
        self.publish_schedule();
    }

    /// What the server's sweeps page shows: each source and when it is next due.
    fn publish_schedule(&self) {
        let now = Instant::now();
        let wall = Utc::now();
        let rows = self
            .sources()
            .iter()
            .map(|s| guardrail_server::ScheduledSource {
                name: s.name.clone(),
                what: s.describe(),
                interval_seconds: s.interval_seconds,
                next_due: self.due.get(&s.name).map(|t| {
                    wall + chrono::Duration::from_std(t.saturating_duration_since(now))
                        .unwrap_or_default()
                }),
            })
            .collect();
        self.metrics.set_schedule(rows);
    }

    fn say(&self, line: &str) {
        (self.report)(&format!("{} {line}", Utc::now().format("%H:%M:%S")));
    }

    /// Re-reads the configuration file if it changed. Sources and notification routes
    /// apply at once; audit settings rebuild the auditor and re-audit.
    fn reload_config(&mut self) -> anyhow::Result<()> {
        let now_stamp = stamp(&self.config_path);
        if now_stamp == self.config_stamp {
            return Ok(());
        }
        self.config_stamp = now_stamp;
        let Some(path) = self.config_path.clone() else {
            return Ok(());
        };
        let fresh = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                self.say(&format!(
                    "config not reloaded (last good version kept): {e:#}"
                ));
                return Ok(());
            }
        };
        let audit_changed = format!("{:?}{:?}", fresh.audit, fresh.accounts)
            != format!("{:?}{:?}", self.config.audit, self.config.accounts);
        let events = |c: &Config| -> Vec<SourceConfig> {
            c.sources
                .iter()
                .filter(|s| s.is_events())
                .cloned()
                .collect()
        };
        if events(&fresh) != events(&self.config) {
            // Their threads were started with the first configuration.
            self.say("event sources changed in the config file: restart serve to apply (the running ones keep reading their queues)");
        }
        self.config = fresh;
        self.schedule(false);
        self.say(&format!(
            "config reloaded from {}: {} source(s)",
            path.display(),
            self.sources().len()
        ));
        if audit_changed {
            self.auditor = Auditor::new(&self.rules_dir, &self.config)?;
            // The settings are part of what judged each item: every item is due.
            let s = Pipeline::new(&self.store, &self.config)
                .audit_due(&self.auditor, Delivery::Each)?;
            self.audited = Some(Instant::now());
            self.metrics.record_audit();
            self.say(&format!(
                "audit settings changed; re-audit: {} opened, {} reopened, {} fixed",
                s.opened, s.reopened, s.fixed
            ));
        }
        Ok(())
    }

    /// Sweeps one source and audits what is due (what it changed, and anything an
    /// earlier process stored without judging).
    fn sweep_source(&mut self, source: &SourceConfig) {
        let span = tracing::info_span!("sweep", source = %source.name);
        let _enter = span.enter();
        let started = Instant::now();
        let outcome = Pipeline::new(&self.store, &self.config).sweep_source(
            &self.config,
            source,
            &self.auditor,
            &Quiet,
        );
        self.audited = Some(Instant::now());
        match outcome {
            Ok((s, audit)) => {
                self.metrics.record_sweep(true);
                self.metrics.record_audit();
                tracing::info!(
                    sweep = s.sweep_id,
                    items = s.items_seen,
                    created = s.created,
                    modified = s.modified,
                    deleted = s.deleted,
                    errors = s.errors,
                    seconds = started.elapsed().as_secs_f64(),
                    "sweep finished"
                );
                self.say(&format!(
                    "sweep {}: {} seen, {} created, {} modified, {} deleted, {} errors; {} findings opened, {} fixed",
                    s.sweep_id, s.items_seen, s.created, s.modified, s.deleted, s.errors, audit.opened, audit.fixed
                ));
                self.say_rule_problems(&audit);
            }
            // A failed sweep is reported and retried next interval; the loop lives on.
            Err(e) => {
                self.metrics.record_sweep(false);
                tracing::warn!(error = %format!("{e:#}"), "sweep failed");
                self.say(&format!("sweep of {} failed: {e:#}", source.name));
            }
        }
    }

    fn say_rule_problems(&self, s: &guardrail_storage::AuditSummary) {
        for p in &s.rule_problems {
            self.say(&format!("warning: {p}"));
        }
    }

    /// One pass: config, due sweeps, rules, notifications. Returns early between
    /// sweeps when `stop` is set.
    pub fn tick(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        self.reload_config()?;
        let now = Instant::now();
        let due: Vec<SourceConfig> = self
            .sources()
            .iter()
            .filter(|s| self.due.get(&s.name).is_some_and(|t| *t <= now))
            .cloned()
            .collect();
        for source in due {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.sweep_source(&source);
            self.due.insert(
                source.name.clone(),
                Instant::now() + Duration::from_secs_f64(source.interval_seconds),
            );
            self.publish_schedule();
        }
        let changed = self.auditor.reload()?;
        // Report a broken rule once, not on every poll while it stays broken.
        for e in self
            .auditor
            .rules
            .load_errors
            .iter()
            .filter(|e| !self.reported.contains(e))
        {
            self.say(&format!("rule error (last good version kept): {e}"));
        }
        self.auditor.record_load_errors(&self.store)?;
        self.reported = self.auditor.rules.load_errors.clone();
        if !changed.is_empty() {
            // The rule set is part of what judged each item: every item is due.
            let s = Pipeline::new(&self.store, &self.config)
                .audit_due(&self.auditor, Delivery::Each)?;
            self.audited = Some(Instant::now());
            self.metrics.record_audit();
            self.say(&format!(
                "rules changed ({}); re-audit: {} opened, {} reopened, {} fixed, {} rule errors",
                changed.join(", "),
                s.opened,
                s.reopened,
                s.fixed,
                s.rule_errors
            ));
            self.say_rule_problems(&s);
        } else if self.audited.is_none_or(|t| t.elapsed() >= DUE_CHECK) {
            let first = self.audited.is_none();
            let s = Pipeline::new(&self.store, &self.config)
                .audit_due(&self.auditor, Delivery::Each)?;
            self.audited = Some(Instant::now());
            if s.items > 0 {
                self.metrics.record_audit();
                self.say(&format!(
                    "{}: {} items judged; {} opened, {} reopened, {} fixed, {} rule errors",
                    if first {
                        "audit of items left unjudged or due for their re-check"
                    } else {
                        "re-check of items due"
                    },
                    s.items,
                    s.opened,
                    s.reopened,
                    s.fixed,
                    s.rule_errors
                ));
                self.say_rule_problems(&s);
            }
        }
        let notify = &self.config.notify;
        if !notify.routes.is_empty() {
            let span = tracing::info_span!("dispatch");
            let _enter = span.enter();
            guardrail_notify::route_events(&self.store, notify, Utc::now())?;
            let d = self.rt.block_on(guardrail_notify::dispatch_once(
                &self.store,
                notify,
                &self.http,
            ))?;
            self.metrics.record_dispatch(d.delivered, d.failed);
            if d.delivered + d.failed + d.gave_up > 0 {
                self.say(&format!(
                    "notifications: {} delivered in {} messages, {} failed, {} gave up",
                    d.delivered, d.messages, d.failed, d.gave_up
                ));
            }
        }
        Ok(())
    }

    /// Ticks every `poll` until `stop` is set. `keep_going` decides whether an error
    /// ends the loop (`watch`) or is reported and retried next poll (`serve`).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        poll: Duration,
        keep_going: bool,
    ) -> anyhow::Result<()> {
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.tick(stop) {
                if !keep_going {
                    return Err(e);
                }
                tracing::error!(error = %format!("{e:#}"), "scheduler pass failed; retrying next poll");
                self.say(&format!("scheduler pass failed (retrying): {e:#}"));
            }
            // Sleep in slices so a stop request is seen within a fraction of a second.
            let until = Instant::now() + poll;
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100).min(poll));
            }
        }
        Ok(())
    }
}
