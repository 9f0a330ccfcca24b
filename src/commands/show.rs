use std::process::ExitCode;

use anyhow::anyhow;
use chrono::{DateTime, Utc};

use super::Context;
use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// Item id, ARN, resource id or name.
    item: String,
    /// The configuration in force at this time (RFC 3339, a date, or a duration ago
    /// such as 24h), instead of the latest.
    #[arg(long, conflicts_with = "version", value_parser = super::past_time)]
    at: Option<DateTime<Utc>>,
    /// A specific version.
    #[arg(long)]
    version: Option<i64>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let item = store.resolve_item(&a.item)?;
    let revision = match (a.at, a.version) {
        (Some(at), _) => store
            .revision_at(item.id, at)?
            .ok_or_else(|| anyhow!("{} did not exist yet at {at}", item.label()))?,
        (None, v) => {
            let v = v.unwrap_or(item.version);
            store
                .revision_by_version(item.id, v)?
                .ok_or_else(|| anyhow!("{} has no version {v}", item.label()))?
        }
    };
    // The stored document is JSON in both formats; text adds a header line on stderr.
    if ctx.format()? == output::Format::Text {
        eprintln!(
            "{} [item {}] v{} ({}, observed {})",
            item.label(),
            item.id,
            revision.version,
            revision.change,
            revision.observed_at
        );
    }
    output::json(&serde_json::json!({
        "item": item,
        "revision": revision,
        "document": revision.document_json()?,
        "ephemeral": serde_json::from_str::<serde_json::Value>(&revision.ephemeral).unwrap_or_default(),
    }))?;
    Ok(ExitCode::SUCCESS)
}
