use std::process::ExitCode;

use guardrail_storage::AuditSummary;

use super::Context;
use crate::output::{self, Format};

pub fn print_summary(s: &AuditSummary) {
    println!(
        "audit: {} items; {} opened, {} reopened, {} fixed, {} updated, {} suppressed, {} justifications lapsed, {} rule errors",
        s.items, s.opened, s.reopened, s.fixed, s.updated, s.suppressed, s.justifications_lapsed, s.rule_errors
    );
    for p in &s.rule_problems {
        println!("  warning: {p}");
    }
    if s.rule_errors > 0 || !s.rule_problems.is_empty() {
        println!("  see `guardrail rules errors` and `guardrail status`");
    }
}

pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let format = ctx.format()?;
    let store = ctx.open_existing_store()?;
    let auditor = ctx.auditor()?;
    let summary = crate::pipeline::Pipeline::new(&store, &ctx.config).audit_all(&auditor)?;
    match format {
        Format::Text => print_summary(&summary),
        _ => output::json(&summary)?,
    }
    Ok(
        if summary.rule_errors > 0 || !summary.rule_problems.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        },
    )
}
