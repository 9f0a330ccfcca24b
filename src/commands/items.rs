use std::process::ExitCode;

use guardrail_storage::ItemQuery;

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
    /// Part of the name, ARN or resource id (any case).
    #[arg(long)]
    name: Option<String>,
    /// Include deleted items.
    #[arg(long)]
    deleted: bool,
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// Continue after an earlier listing that was cut (the item id its note gave).
    #[arg(long)]
    after: Option<i64>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let mut q = ItemQuery {
        text: a.name,
        resource_type: a.resource_type,
        account: a.account,
        region: a.region,
        include_deleted: a.deleted,
        ..ItemQuery::default()
    };
    let (items, next) = super::collect_pages(a.limit, a.after, |after, limit| {
        q.after_id = after;
        q.limit = limit;
        let page = store.items_page(&q)?;
        Ok((page.rows, page.next_cursor))
    })?;
    super::note_more(items.len(), "items", next);
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
