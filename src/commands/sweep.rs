use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use guardrail_storage::SweepSummary;
use guardrail_watchers::aws::{AwsSweep, S3Deliveries};
use guardrail_watchers::config_deliveries::{ConfigDeliveries, LocalDirectory};
use guardrail_watchers::{Progress, Watcher};
use indicatif::{ProgressBar, ProgressStyle};

use super::Context;
use crate::output::{self, Format};
use crate::pipeline::{aws_target, sweep_into, Delivery, Pipeline};

#[derive(clap::Args)]
pub struct Args {
    /// AWS Config snapshot/history deliveries, plain or .json.gz: a directory, one file,
    /// or the delivery bucket as s3://bucket/prefix.
    #[arg(long, conflicts_with = "aws")]
    source: Option<String>,
    /// Sweep what the current AWS credentials can see, through the AWS APIs (read-only),
    /// ignoring the accounts of the config file. Without --source or --aws, the
    /// accounts configured in --config are swept.
    #[arg(long)]
    aws: bool,
    /// Regions (default: the config's [aws] regions, else the SDK's region chain:
    /// AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1); `all` = every
    /// enabled region.
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// Only these services' watchers: iam, s3, ec2, config.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// AWS endpoint (an emulator such as moto); also AWS_ENDPOINT_URL.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// AWS profile of the base credentials.
    #[arg(long)]
    profile: Option<String>,
    /// Record changes only; do not audit the changed items.
    #[arg(long)]
    no_audit: bool,
    /// Notify the findings of this sweep as one summary per route, not one message
    /// each (automatic on the first sweep of a source).
    #[arg(long, conflicts_with = "no_baseline")]
    baseline: bool,
    /// Notify each finding even on the first sweep of a source.
    #[arg(long)]
    no_baseline: bool,
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
    fn waiting(&self, what: &str, seconds: u64) {
        self.0.set_message(format!("waiting {seconds}s on {what}"));
    }
}

/// Not on a terminal: only stalls are reported, one line each on stderr.
struct Stalls;

impl Progress for Stalls {
    fn waiting(&self, what: &str, seconds: u64) {
        eprintln!("still waiting after {seconds}s on: {what} (each call gives up after [aws] call_timeout_seconds)");
    }
}

fn watcher_for(ctx: &Context, args: &Args) -> anyhow::Result<Box<dyn Watcher>> {
    Ok(match &args.source {
        Some(url) if url.starts_with("s3://") => Box::new(
            ConfigDeliveries::new(
                S3Deliveries::new(url, &target_of(ctx, args, false)).map_err(anyhow::Error::msg)?,
            )
                .with_max_item_bytes(ctx.config.ingest.max_item_bytes()),
        ),
        Some(path) => Box::new(
            ConfigDeliveries::new(LocalDirectory::new(PathBuf::from(path)))
                .with_max_item_bytes(ctx.config.ingest.max_item_bytes()),
        ),
        None => match aws_sweep_target(ctx, args) {
            Some(t) => Box::new(AwsSweep::new(t).map_err(anyhow::Error::msg)?),
            None => anyhow::bail!(
            "nothing to sweep: give --source DIR|s3://bucket/prefix, --aws (the current credentials), \
             or --config FILE with accounts to sweep ([accounts.\"<id>\"] role_arn = ..., or [aws] organization)"
            ),
        },
    })
}

/// The target of an AWS API sweep (`None` for deliveries).
fn aws_sweep_target(ctx: &Context, args: &Args) -> Option<guardrail_watchers::aws::AwsTarget> {
    let accounts = match &args.source {
        Some(_) => return None,
        None if args.aws => false,
        None if !ctx.config.aws_accounts().is_empty() || ctx.config.aws.organization.is_some() => {
            true
        }
        None => return None,
    };
    Some(target_of(ctx, args, accounts))
}

/// The AWS target the flags and config name: the configured accounts, or (false) the
/// current credentials' own.
fn target_of(ctx: &Context, args: &Args, accounts: bool) -> guardrail_watchers::aws::AwsTarget {
    aws_target(
        &ctx.config,
        &args.regions,
        &args.only,
        args.endpoint_url.as_deref(),
        args.profile.as_deref(),
        accounts,
    )
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
    let mut watcher = watcher_for(ctx, &args)?;
    // The first sweep of a source finds everything that already exists: people get one
    // summary per route, not a page per pre-existing finding.
    let delivery = if args.baseline
        || (!args.no_baseline && !store.source_swept_before(&watcher.describe())?)
    {
        Delivery::Baseline
    } else {
        Delivery::Each
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
        sweep_into(&store, watcher.as_mut(), &Stalls)?
    };
    let elapsed = started.elapsed();
    // Who made what this sweep found, before the audit routes it.
    let attribution = match aws_sweep_target(ctx, &args) {
        Some(target) => match crate::attribution::attribute_changes(
            &store,
            &ctx.config,
            target,
            summary.sweep_id,
            delivery == Delivery::Baseline,
        ) {
            Ok(a) => {
                if let Some(p) = &a.problem {
                    eprintln!("warning: CloudTrail actor lookup stopped: {p}");
                }
                Some(a)
            }
            Err(e) => {
                eprintln!("warning: CloudTrail actor lookup failed (the changes stay without an actor): {e:#}");
                None
            }
        },
        None => None,
    };
    let audit = match &auditor {
        // Everything due, not just this sweep's changes: an earlier sweep that was
        // killed before its audit is caught up here.
        Some(a) => Some(Pipeline::new(&store, &ctx.config).audit_due(a, delivery)?),
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
            v["actors"] = serde_json::json!(attribution.as_ref().map(
                |a| serde_json::json!({"asked": a.asked, "found": a.found, "problem": a.problem})
            ));
            output::json(&v)?
        }
    }
    // A sweep that met bad input finished, but not cleanly: say so to scripts. So did
    // one whose rules did not all judge (not loaded, erroring, suspended).
    let rule_problems = audit
        .as_ref()
        .is_some_and(|a| !a.rule_problems.is_empty() || a.rule_errors > 0);
    Ok(if summary.errors > 0 || rule_problems {
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
