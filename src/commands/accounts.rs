//! `guardrail accounts check`: can each configured account be entered, and does each
//! watcher's first read succeed in each region. Says what is missing, changes nothing.

use std::process::ExitCode;

use guardrail_watchers::aws::check_accounts;

use super::Context;
use crate::output::{self, Format};
use crate::pipeline::aws_target;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Verify access per account, region and service (read-only probes).
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Check the current credentials instead of the config file's accounts.
    #[arg(long)]
    aws: bool,
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    #[arg(long)]
    profile: Option<String>,
}

pub fn run(ctx: &Context, c: Command) -> anyhow::Result<ExitCode> {
    let Command::Check(a) = c;
    let format = ctx.format()?;
    let target = aws_target(
        &ctx.config,
        &a.regions,
        &a.only,
        a.endpoint_url.as_deref(),
        a.profile.as_deref(),
        !a.aws,
    );
    let mut target = target;
    if target.organization.is_some() {
        // The organisation's accounts, listed now, are what a sweep would enter.
        match guardrail_watchers::aws::AwsSweep::new(target.clone())
            .map_err(anyhow::Error::msg)?
            .discover_accounts()
        {
            Ok(accounts) => {
                if format == Format::Text {
                    println!("organisation: {} account(s) to sweep", accounts.len());
                }
                target.accounts = accounts;
                target.organization = None;
            }
            Err(e) => {
                let line = format!("organisation: FAILED: {e}");
                if format == Format::Text {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
                return Ok(ExitCode::from(1));
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(check_accounts(&target));
    let ok = results.iter().all(|r| r.ok());
    match format {
        Format::Text => {
            for r in &results {
                let role = r
                    .role_arn
                    .as_deref()
                    .map(|a| format!(" via {a}"))
                    .unwrap_or_default();
                let who = if r.account.is_empty() {
                    "account"
                } else {
                    r.account.as_str()
                };
                match &r.error {
                    Some(e) => println!("{who}{role}: FAILED: {e}"),
                    None => {
                        let bad = r.checks.iter().filter(|c| !c.ok).count();
                        println!(
                            "{who}{role}: {} ({} checks, {} failing)",
                            if bad == 0 { "ok" } else { "INCOMPLETE" },
                            r.checks.len(),
                            bad
                        );
                        for c in &r.checks {
                            if c.ok {
                                println!("  ok      {:<10} {}", c.region, c.action);
                            } else {
                                println!("  MISSING {:<10} {}: {}", c.region, c.action, c.message);
                            }
                        }
                    }
                }
            }
        }
        _ => output::json(&serde_json::to_value(&results)?)?,
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
