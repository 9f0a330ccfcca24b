use std::process::ExitCode;

use guardrail_storage::ItemFilter;

use super::{short_time, Context};
use crate::output::{self, Format, Table};

#[derive(clap::Args)]
pub struct Args {
    /// Resource type, e.g. AWS::EC2::SecurityGroup.
    #[arg(long = "type")]
    resource_type: Option<String>,
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    region: Option<String>,
    /// Part of the name.
    #[arg(long)]
    name: Option<String>,
    /// Include deleted items.
    #[arg(long)]
    deleted: bool,
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    #[arg(long, default_value_t = 0)]
    offset: i64,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let items = store.items(&ItemFilter {
        resource_type: a.resource_type,
        account: a.account,
        region: a.region,
        name: a.name,
        include_deleted: a.deleted,
        limit: a.limit,
        offset: a.offset,
    })?;
    super::note_if_cut(items.len(), a.limit, "items");
    match ctx.format()? {
        Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => {
            let rows: Vec<serde_json::Value> = items
                .iter()
                .map(|i| {
                    let mut v = serde_json::to_value(i).unwrap_or_default();
                    v["tags"] = i.tags_json();
                    v
                })
                .collect();
            output::json(&rows)?;
        }
        Format::Text => {
            let mut t = Table::new(&[
                "ID",
                "TYPE",
                "ACCOUNT",
                "REGION",
                "NAME",
                "RESOURCE ID",
                "VER",
                "STATE",
                "CHANGED",
            ]);
            for i in &items {
                t.row(vec![
                    i.id.to_string(),
                    i.resource_type.clone(),
                    i.account.clone(),
                    i.region.clone(),
                    i.name.clone().unwrap_or_default(),
                    i.resource_id.clone(),
                    i.version.to_string(),
                    if i.active { "active" } else { "deleted" }.into(),
                    short_time(&i.observed_at),
                ]);
            }
            t.print()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
