use std::process::ExitCode;

use anyhow::anyhow;
use guardrail_model::{diff, DiffOp};
use serde_json::Value;

use super::Context;
use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct Args {
    /// Item id, ARN, resource id or name.
    item: String,
    /// Older version (default: the one before --to).
    #[arg(long)]
    from: Option<i64>,
    /// Newer version (default: the latest).
    #[arg(long)]
    to: Option<i64>,
}

fn compact(v: &Option<Value>) -> String {
    match v {
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 200 {
                format!("{}…", s.chars().take(200).collect::<String>())
            } else {
                s
            }
        }
        None => String::new(),
    }
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let item = store.resolve_item(&a.item)?;
    let to_version = a.to.unwrap_or(item.version);
    let from_version = a.from.unwrap_or(to_version - 1);
    if from_version >= to_version {
        anyhow::bail!("--from ({from_version}) must be older than --to ({to_version})");
    }
    let load = |version: i64| -> anyhow::Result<Option<guardrail_storage::RevisionRow>> {
        if version < 1 {
            return Ok(None); // before the item existed
        }
        store
            .revision_by_version(item.id, version)?
            .map(Some)
            .ok_or_else(|| {
                anyhow!(
                    "{} has no version {version} (latest is v{}); see `guardrail history {}`",
                    item.label(),
                    item.version,
                    item.id
                )
            })
    };
    let document = |r: &Option<guardrail_storage::RevisionRow>| -> anyhow::Result<Value> {
        Ok(match r {
            Some(r) => r.document_json()?,
            None => Value::Null,
        })
    };
    let (older, newer) = (load(from_version)?, load(to_version)?);
    let entries = diff(&document(&older)?, &document(&newer)?);
    // Who made the newer version, when it is known (an event, or CloudTrail).
    let actor = newer.as_ref().and_then(|r| r.actor());
    match ctx.format()? {
        Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => {
            output::json(&serde_json::json!({
                "item": item, "from": from_version, "to": to_version, "changes": entries,
                "to_cause": newer.as_ref().map(|r| r.cause.clone()), "changed_by": actor,
            }))?
        }
        Format::Text => {
            println!(
                "{} [item {}]: v{from_version} → v{to_version}",
                item.label(),
                item.id
            );
            if let Some(r) = &newer {
                println!(
                    "  v{to_version}: {} {}, {}",
                    r.change,
                    r.observed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    match &actor {
                        Some(a) => format!("changed by {}", a.label()),
                        None => format!("cause {} (who made it is not known)", r.cause),
                    }
                );
            }
            if entries.is_empty() {
                println!("  no differences");
            }
            for e in &entries {
                match e.op {
                    DiffOp::Added => println!("+ {}: {}", e.path, compact(&e.new)),
                    DiffOp::Removed => println!("- {}: {}", e.path, compact(&e.old)),
                    DiffOp::Changed => {
                        println!("~ {}: {} → {}", e.path, compact(&e.old), compact(&e.new))
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
