//! The pipeline: watch → store → audit → route, in that order, owned here. The
//! `sweep` and `audit` commands and the scheduler (`watch`, `serve`) call it; each
//! stage's crate does one job: watchers observe, storage records, the auditor judges
//! (and knows nothing of notifications), notify routes the events the audit recorded
//! into the outbox. Sending is the dispatcher's job and never slows a sweep down.

use chrono::Utc;
use guardrail_notify::NotifySettings;
use guardrail_storage::{AuditSummary, Store, SweepSummary};
use guardrail_watchers::aws::{AwsSweep, AwsTarget, S3Deliveries};
use guardrail_watchers::config_deliveries::{ConfigDeliveries, LocalDirectory};
use guardrail_watchers::{Progress, Watcher};

use crate::audit::Auditor;
use crate::config::{Config, SourceConfig};
use crate::leases::AuditTurn;

pub use guardrail_notify::Delivery;

/// Runs one watcher into a new sweep and returns its summary. A storage failure
/// mid-way still closes the sweep record as failed when the database allows it.
pub fn sweep_into(
    store: &Store,
    watcher: &mut dyn Watcher,
    progress: &dyn Progress,
) -> anyhow::Result<SweepSummary> {
    let label = watcher.describe();
    sweep_labelled(store, &label, watcher, progress)
}

/// [`sweep_into`] with the sweep record named `label` (a job names its account).
pub fn sweep_labelled(
    store: &Store,
    label: &str,
    watcher: &mut dyn Watcher,
    progress: &dyn Progress,
) -> anyhow::Result<SweepSummary> {
    let mut ingestor = store.begin_sweep(label)?;
    // The watcher reads and parses on this thread while the ingestor hashes and writes
    // on another (see `guardrail_model::pipelined`).
    let outcome = guardrail_model::pipelined(&mut ingestor, |c| watcher.sweep(c, progress));
    let fatal = outcome.as_ref().err().map(|e| e.to_string());
    let summary = ingestor.finish(fatal.clone())?;
    if let Some(reason) = fatal {
        anyhow::bail!("sweep {} stopped: {reason}", summary.sweep_id);
    }
    Ok(summary)
}

/// Audit and routing against one store with one configuration's routes.
pub struct Pipeline<'a> {
    store: &'a Store,
    notify: &'a NotifySettings,
    lease: chrono::Duration,
}

impl<'a> Pipeline<'a> {
    pub fn new(store: &'a Store, config: &'a Config) -> Pipeline<'a> {
        Pipeline {
            store,
            notify: &config.notify,
            lease: config.workers.lease(),
        }
    }

    /// Judges everything due (what sweeps changed, and anything an earlier process
    /// stored without judging), then routes the events recorded.
    pub fn audit_due(&self, auditor: &Auditor, delivery: Delivery) -> anyhow::Result<AuditSummary> {
        let _turn = AuditTurn::take(self.store, self.lease)?;
        let s = auditor.audit_due(self.store)?;
        self.route(delivery)?;
        Ok(s)
    }

    /// Judges every active item again, then routes the events recorded.
    pub fn audit_all(&self, auditor: &Auditor) -> anyhow::Result<AuditSummary> {
        let _turn = AuditTurn::take(self.store, self.lease)?;
        let s = auditor.audit_all(self.store)?;
        self.route(Delivery::Each)?;
        Ok(s)
    }

    /// Queues notifications for the finding events recorded so far, in the audit turn
    /// (an audit pass on another worker may be about to route its baseline).
    pub fn route_turn(&self) -> anyhow::Result<()> {
        let _turn = AuditTurn::take(self.store, self.lease)?;
        self.route(Delivery::Each)
    }

    /// Queues notifications for the finding events recorded so far (outbox rows only).
    /// The caller holds the audit turn.
    fn route(&self, delivery: Delivery) -> anyhow::Result<()> {
        if !self.notify.routes.is_empty() {
            guardrail_notify::route_events_as(self.store, self.notify, Utc::now(), delivery)?;
        }
        Ok(())
    }

    /// One scheduled sweep: a job's watcher into the store under `label`, then the
    /// audit and routing. The first sweep under a label is a baseline (one summary per
    /// route).
    pub fn sweep_job(
        &self,
        config: &Config,
        watcher: &mut dyn Watcher,
        label: &str,
        aws: Option<AwsTarget>,
        auditor: &Auditor,
        progress: &dyn Progress,
    ) -> anyhow::Result<(SweepSummary, AuditSummary)> {
        let first = !self.store.source_swept_before(label)?;
        let s = sweep_labelled(self.store, label, watcher, progress)?;
        if let Some(target) = aws {
            // Before the audit, so a finding's first message can say who did it.
            crate::attribution::say(crate::attribution::attribute_changes(
                self.store, config, target, s.sweep_id, first,
            ));
        }
        let delivery = if first {
            Delivery::Baseline
        } else {
            Delivery::Each
        };
        let audit = self.audit_due(auditor, delivery)?;
        Ok((s, audit))
    }
}

/// The AWS target from the config's `[aws]` table with the command line on top.
pub fn aws_target(
    config: &Config,
    regions: &[String],
    only: &[String],
    endpoint_url: Option<&str>,
    profile: Option<&str>,
    configured_accounts: bool,
) -> AwsTarget {
    let c = &config.aws;
    AwsTarget {
        accounts: if configured_accounts {
            config.aws_accounts()
        } else {
            Vec::new()
        },
        regions: if regions.is_empty() {
            c.regions.clone()
        } else {
            regions.to_vec()
        },
        endpoint_url: endpoint_url.map(str::to_owned).or(c.endpoint_url.clone()),
        profile: profile.map(str::to_owned).or(c.profile.clone()),
        max_attempts: c.max_attempts,
        concurrency: c.concurrency,
        max_calls_per_second: c.max_calls_per_second.unwrap_or(f64::INFINITY),
        only: if only.is_empty() {
            c.only.clone()
        } else {
            only.to_vec()
        },
        config_types: c.config_types.clone(),
        config_aggregator: c.config_aggregator.clone(),
        call_timeout_seconds: c.call_timeout_seconds,
        organization: if configured_accounts {
            c.organization
                .as_ref()
                .map(|o| guardrail_watchers::aws::Organization {
                    role_name: o.role_name.clone(),
                    external_id: o.external_id.clone(),
                    include_ous: o.include_ous.clone(),
                    exclude_ous: o.exclude_ous.clone(),
                    exclude_accounts: o.exclude_accounts.clone(),
                })
        } else {
            None
        },
    }
}

/// The watcher of one scheduled `[[sources]]` entry.
pub fn source_watcher(config: &Config, source: &SourceConfig) -> anyhow::Result<Box<dyn Watcher>> {
    let max = config.ingest.max_item_bytes();
    if let Some(e) = &source.events {
        anyhow::bail!(
            "source {} reads events from {} continuously; it has no sweep (run `guardrail serve` or `guardrail events`)",
            source.name,
            e.queue_url
        );
    }
    if let Some(path) = &source.path {
        return Ok(Box::new(
            ConfigDeliveries::new(LocalDirectory::new(path)).with_max_item_bytes(max),
        ));
    }
    if let Some(url) = &source.url {
        let target = aws_target(config, &[], &[], None, None, false);
        return Ok(Box::new(
            ConfigDeliveries::new(S3Deliveries::new(url, &target).map_err(anyhow::Error::msg)?)
                .with_max_item_bytes(max),
        ));
    }
    let target = aws_source_target(config, source);
    Ok(Box::new(AwsSweep::new(target).map_err(anyhow::Error::msg)?))
}

/// The accounts, regions and services an `aws = {...}` source sweeps.
pub fn aws_source_target(config: &Config, source: &SourceConfig) -> AwsTarget {
    let a = source.aws.clone().unwrap_or_default();
    let mut target = aws_target(config, &a.regions, &a.only, None, None, true);
    if !a.accounts.is_empty() {
        // A source naming its accounts sweeps those, not the whole organisation.
        target.organization = None;
        target
            .accounts
            .retain(|t| t.id.as_ref().is_some_and(|id| a.accounts.contains(id)));
    }
    if !a.regions.is_empty() {
        // The source's regions win over each account's own.
        for t in &mut target.accounts {
            t.regions.clear();
        }
    }
    target
}
