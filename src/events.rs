//! Event-driven refreshes, owned here because they run the whole pipeline per batch:
//! receive events from the queue → refresh exactly the items they name → record
//! (cause `event`, with the actor) → audit what changed → route and deliver at once →
//! delete the messages. A message is deleted only after its effect is in the database;
//! a crash before that re-delivers it, and the refresh then finds nothing new (one
//! revision per real change, one notification per finding event).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use guardrail_model::{
    Actor, Cause, CollectError, Collector, Coverage, ItemKey, Listing, Observation, SourceError,
};
use guardrail_storage::{Ingestor, Store};
use guardrail_watchers::aws::events::{self, EventQueue, Ignored, Parsed, Refreshed};
use guardrail_watchers::aws::{AwsSweep, EventContexts};
use guardrail_watchers::config_deliveries::ItemState;
use serde::Serialize;

use crate::audit::Auditor;
use crate::config::Config;
use crate::pipeline::{Delivery, Pipeline};

/// What one batch of messages came to.
#[derive(Debug, Default, Serialize)]
pub struct BatchSummary {
    pub messages: u64,
    /// Items re-read (after debouncing: one per item per batch).
    pub refreshed: u64,
    pub recorded: u64,
    pub deleted: u64,
    /// Messages left on the queue to be tried again (a refresh failed).
    pub retried: u64,
    /// Events not acted on, by reason (`malformed`, `unknown_event`, ...).
    pub ignored: BTreeMap<&'static str, u64>,
    /// Why, for each event not acted on or left for a retry (the first 50).
    pub reasons: Vec<String>,
    pub created: u64,
    pub modified: u64,
    pub findings_opened: u64,
}

impl BatchSummary {
    fn note(&mut self, reason: String) {
        if self.reasons.len() < 50 {
            self.reasons.push(reason);
        }
    }
}

/// What one event does to the store.
enum Effect {
    Observe(Observation),
    /// AWS said the item does not exist (or AWS Config recorded its deletion).
    Delete(ItemKey, DateTime<Utc>),
    /// Exists, but AWS Config holds no configuration for it.
    Present(ItemKey),
    /// The item could not be read: recorded as the batch's error, nothing inferred.
    Error(SourceError),
}

/// Records one effect as its own listing: cause `event`, its actor on the revision,
/// covering nothing (so nothing else is inferred deleted).
fn record(
    ingestor: &mut Ingestor,
    origin: String,
    actor: Option<Actor>,
    effect: Effect,
) -> anyhow::Result<()> {
    let stored = |e: CollectError| anyhow::anyhow!("recording an event: {e}");
    ingestor
        .begin_listing(Listing {
            origin,
            cause: Cause::Event,
            observed_at: Utc::now(),
            actor,
        })
        .map_err(stored)?;
    match effect {
        Effect::Observe(o) => ingestor.observe(o).map_err(stored)?,
        Effect::Delete(key, at) => ingestor.deleted(key, at).map_err(stored)?,
        Effect::Present(key) => ingestor.present(key).map_err(stored)?,
        Effect::Error(e) => ingestor.error(e),
    }
    ingestor.end_listing(Coverage::Nothing).map_err(stored)?;
    Ok(())
}

pub struct EventRunner<'a> {
    store: &'a Store,
    config: &'a Config,
    sweep: AwsSweep,
    contexts: EventContexts,
    queue: EventQueue,
    http: guardrail_notify::Http,
    rt: tokio::runtime::Runtime,
    /// After the first message of a batch, how long more are gathered, so a burst for
    /// one item is one refresh.
    pub debounce: Duration,
}

impl<'a> EventRunner<'a> {
    pub fn new(
        store: &'a Store,
        config: &'a Config,
        queue_url: &str,
        endpoint_url: Option<&str>,
    ) -> anyhow::Result<EventRunner<'a>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let target = crate::pipeline::aws_target(config, &[], &[], endpoint_url, None, true);
        let sweep = AwsSweep::new(target.clone()).map_err(anyhow::Error::msg)?;
        let (contexts, problems) = rt.block_on(sweep.event_contexts());
        for p in problems {
            tracing::warn!(problem = %p, "an account cannot be entered: its events will be ignored");
        }
        let queue = rt.block_on(EventQueue::new(&target, queue_url));
        Ok(EventRunner {
            store,
            config,
            sweep,
            contexts,
            queue,
            http: guardrail_notify::Http::new(Duration::from_secs(config.notify.timeout_seconds)),
            rt,
            debounce: Duration::from_millis(500),
        })
    }

    pub fn queue_url(&self) -> &str {
        &self.queue.url
    }

    /// Waits up to `wait_seconds` for events and handles one batch, judging what changed
    /// with `auditor`; `None` when none came.
    pub fn run_once(
        &self,
        auditor: &Auditor,
        wait_seconds: i32,
    ) -> anyhow::Result<Option<BatchSummary>> {
        let mut messages = self
            .rt
            .block_on(self.queue.receive(wait_seconds))
            .map_err(anyhow::Error::msg)?;
        if messages.is_empty() {
            return Ok(None);
        }
        // Gather the rest of a burst.
        let until = std::time::Instant::now() + self.debounce;
        while std::time::Instant::now() < until && messages.len() < 100 {
            let more = self
                .rt
                .block_on(self.queue.receive(0))
                .map_err(anyhow::Error::msg)?;
            if more.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
            messages.extend(more);
        }
        let mut summary = BatchSummary {
            messages: messages.len() as u64,
            ..BatchSummary::default()
        };
        let accounts = self.contexts.accounts();
        let now = Utc::now();
        let mut keep = vec![false; messages.len()];
        let mut refreshes = Vec::new();
        let mut recorded = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match events::parse(&m.body, &accounts, now) {
                Parsed::Refresh {
                    key,
                    deletes,
                    actor,
                } => refreshes.push((i, key, deletes, actor)),
                Parsed::Recorded { state, actor } => recorded.push((i, state, actor)),
                Parsed::Ignored { why, message } => {
                    tracing::warn!(message_id = %m.id, reason = why.as_str(), %message, "event ignored");
                    *summary.ignored.entry(why.as_str()).or_default() += 1;
                    summary.note(format!("message {}: {} ({message})", m.id, why.as_str()));
                }
            }
        }
        let mut ingestor = self
            .store
            .begin_sweep(&format!("events: {}", self.queue.url))?;
        for (msgs, key, _deletes, actor) in events::debounce(refreshes) {
            let origin = format!(
                "event {} {}",
                actor.event_id.as_deref().unwrap_or("?"),
                actor.event_name.as_deref().unwrap_or("?")
            );
            let Some(ctx) = self.contexts.context(&key.account, &key.region) else {
                tracing::warn!(account = %key.account, "event for an account that could not be entered: ignored");
                summary.note(format!(
                    "{} {}: account {} could not be entered (see the log at start); ignored",
                    key.resource_type, key.resource_id, key.account
                ));
                *summary
                    .ignored
                    .entry(Ignored::UnknownAccount.as_str())
                    .or_default() += msgs.len() as u64;
                continue;
            };
            summary.refreshed += 1;
            match self
                .rt
                .block_on(events::refresh(&self.sweep.listers, &ctx, &key))
            {
                Refreshed::Item(o) => {
                    record(&mut ingestor, origin, Some(actor), Effect::Observe(*o))?;
                }
                Refreshed::Gone => {
                    // AWS said so for this one id: the only deletion outside a sweep.
                    // The event may name it otherwise than its item id (IAM by name).
                    match self.store.active_item_named(
                        &key.account,
                        &key.resource_type,
                        &key.resource_id,
                    )? {
                        Some(stored) => {
                            summary.deleted += 1;
                            record(
                                &mut ingestor,
                                origin,
                                Some(actor),
                                Effect::Delete(stored, Utc::now()),
                            )?;
                        }
                        None => summary.note(format!(
                            "{} {}: gone, and never stored (nothing to record)",
                            key.resource_type, key.resource_id
                        )),
                    }
                }
                Refreshed::NotRefreshable => {
                    tracing::warn!(resource_type = %key.resource_type, id = %key.resource_id, "no single-item read for this type: the next sweep records the change");
                    summary.note(format!(
                        "{} {}: no single-item read for this type; the next sweep records the change",
                        key.resource_type, key.resource_id
                    ));
                    *summary
                        .ignored
                        .entry(Ignored::NotRefreshable.as_str())
                        .or_default() += msgs.len() as u64;
                }
                Refreshed::Failed(message) => {
                    tracing::warn!(id = %key.resource_id, %message, "refresh failed: the event stays on the queue");
                    summary.note(format!(
                        "{} {}: refresh failed, left on the queue to retry ({message})",
                        key.resource_type, key.resource_id
                    ));
                    for m in &msgs {
                        keep[*m] = true;
                    }
                    summary.retried += msgs.len() as u64;
                    let error = SourceError {
                        origin: origin.clone(),
                        item: Some(key.resource_id.clone()),
                        scope: Some(key.scope()),
                        message,
                    };
                    record(&mut ingestor, origin, None, Effect::Error(error))?;
                }
            }
        }
        for (i, state, actor) in recorded {
            summary.recorded += 1;
            let origin = format!("event {} (AWS Config)", messages[i].id);
            let effect = match state {
                ItemState::Present(o) => Effect::Observe(o),
                ItemState::Deleted { key, at } => Effect::Delete(key, at),
                ItemState::NotRecorded(key) => Effect::Present(key),
            };
            record(&mut ingestor, origin, actor, effect)?;
        }
        let s = ingestor.finish(None)?;
        summary.created = s.created;
        summary.modified = s.modified;
        // Judge and tell at once: an event-driven change never waits for a tick.
        let pipeline = Pipeline::new(self.store, self.config);
        let audit = pipeline.audit_due(auditor, Delivery::Each)?;
        summary.findings_opened = audit.opened;
        if !self.config.notify.routes.is_empty() {
            let d = self.rt.block_on(guardrail_notify::dispatch_once(
                self.store,
                &self.config.notify,
                &self.http,
            ))?;
            if d.failed + d.gave_up > 0 {
                tracing::warn!(
                    failed = d.failed,
                    gave_up = d.gave_up,
                    "some notifications were not delivered; they stay in the outbox"
                );
            }
        }
        // Fault injection for the crash test: die after recording, before deleting,
        // exactly where a kill -9 would hurt most.
        if std::env::var_os("GUARDRAIL_FAULT_EXIT_BEFORE_DELETE").is_some() {
            tracing::error!(
                "GUARDRAIL_FAULT_EXIT_BEFORE_DELETE: exiting before deleting the messages"
            );
            std::process::exit(137);
        }
        // Everything is recorded: only now may the queue forget the messages.
        let done: Vec<String> = messages
            .iter()
            .zip(&keep)
            .filter(|(_, k)| !**k)
            .map(|(m, _)| m.receipt.clone())
            .collect();
        if let Err(e) = self.rt.block_on(self.queue.delete(&done)) {
            tracing::warn!(error = %e, "handled messages not deleted; they will come again and change nothing");
        }
        Ok(Some(summary))
    }
}

impl BatchSummary {
    /// The counters `/metrics` adds this batch to.
    pub fn counted(&self) -> guardrail_server::EventBatch<'_> {
        guardrail_server::EventBatch {
            messages: self.messages,
            refreshed: self.refreshed,
            recorded: self.recorded,
            deleted: self.deleted,
            retried: self.retried,
            ignored: self.ignored.iter().map(|(k, v)| (*k, *v)).collect(),
        }
    }

    /// One line for serve's log.
    pub fn line(&self) -> String {
        let ignored: u64 = self.ignored.values().sum();
        format!(
            "{} messages: {} items refreshed, {} AWS Config items stored, {} deleted, {} created, {} modified, {} findings opened, {} left to retry, {} ignored{}",
            self.messages,
            self.refreshed,
            self.recorded,
            self.deleted,
            self.created,
            self.modified,
            self.findings_opened,
            self.retried,
            ignored,
            if self.reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.reasons.join("; "))
            }
        )
    }
}

/// Waits between failed tries: 5 s, doubling to at most 5 min; a success starts over.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_secs(5))
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(300));
        wait
    }
}

/// One `[[sources]]` event source under `serve`: reads its queue until `stop`, each
/// batch recorded, judged and routed at once (never waiting for the scheduler). A queue
/// that cannot be read is reported and retried with back-off; nothing here ends the
/// server.
pub fn run_source(
    store: &Store,
    config: &Config,
    rules_dir: &std::path::Path,
    source: &crate::config::SourceConfig,
    metrics: &guardrail_server::Metrics,
    stop: &std::sync::atomic::AtomicBool,
    say: &(dyn Fn(&str) + Send + Sync),
) {
    use std::sync::atomic::Ordering;
    let Some(e) = &source.events else { return };
    let name = &source.name;
    let stopped = || stop.load(Ordering::SeqCst);
    // Waits in slices so a stop request is seen at once.
    let pause = |d: Duration| {
        let until = std::time::Instant::now() + d;
        while !stopped() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut backoff = Backoff::default();
    let (mut auditor, runner) = loop {
        if stopped() {
            return;
        }
        let built = Auditor::new(rules_dir, config)
            .and_then(|a| EventRunner::new(store, config, &e.queue_url, None).map(|r| (a, r)));
        match built {
            Ok(b) => break b,
            Err(err) => {
                tracing::error!(source = %name, error = %format!("{err:#}"), "event source cannot start");
                let wait = backoff.next();
                say(&format!(
                    "event source {name} cannot start (retrying in {}s): {err:#}",
                    wait.as_secs()
                ));
                pause(wait);
            }
        }
    };
    say(&format!(
        "event source {name}: reading {}",
        runner.queue_url()
    ));
    backoff = Backoff::default();
    while !stopped() {
        // The scheduler reports and re-audits rule changes; this thread only keeps
        // judging new events with the rules in force.
        if let Err(err) = auditor.reload() {
            tracing::warn!(source = %name, error = %format!("{err:#}"), "rules not reloaded for the event source");
        }
        match runner.run_once(&auditor, e.wait_seconds) {
            Ok(None) => backoff = Backoff::default(),
            Ok(Some(s)) => {
                backoff = Backoff::default();
                metrics.events.record(&s.counted());
                if s.created + s.modified + s.deleted + s.recorded > 0 {
                    // Something was judged: findings may have opened or been fixed.
                    metrics.record_audit();
                }
                say(&format!("event source {name}: {}", s.line()));
            }
            Err(err) => {
                tracing::error!(source = %name, error = %format!("{err:#}"), "event batch failed");
                let wait = backoff.next();
                say(&format!(
                    "event source {name}: cannot read or record events (retrying in {}s; messages stay on the queue): {err:#}",
                    wait.as_secs()
                ));
                pause(wait);
            }
        }
    }
}
