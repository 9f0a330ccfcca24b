//! `guardrail watch`: the scheduler in the foreground, without the HTTP server. One
//! source from the command line (or the configured `[[sources]]`), rule hot reload
//! (a rule that no longer compiles keeps its last good version and is reported), and
//! notification delivery between sweeps.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::Context;
use crate::config::SourceConfig;
use crate::scheduler::Scheduler;

#[derive(clap::Args)]
pub struct Args {
    /// AWS Config deliveries to sweep on every interval (default: the configuration
    /// file's [[sources]]; with neither, only rule changes are watched).
    #[arg(long)]
    source: Option<PathBuf>,
    /// Seconds between sweeps of --source.
    #[arg(long, default_value_t = 300.0)]
    interval: f64,
    /// Seconds between checks for changed rule files.
    #[arg(long, default_value_t = 5.0)]
    rules_poll: f64,
}

pub fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s.is_finite() && s > 0.0) {
        anyhow::bail!("--{what} must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let interval = seconds(a.interval, "interval")?;
    let poll = seconds(a.rules_poll, "rules-poll")?;
    let store = ctx.open_store()?;
    let fixed = a.source.as_ref().map(|path| {
        vec![SourceConfig {
            name: "watch".into(),
            path: Some(path.clone()),
            url: None,
            aws: None,
            events: None,
            interval_seconds: interval.as_secs_f64(),
        }]
    });
    let mut scheduler = Scheduler::new(
        store,
        ctx.rules_dir.clone(),
        ctx.config_path.clone(),
        ctx.config.clone(),
        fixed,
        Arc::default(),
        Box::new(|line| println!("{line}")),
    )?;
    if a.source.is_none() {
        for s in ctx.config.sources.iter().filter(|s| s.is_events()) {
            println!(
                "note: event source {} ({}) is read by `guardrail serve` or `guardrail events`, not by watch",
                s.name,
                s.describe()
            );
        }
    }
    for e in &scheduler.auditor().rules.load_errors {
        println!("rule error: {e}");
    }
    let sweeping: Vec<String> = scheduler
        .sources()
        .iter()
        .map(|s| {
            format!(
                "{} every {:?}",
                s.describe(),
                Duration::from_secs_f64(s.interval_seconds)
            )
        })
        .collect();
    println!(
        "watching rules in {} ({} loaded){}",
        ctx.rules_dir.display(),
        scheduler.auditor().rules.rules().len(),
        if sweeping.is_empty() {
            String::new()
        } else {
            format!(", sweeping {}", sweeping.join(", "))
        }
    );
    // `watch` runs until killed; errors end it, as before the scheduler existed.
    scheduler.run(&AtomicBool::new(false), poll, false)?;
    Ok(ExitCode::SUCCESS)
}
