use std::process::ExitCode;

use super::{short_time, Context};
use crate::output::{self, Format, Table};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// Show one sweep with its errors.
    #[arg(long)]
    id: Option<i64>,
    /// Show the sweep jobs instead: one per source, or per account of a source over
    /// several; which worker runs each now, when it is next due, runs and takeovers.
    #[arg(long, conflicts_with = "id")]
    jobs: bool,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    if a.jobs {
        let jobs = store.jobs()?;
        match ctx.format()? {
            Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => output::json(&jobs)?,
            Format::Text => {
                let mut t = Table::new(&[
                    "JOB",
                    "NEXT DUE",
                    "RUNNING ON",
                    "RUNS",
                    "TAKEOVERS",
                    "LAST",
                    "LAST MESSAGE",
                ]);
                for j in &jobs {
                    t.row(vec![
                        j.job.clone(),
                        short_time(&j.due_at),
                        j.leased_by.clone().unwrap_or_else(|| "-".into()),
                        j.runs.to_string(),
                        j.takeovers.to_string(),
                        j.last_status.clone().unwrap_or_else(|| "-".into()),
                        j.last_message.clone().unwrap_or_default(),
                    ]);
                }
                t.print()?;
                if jobs.is_empty() {
                    println!("no jobs: `guardrail serve` or `guardrail worker` schedules the config file's [[sources]]");
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = a.id {
        let sweep = store
            .sweep(id)?
            .ok_or_else(|| anyhow::anyhow!("no sweep {id}; see `guardrail sweeps`"))?;
        let (errors, _) = super::collect_pages(0, None, |after, limit| {
            let page = store.sweep_errors_page(id, after, limit)?;
            let next = super::before_cursor(&page, limit, |e| e.id);
            Ok((page, next))
        })?;
        match ctx.format()? {
            Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => {
                output::json(&serde_json::json!({"sweep": sweep, "errors": errors}))?
            }
            Format::Text => {
                println!(
                    "sweep {} {} ({}): {}",
                    sweep.id,
                    sweep.status,
                    short_time(&sweep.started_at),
                    sweep.source
                );
                for e in &errors {
                    let scope = match (&e.resource_type, &e.account, &e.region) {
                        (Some(t), Some(a), Some(r)) => format!(" [{t} in {a}/{r}]"),
                        _ => String::new(),
                    };
                    println!(
                        "  - {}{}{}: {}",
                        e.origin,
                        e.item
                            .as_deref()
                            .map(|i| format!(": {i}"))
                            .unwrap_or_default(),
                        scope,
                        e.message
                    );
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (sweeps, _) = super::collect_pages(a.limit, None, |before, limit| {
        let page = store.sweeps_page(before, limit)?;
        let next = super::before_cursor(&page, limit, |s| s.id);
        Ok((page, next))
    })?;
    super::note_if_cut(sweeps.len(), a.limit, "sweeps");
    match ctx.format()? {
        Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => output::json(&sweeps)?,
        Format::Text => {
            let mut t = Table::new(&[
                "ID", "STARTED", "STATUS", "SEEN", "CREATED", "MODIFIED", "DELETED", "ERRORS",
                "SOURCE",
            ]);
            for s in &sweeps {
                t.row(vec![
                    s.id.to_string(),
                    short_time(&s.started_at),
                    s.status.clone(),
                    s.items_seen.to_string(),
                    s.created.to_string(),
                    s.modified.to_string(),
                    s.deleted.to_string(),
                    s.errors.to_string(),
                    s.source.clone(),
                ]);
            }
            t.print()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
