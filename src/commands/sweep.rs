use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use guardrail_storage::{Store, SweepSummary};
use guardrail_watchers::aws::{AwsSweep, AwsTarget};
use guardrail_watchers::aws_config::{ConfigDeliveries, LocalDirectory};
use guardrail_watchers::{Progress, Quiet, Watcher};
use indicatif::{ProgressBar, ProgressStyle};

use super::Context;
use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct Args {
    /// A directory (or one file) of AWS Config snapshot/history deliveries, plain or .json.gz.
    #[arg(long, required_unless_present = "aws", conflicts_with = "aws")]
    source: Option<PathBuf>,
    /// Sweep what the current AWS credentials can see, through the AWS APIs (read-only).
    #[arg(long)]
    aws: bool,
    /// Regions for --aws.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1")]
    regions: Vec<String>,
    /// Endpoint for --aws (an emulator such as moto); also AWS_ENDPOINT_URL.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// AWS profile for --aws.
    #[arg(long)]
    profile: Option<String>,
    /// Record changes only; do not audit the changed items.
    #[arg(long)]
    no_audit: bool,
}

/// Progress on a terminal: a bar over delivery files, with the item count.
struct Bar(ProgressBar, AtomicU64);

impl Progress for Bar {
    fn begin(&self, units: u64) {
        self.0.set_length(units);
    }
    fn file(&self, location: &str) {
        let name = location.rsplit('/').next().unwrap_or(location);
        self.0.set_message(name.to_owned());
        self.0.inc(1);
    }
    fn item(&self) {
        // The position counts files; the item count rides in the prefix, updated
        // every thousand items to keep drawing off the hot path.
        let n = self.1.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(1000) {
            self.0.set_prefix(n.to_string());
        }
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Runs one watcher into a new sweep and returns its summary. A storage failure
/// mid-way still closes the sweep record as failed when the database allows it.
pub fn sweep_into(
    store: &Store,
    watcher: &mut dyn Watcher,
    progress: &dyn Progress,
) -> anyhow::Result<SweepSummary> {
    let mut ingestor = store.begin_sweep(&watcher.describe())?;
    let outcome = watcher.sweep(&mut ingestor, progress);
    let fatal = outcome.as_ref().err().map(|e| e.to_string());
    let summary = ingestor.finish(fatal.clone())?;
    if let Some(reason) = fatal {
        anyhow::bail!("sweep {} stopped: {reason}", summary.sweep_id);
    }
    Ok(summary)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let format = ctx.format()?;
    let store = ctx.open_store()?;
    // Load the rules first: a broken rules directory should stop us before ingesting.
    let auditor = if args.no_audit {
        None
    } else {
        Some(ctx.auditor()?)
    };
    let mut watcher: Box<dyn Watcher> = match &args.source {
        Some(source) => Box::new(ConfigDeliveries::new(LocalDirectory::new(source))),
        None => Box::new(AwsSweep::all(AwsTarget {
            regions: args.regions.clone(),
            endpoint_url: args.endpoint_url.clone(),
            profile: args.profile.clone(),
            max_attempts: 5,
        })),
    };
    let started = Instant::now();
    let summary = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} files, {prefix} items  {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix("0");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        sweep_into(&store, watcher.as_mut(), &Bar(bar, AtomicU64::new(0)))?
    } else {
        sweep_into(&store, watcher.as_mut(), &Quiet)?
    };
    let elapsed = started.elapsed();
    let audit = match &auditor {
        Some(a) => Some(a.audit_sweep(&store, summary.sweep_id)?),
        None => None,
    };
    match format {
        Format::Text => {
            print_summary(&summary, elapsed.as_secs_f64());
            if let Some(a) = &audit {
                super::audit::print_summary(a);
            }
        }
        _ => {
            let mut v = serde_json::to_value(&summary)?;
            v["audit"] = serde_json::to_value(&audit)?;
            output::json(&v)?
        }
    }
    // A sweep that met bad input finished, but not cleanly: say so to scripts.
    Ok(if summary.errors > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &SweepSummary, secs: f64) {
    println!(
        "sweep {}: {} items seen in {} listings ({:.1}s)",
        s.sweep_id, s.items_seen, s.listings, secs
    );
    println!(
        "  created {}, modified {}, deleted {}, unchanged {} ({} with ephemeral-only changes), stale {}",
        s.created, s.modified, s.deleted, s.unchanged, s.ephemeral_updates, s.stale
    );
    if s.errors == 0 {
        println!("  errors 0");
        return;
    }
    println!(
        "  errors {} (nothing in an affected scope was marked deleted):",
        s.errors
    );
    for e in &s.error_details {
        println!("  - {e}");
    }
}
