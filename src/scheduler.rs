//! The scheduler behind `watch`, `serve` and `worker`: runs due sweep jobs (one per
//! source, or per account of a source over several; leased in the database so any
//! number of workers share them and a job never runs twice at once), picks up changed
//! rules and a changed configuration file without a restart, and routes and delivers
//! notifications between sweeps, never inside one.
//!
//! A sweep in progress always runs to its end (or rolls back inside the storage
//! layer); a stop request is honoured between jobs. What a job is and what running it
//! means lives in [`crate::jobs`].

use std::collections::BTreeSet;
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
pub type Report = Box<dyn Fn(&str) + Send + Sync>;

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
    /// The sources whose jobs this worker keeps in the database (so a source removed
    /// from the file has its jobs removed).
    scheduled: BTreeSet<String>,
    /// This process, to the leases it holds.
    worker: String,
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
            scheduled: BTreeSet::new(),
            worker: Store::worker_id(),
            http,
            rt,
            metrics,
            report,
            audited: None,
        };
        s.schedule(true)?;
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

    /// Makes the database's jobs of this worker's sources what the configuration says:
    /// new ones added (spread over a minute at start-up, at once later), edited ones due
    /// at once, removed ones dropped. Every worker on a database reads the same file; one
    /// that finds another definition stored says so.
    fn schedule(&mut self, startup: bool) -> anyhow::Result<()> {
        let sources = self.sources();
        let mut names: BTreeSet<String> = sources.iter().map(|s| s.name.clone()).collect();
        let all: Vec<String> = names.union(&self.scheduled).cloned().collect();
        let stored = self.store.jobs()?;
        let specs = crate::jobs::specs(&self.config, &sources, &stored, startup, Utc::now());
        let sync = self.store.sync_jobs(&all, &specs, Utc::now())?;
        if startup && !sync.redefined.is_empty() {
            self.say(&format!(
                "jobs {} were stored with another definition (edited while stopped, or another worker reads another config file): due now; every worker on one database must read the same file",
                sync.redefined.join(", ")
            ));
        }
        if !sync.removed.is_empty() {
            self.say(&format!("jobs removed: {}", sync.removed.join(", ")));
        }
        std::mem::swap(&mut self.scheduled, &mut names);
        self.publish_schedule();
        Ok(())
    }

    /// The jobs of this worker's sources, as stored.
    fn my_jobs(&self) -> anyhow::Result<Vec<guardrail_storage::JobRow>> {
        Ok(self
            .store
            .jobs()?
            .into_iter()
            .filter(|j| self.scheduled.contains(&j.source))
            .collect())
    }

    /// What the server's sweeps page shows: each job and when it is next due.
    fn publish_schedule(&self) {
        let jobs = match self.my_jobs() {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the job schedule");
                return;
            }
        };
        let sources = self.sources();
        let rows = jobs
            .iter()
            .map(|j| {
                let what = sources
                    .iter()
                    .find(|s| s.name == j.source)
                    .map(|s| s.describe())
                    .unwrap_or_default();
                guardrail_server::ScheduledSource {
                    name: j.job.clone(),
                    what: if j.account.is_empty() {
                        what
                    } else {
                        format!("{what}: account {}", j.account)
                    },
                    interval_seconds: j.interval_ms as f64 / 1000.0,
                    next_due: Some(j.due_at.and_utc()),
                    leased_by: j.leased_by.clone(),
                    runs: j.runs,
                    takeovers: j.takeovers,
                    last_status: j.last_status.clone(),
                }
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
        self.schedule(false)?;
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

    /// Runs one claimed job under a heartbeat and gives it back with its next due
    /// time. A failed job is reported and retried next interval; the loop lives on.
    fn run_job(&self, job: &guardrail_storage::ClaimedJob) -> anyhow::Result<()> {
        let lease = self.config.workers.lease();
        let _alive = crate::leases::KeepAlive::start(&self.store, &self.worker, lease);
        let row = &job.row;
        if let Some(from) = &job.taken_over_from {
            self.say(&format!(
                "job {} taken over from {from}, whose lease expired (it died or stopped beating); what it stored is kept",
                row.job
            ));
            self.store.mark_interrupted_sweeps(Utc::now())?;
        }
        let span = tracing::info_span!("job", job = %row.job);
        let _enter = span.enter();
        let started = Instant::now();
        let (status, message) = match self.sources().into_iter().find(|s| s.name == row.source) {
            None => ("skipped", "its source is no longer configured".to_owned()),
            Some(source) => self.run_work(&source, row, started),
        };
        let next = Utc::now() + chrono::Duration::milliseconds(row.interval_ms.max(1000));
        if !self
            .store
            .finish_job(job, &self.worker, Utc::now(), status, &message, next)?
        {
            self.say(&format!(
                "job {}: another worker took it over while it ran (this worker's heartbeat did not reach the database for {} s); its result is kept, the other worker sweeps again",
                row.job,
                lease.num_seconds()
            ));
        }
        self.publish_schedule();
        Ok(())
    }

    fn run_work(
        &self,
        source: &SourceConfig,
        row: &guardrail_storage::JobRow,
        started: Instant,
    ) -> (&'static str, String) {
        let work = match crate::jobs::work(&self.config, source, row) {
            Ok(w) => w,
            Err(e) => {
                self.metrics.record_sweep(false);
                self.say(&format!("job {} failed: {e:#}", row.job));
                return ("failed", format!("{e:#}"));
            }
        };
        match work {
            crate::jobs::Work::Discover { sweep } => match sweep.discover_accounts() {
                Ok(accounts) => {
                    let specs = crate::jobs::discovered_specs(source, &accounts, Utc::now());
                    match self.store.sync_jobs(
                        std::slice::from_ref(&source.name),
                        &specs,
                        Utc::now(),
                    ) {
                        Ok(sync) => {
                            let line = format!(
                                "organisation of {}: {} account(s) to sweep, {} new, {} gone",
                                source.name,
                                accounts.len(),
                                sync.added.len(),
                                sync.removed.len()
                            );
                            self.say(&line);
                            ("complete", line)
                        }
                        Err(e) => {
                            self.say(&format!(
                                "organisation of {}: {} account(s) found, but their jobs could not be stored (the accounts found before keep being swept): {e:#}",
                                source.name,
                                accounts.len()
                            ));
                            ("failed", format!("{e:#}"))
                        }
                    }
                }
                // The accounts found last time keep their jobs: nothing is dropped on a
                // failed listing.
                Err(e) => {
                    self.say(&format!(
                        "organisation of {}: discovery failed, the accounts found before keep being swept: {e}",
                        source.name
                    ));
                    ("failed", e)
                }
            },
            crate::jobs::Work::Sweep {
                mut watcher,
                label,
                aws,
            } => {
                let outcome = Pipeline::new(&self.store, &self.config).sweep_job(
                    &self.config,
                    watcher.as_mut(),
                    &label,
                    aws,
                    &self.auditor,
                    &Quiet,
                );
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
                        let line = format!(
                            "sweep {}: {} seen, {} created, {} modified, {} deleted, {} errors; {} findings opened, {} fixed",
                            s.sweep_id, s.items_seen, s.created, s.modified, s.deleted, s.errors, audit.opened, audit.fixed
                        );
                        if row.account.is_empty() {
                            self.say(&line);
                        } else {
                            self.say(&format!("{line} (job {})", row.job));
                        }
                        self.say_rule_problems(&audit);
                        (if s.errors == 0 { "complete" } else { "partial" }, line)
                    }
                    Err(e) => {
                        self.metrics.record_sweep(false);
                        tracing::warn!(error = %format!("{e:#}"), "sweep failed");
                        self.say(&format!("sweep of {} failed: {e:#}", row.job));
                        ("failed", format!("{e:#}"))
                    }
                }
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
        // Claim one due job at a time, so workers sharing the database split the work
        // as they free up, and a stop request waits for one job at most.
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let mine: Vec<String> = self.my_jobs()?.into_iter().map(|j| j.job).collect();
            if mine.is_empty() {
                break;
            }
            self.store.expire_gone_workers(Utc::now())?;
            let lease = self.config.workers.lease();
            let mut claimed = Vec::new();
            while claimed.len() < self.config.workers.jobs_at_once {
                match self
                    .store
                    .claim_job(&self.worker, &mine, Utc::now(), lease)?
                {
                    Some(job) => claimed.push(job),
                    None => break,
                }
            }
            if claimed.is_empty() {
                break;
            }
            // Each job audits what it stored before it is given back.
            self.audited = Some(Instant::now());
            if let [one] = claimed.as_slice() {
                self.run_job(one)?;
                continue;
            }
            // Sweeps are latency-bound (AWS round trips): several accounts at once on
            // one worker, each under its own lease; their audits take turns.
            let this = &*self;
            let results: Vec<anyhow::Result<()>> = std::thread::scope(|scope| {
                let running: Vec<_> = claimed
                    .iter()
                    .map(|job| scope.spawn(move || this.run_job(job)))
                    .collect();
                running
                    .into_iter()
                    .map(|t| {
                        t.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("a job thread panicked")))
                    })
                    .collect()
            });
            for r in results {
                r?;
            }
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
            Pipeline::new(&self.store, &self.config).route_turn()?;
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
