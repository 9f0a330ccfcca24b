//! `guardrail worker`: the scheduler and event sources of `serve` without its HTTP
//! server. Any number of workers (and `serve` processes) share one PostgreSQL
//! database: sweep jobs are leased, so each runs on one worker at a time, and a job
//! whose worker died is taken over when its lease expires. SIGINT or SIGTERM stops it
//! after the job in flight.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use guardrail_server::Metrics;
use guardrail_storage::{Backend, Store};

use super::serve::{announce, shutdown_signal, Background};
use super::Context;
use crate::scheduler::Scheduler;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds between scheduler passes (config and rule checks, due jobs, notifications).
    #[arg(long, default_value_t = 5.0)]
    poll: f64,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let poll = super::watch::seconds(a.poll, "poll")?;
    let store = ctx.open_store()?;
    let metrics = Arc::new(Metrics::default());
    let scheduler = Scheduler::new(
        store.clone(),
        ctx.rules_dir.clone(),
        ctx.config_path.clone(),
        ctx.config.clone(),
        None,
        metrics.clone(),
        Box::new(|line| println!("{line}")),
    )?;
    for e in &scheduler.auditor().rules.load_errors {
        println!("rule error: {e}");
    }
    println!(
        "guardrail worker {} (database {})",
        Store::worker_id(),
        store.display_url()
    );
    if store.backend() == Backend::Sqlite {
        println!(
            "note: SQLite is for one process; to run several workers, point them all at one PostgreSQL database ([database] url = \"postgres://...\")"
        );
    }
    announce(ctx, &scheduler);
    let stop = Arc::new(AtomicBool::new(false));
    let background = Background::start(ctx, scheduler, &store, &metrics, poll, &stop)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(shutdown_signal());
    println!("stopping: finishing the job in flight");
    stop.store(true, Ordering::SeqCst);
    background.join()?;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}
