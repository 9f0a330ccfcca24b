use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use chrono::Utc;
use guardrail_notify::{dispatch_once, route_events, Http};
use guardrail_storage::NewOutbox;
use serde_json::json;

use super::{short_time, Context};
use crate::output::{self, Format, Table};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: NotifyCommand,
}

#[derive(clap::Subcommand)]
enum NotifyCommand {
    /// Queue notifications for new finding events, then deliver what is due.
    Dispatch {
        /// Keep running, dispatching every --interval seconds.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value_t = 5.0)]
        interval: f64,
    },
    /// Send a sample notification through a route (queued like any other).
    Test { route: String },
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OutboxArgs {
    #[command(subcommand)]
    command: Option<OutboxCommand>,
    /// pending, failed, delivered, gave_up (default: all).
    #[arg(long)]
    status: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

#[derive(clap::Subcommand)]
enum OutboxCommand {
    /// Put given-up (or failed) notifications back in the queue, due now, with a
    /// fresh give-up clock. The next dispatch (serve, watch, notify dispatch) sends them.
    Requeue {
        /// Which rows: gave_up (default) or failed.
        #[arg(long, default_value = "gave_up")]
        status: String,
        /// Only these outbox ids (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        id: Vec<i64>,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let format = ctx.format()?;
    let store = ctx.open_store()?;
    let settings = &ctx.config.notify;
    if settings.routes.is_empty() {
        anyhow::bail!(
            "no notification routes: add [[notify.routes]] to the configuration file (--config)"
        );
    }
    let http = Http::new(Duration::from_secs(settings.timeout_seconds));
    let rt = runtime()?;
    match a.command {
        NotifyCommand::Test { route } => {
            let r = settings.route(&route).ok_or_else(|| {
                let names: Vec<&str> = settings.routes.iter().map(|r| r.name.as_str()).collect();
                anyhow!("no route named {route:?}; configured: {}", names.join(", "))
            })?;
            let now = Utc::now();
            let key = format!(
                "{}:test:{}",
                r.name,
                now.timestamp_nanos_opt().unwrap_or_default()
            );
            let payload = r.notifier().test(r, &key);
            store.enqueue_one(&NewOutbox {
                route: r.name.clone(),
                channel: r.notifier().name().into(),
                dedup_key: key,
                event: "test".into(),
                finding_id: None,
                payload: payload.to_string(),
                created_at: now.naive_utc(),
                next_attempt_at: now.naive_utc(),
                digest_window: None,
            })?;
            let s = rt.block_on(dispatch_once(&store, settings, &http))?;
            let failed = s.failed + s.gave_up;
            match format {
                Format::Text => {
                    if failed == 0 {
                        println!("sent a test notification through route {route}");
                    } else {
                        let last = store.outbox(None, 1)?.into_iter().next();
                        println!(
                            "route {route} failed: {}",
                            last.and_then(|r| r.last_error).unwrap_or_default()
                        );
                    }
                }
                _ => output::json(&s)?,
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        NotifyCommand::Dispatch { watch, interval } => {
            if !(interval.is_finite() && interval > 0.0) {
                anyhow::bail!("--interval must be a positive number of seconds");
            }
            loop {
                let routed = route_events(&store, settings, Utc::now())?;
                let s = rt.block_on(dispatch_once(&store, settings, &http))?;
                match format {
                    Format::Text => println!(
                        "{} queued {}, delivered {} in {} messages, failed {}, gave up {}",
                        Utc::now().format("%H:%M:%S"),
                        routed.queued,
                        s.delivered,
                        s.messages,
                        s.failed,
                        s.gave_up
                    ),
                    _ => output::json(&json!({"routing": routed, "dispatch": s}))?,
                }
                if !watch {
                    return Ok(ExitCode::SUCCESS);
                }
                std::thread::sleep(Duration::from_secs_f64(interval));
            }
        }
    }
}

pub fn outbox(ctx: &Context, a: OutboxArgs) -> anyhow::Result<ExitCode> {
    let format = ctx.format()?;
    if let Some(OutboxCommand::Requeue { status, id }) = a.command {
        if !["gave_up", "failed"].contains(&status.as_str()) {
            anyhow::bail!("--status {status:?}: requeue takes gave_up or failed");
        }
        let store = ctx.open_existing_store()?;
        let n = store.requeue_outbox(&status, &id, chrono::Utc::now())?;
        match format {
            Format::Text => println!("requeued {n} notification(s); the next dispatch sends them"),
            _ => output::json(&serde_json::json!({ "requeued": n }))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = &a.status {
        if !["pending", "failed", "delivered", "gave_up"].contains(&s.as_str()) {
            anyhow::bail!("--status {s:?}: use pending, failed, delivered or gave_up");
        }
    }
    let store = ctx.open_existing_store()?;
    let rows = store.outbox(a.status.as_deref(), a.limit)?;
    super::note_if_cut(rows.len(), a.limit, "notifications");
    match format {
        Format::Text => {
            let mut t = Table::new(&[
                "ID",
                "STATUS",
                "ROUTE",
                "CHANNEL",
                "EVENT",
                "FINDING",
                "ATTEMPTS",
                "CREATED",
                "NEXT/DONE",
                "LAST ERROR",
            ]);
            for r in &rows {
                let when = r.delivered_at.or(r.gave_up_at).unwrap_or(r.next_attempt_at);
                t.row(vec![
                    r.id.to_string(),
                    r.status().into(),
                    r.route.clone(),
                    r.channel.clone(),
                    r.event.clone(),
                    r.finding_id.map(|f| f.to_string()).unwrap_or_default(),
                    r.attempts.to_string(),
                    short_time(&r.created_at),
                    short_time(&when),
                    r.last_error.clone().unwrap_or_default(),
                ]);
            }
            t.print()?;
        }
        _ => {
            let list: Vec<_> = rows
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    v["status"] = json!(r.status());
                    v
                })
                .collect();
            output::json(&list)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
