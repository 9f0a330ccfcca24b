//! `guardrail watch`: the long-running loop until the server's scheduler arrives.
//! Rule files are polled; a changed rule is recompiled and everything re-audited, a
//! rule that no longer compiles keeps its last good version and is reported.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::Utc;
use guardrail_watchers::aws_config::{ConfigDeliveries, LocalDirectory};
use guardrail_watchers::Quiet;

use super::sweep::sweep_into;
use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// AWS Config deliveries to sweep on every interval (optional: without it, only
    /// rule changes are watched).
    #[arg(long)]
    source: Option<PathBuf>,
    /// Seconds between sweeps.
    #[arg(long, default_value_t = 300.0)]
    interval: f64,
    /// Seconds between checks for changed rule files.
    #[arg(long, default_value_t = 5.0)]
    rules_poll: f64,
}

fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s.is_finite() && s > 0.0) {
        anyhow::bail!("--{what} must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let interval = seconds(a.interval, "interval")?;
    let poll = seconds(a.rules_poll, "rules-poll")?;
    let store = ctx.open_store()?;
    let mut auditor = ctx.auditor()?;
    for e in &auditor.rules.load_errors {
        println!("rule error: {e}");
    }
    println!(
        "watching rules in {} ({} loaded){}",
        ctx.rules_dir.display(),
        auditor.rules.rules().len(),
        a.source
            .as_ref()
            .map(|s| format!(", sweeping {} every {:?}", s.display(), interval))
            .unwrap_or_default()
    );
    let notify = &ctx.config.notify;
    let http = guardrail_notify::Http::new(Duration::from_secs(notify.timeout_seconds));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut next_sweep = Instant::now();
    let mut reported = auditor.rules.load_errors.clone();
    loop {
        if let Some(source) = &a.source {
            if Instant::now() >= next_sweep {
                let mut watcher = ConfigDeliveries::new(LocalDirectory::new(source));
                match sweep_into(&store, &mut watcher, &Quiet) {
                    Ok(s) => {
                        let audit = auditor.audit_sweep(&store, s.sweep_id)?;
                        println!(
                            "{} sweep {}: {} seen, {} created, {} modified, {} deleted, {} errors; {} findings opened, {} fixed",
                            Utc::now().format("%H:%M:%S"), s.sweep_id, s.items_seen, s.created, s.modified, s.deleted, s.errors, audit.opened, audit.fixed
                        );
                    }
                    // A failed sweep is reported and retried next interval; the loop lives on.
                    Err(e) => println!("{} sweep failed: {e:#}", Utc::now().format("%H:%M:%S")),
                }
                next_sweep = Instant::now() + interval;
            }
        }
        let changed = auditor.reload()?;
        // Report a broken rule once, not on every poll while it stays broken.
        for e in auditor
            .rules
            .load_errors
            .iter()
            .filter(|e| !reported.contains(e))
        {
            println!("rule error (last good version kept): {e}");
            store.record_rule_error(&e.path, &format!("does not load: {e}"), Utc::now())?;
        }
        reported = auditor.rules.load_errors.clone();
        if !changed.is_empty() {
            let s = auditor.audit_all(&store)?;
            println!(
                "{} rules changed ({}); re-audit: {} opened, {} reopened, {} fixed, {} rule errors",
                Utc::now().format("%H:%M:%S"),
                changed.join(", "),
                s.opened,
                s.reopened,
                s.fixed,
                s.rule_errors
            );
        }
        if !notify.routes.is_empty() {
            // Delivery happens here, between sweeps, never inside one.
            guardrail_notify::route_events(&store, notify, Utc::now())?;
            let d = rt.block_on(guardrail_notify::dispatch_once(&store, notify, &http))?;
            if d.delivered + d.failed + d.gave_up > 0 {
                println!(
                    "{} notifications: {} delivered in {} messages, {} failed, {} gave up",
                    Utc::now().format("%H:%M:%S"),
                    d.delivered,
                    d.messages,
                    d.failed,
                    d.gave_up
                );
            }
        }
        std::thread::sleep(poll);
    }
}
