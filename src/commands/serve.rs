//! `guardrail serve`: the HTTP server (API, UI, metrics) and, on its own thread, the
//! scheduler (sweeps, rule and config reload, notification delivery). SIGINT or
//! SIGTERM stops both gracefully: in-flight requests and an in-flight sweep finish.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use guardrail_server::{AppState, Metrics};

use super::Context;
use crate::scheduler::Scheduler;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on; overrides [server] listen (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Seconds between scheduler passes (config and rule checks, due sweeps, notifications).
    #[arg(long, default_value_t = 5.0)]
    poll: f64,
}

/// The scheduler and the event sources, each on its own thread: what `serve` runs
/// beside its HTTP server and `worker` runs alone.
pub struct Background {
    scheduler: std::thread::JoinHandle<anyhow::Result<()>>,
    events: Vec<std::thread::JoinHandle<()>>,
}

impl Background {
    pub fn start(
        ctx: &Context,
        mut scheduler: Scheduler,
        store: &guardrail_storage::Store,
        metrics: &Arc<Metrics>,
        poll: std::time::Duration,
        stop: &Arc<AtomicBool>,
    ) -> anyhow::Result<Background> {
        let sched_stop = stop.clone();
        let scheduler = std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || scheduler.run(&sched_stop, poll, true))?;
        // Each event source reads its queue on its own thread, so an event is judged
        // and routed in seconds even while a long sweep runs.
        let mut events = Vec::new();
        for source in ctx.config.sources.iter().filter(|s| s.is_events()) {
            let (source, stop) = (source.clone(), stop.clone());
            let (store, config, rules_dir, metrics) = (
                store.clone(),
                ctx.config.clone(),
                ctx.rules_dir.clone(),
                metrics.clone(),
            );
            events.push(
                std::thread::Builder::new()
                    .name(format!("events {}", source.name))
                    .spawn(move || {
                        let say = |line: &str| {
                            println!("{} {line}", chrono::Utc::now().format("%H:%M:%S"))
                        };
                        crate::events::run_source(
                            &store, &config, &rules_dir, &source, &metrics, &stop, &say,
                        );
                    })?,
            );
        }
        Ok(Background { scheduler, events })
    }

    /// Waits for every thread (after the stop flag was set).
    pub fn join(self) -> anyhow::Result<()> {
        for t in self.events {
            if t.join().is_err() {
                println!("an event source thread panicked; see the log above");
            }
        }
        match self.scheduler.join() {
            Ok(result) => result,
            Err(_) => anyhow::bail!("the scheduler thread panicked; see the log above"),
        }
    }
}

/// What a starting `serve` or `worker` will do.
pub fn announce(ctx: &Context, scheduler: &Scheduler) {
    let events: Vec<String> = ctx
        .config
        .sources
        .iter()
        .filter(|s| s.is_events())
        .map(|s| format!("{} ({})", s.name, s.describe()))
        .collect();
    if !events.is_empty() {
        println!("event sources: {}", events.join(", "));
    }
    let sources = scheduler.sources();
    println!(
        "sources: {}",
        if sources.is_empty() {
            "none configured ([[sources]] in the config file)".to_owned()
        } else {
            sources
                .iter()
                .map(|s| {
                    format!(
                        "{} ({}, every {}s)",
                        s.name,
                        s.describe(),
                        s.interval_seconds
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let poll = super::watch::seconds(a.poll, "poll")?;
    let store = ctx.open_store()?;
    let shown_db = store.display_url();
    let mut settings = ctx.config.server.clone();
    if let Some(l) = a.listen {
        settings.listen = l;
    }
    let metrics = Arc::new(Metrics::default());
    let rules_dir = ctx.rules_dir.clone();
    // The page reads the rules in use at each request, so a rule reload shows at once.
    let compliance: guardrail_server::ComplianceFn = Arc::new(move |store, framework| {
        let r = super::findings::compliance_report(store, &rules_dir, framework)
            .map_err(|e| format!("{e:#}"))?;
        Ok(guardrail_server::ComplianceView {
            framework: r.framework,
            name: r.name,
            complete_catalogue: r.complete_catalogue,
            controls: r
                .controls
                .into_iter()
                .map(|c| guardrail_server::ControlView {
                    id: c.id,
                    title: c.title,
                    status: c.status,
                    automated: c.automated,
                    rules: c.rules,
                    judged: c.judged,
                    failing: c.failing,
                    passing: c.passing,
                    failing_resources: c.failing_resources,
                })
                .collect(),
        })
    });
    let state = AppState::new(store.clone(), settings.clone(), metrics.clone())
        .map_err(|e| anyhow::anyhow!("{e:#} (from --listen or the [server] table)"))?
        .with_compliance(compliance);
    let (event_store, event_metrics) = (store.clone(), metrics.clone());
    let scheduler = Scheduler::new(
        store,
        ctx.rules_dir.clone(),
        ctx.config_path.clone(),
        ctx.config.clone(),
        None,
        metrics,
        Box::new(|line| println!("{line}")),
    )?;
    for e in &scheduler.auditor().rules.load_errors {
        println!("rule error: {e}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}; is another process using it? (--listen ADDR)", settings.listen))?;
        let addr = listener.local_addr()?;
        let shown = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}/"));
        println!("guardrail is serving {shown} (database {shown_db})");
        announce(ctx, &scheduler);
        println!("log in with a token from: guardrail token create --name NAME --role viewer|triager|admin");
        let stop = Arc::new(AtomicBool::new(false));
        let background = Background::start(ctx, scheduler, &event_store, &event_metrics, poll, &stop)?;
        let server_stop = stop.clone();
        guardrail_server::serve(listener, state, async move {
            shutdown_signal().await;
            println!("stopping: finishing in-flight requests and sweeps");
            server_stop.store(true, Ordering::SeqCst);
        })
        .await?;
        // The server may also stop on its own (an I/O error); stop the scheduler too.
        stop.store(true, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || background.join()).await??;
        println!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
