//! `guardrail events`: reads EventBridge events from an SQS queue and refreshes the
//! items they name (see `src/events.rs`), printing one summary line per batch.

use std::process::ExitCode;

use super::Context;
use crate::audit::Auditor;
use crate::events::EventRunner;

#[derive(clap::Args)]
pub struct Args {
    /// The SQS queue an EventBridge rule delivers CloudTrail API calls and AWS Config
    /// item changes to.
    #[arg(long)]
    queue_url: String,
    /// Handle what is on the queue now, then exit (default: run until killed).
    #[arg(long)]
    once: bool,
    /// Long-poll wait per receive, in seconds (0 to 20).
    #[arg(long, default_value_t = 20)]
    wait_seconds: i32,
    /// AWS endpoint (an emulator or a VPC endpoint), as for `sweep --aws`.
    #[arg(long)]
    endpoint_url: Option<String>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let auditor = Auditor::new(&ctx.rules_dir, &ctx.config)?;
    let runner = EventRunner::new(&store, &ctx.config, &a.queue_url, a.endpoint_url.as_deref())?;
    loop {
        let wait = if a.once {
            a.wait_seconds.min(1)
        } else {
            a.wait_seconds
        };
        match runner.run_once(&auditor, wait)? {
            Some(s) => println!("{}", serde_json::to_string(&s)?),
            None if a.once => return Ok(ExitCode::SUCCESS),
            None => {}
        }
    }
}
