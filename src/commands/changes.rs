use std::process::ExitCode;

use chrono::{DateTime, Utc};
use guardrail_model::ChangeKind;

use super::{short_time, Context};
use crate::output::{self, Format, Table};

#[derive(clap::Args)]
pub struct Args {
    /// The sweep whose changes to list (default: the latest sweep).
    #[arg(long, conflicts_with = "since")]
    sweep: Option<i64>,
    /// List changes observed since this time (RFC 3339, a date, or a duration ago such
    /// as 24h) instead.
    #[arg(long, value_parser = super::past_time)]
    since: Option<DateTime<Utc>>,
    /// Only changes made by this principal (any part of its ARN, the role behind a
    /// session, the session name or the source IP), e.g. `--actor alice --since 24h`.
    #[arg(long, conflicts_with = "sweep")]
    actor: Option<String>,
    #[arg(long, default_value_t = 500)]
    limit: i64,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let rows = match (a.since, a.sweep) {
        (Some(since), _) => store.changes_since(since, a.actor.as_deref(), a.limit)?,
        // Who did what, over all that is stored.
        (None, _) if a.actor.is_some() => {
            store.changes_since(DateTime::<Utc>::UNIX_EPOCH, a.actor.as_deref(), a.limit)?
        }
        (None, Some(id)) => store.sweep_changes(id, 0, a.limit, true)?,
        (None, None) => match store.sweeps_page(None, 1)?.first() {
            Some(last) => store.sweep_changes(last.id, 0, a.limit, true)?,
            None => Vec::new(),
        },
    };
    super::note_if_cut(rows.len(), a.limit, "changes");
    // One line per change, with how many paths differ from the previous version:
    // one extra revision read per change, never a whole history.
    let mut out = Vec::with_capacity(rows.len());
    for (rev, item) in &rows {
        let paths = if rev.change == ChangeKind::Modified {
            store.diff_with_previous(rev)?.len()
        } else {
            0
        };
        out.push((rev, item, paths));
    }
    match ctx.format()? {
        Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => {
            let list: Vec<serde_json::Value> = out
                .iter()
                .map(|(rev, item, paths)| serde_json::json!({"revision": rev, "item": item, "changed_paths": paths}))
                .collect();
            output::json(&list)?;
        }
        Format::Text => {
            let mut t = Table::new(&[
                "ITEM", "CHANGE", "VER", "OBSERVED", "PATHS", "BY", "RESOURCE",
            ]);
            for (rev, item, paths) in &out {
                t.row(vec![
                    item.id.to_string(),
                    rev.change.to_string(),
                    format!("v{}", rev.version),
                    short_time(&rev.observed_at),
                    if *paths > 0 {
                        paths.to_string()
                    } else {
                        String::new()
                    },
                    rev.actor().map(|a| a.label()).unwrap_or_default(),
                    item.label(),
                ]);
            }
            t.print()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
