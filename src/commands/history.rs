use std::process::ExitCode;

use super::{short_time, Context};
use crate::output::{self, Format, Table};

#[derive(clap::Args)]
pub struct Args {
    /// Item id, ARN, resource id or name.
    item: String,
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let item = store.resolve_item(&a.item)?;
    let (revisions, _) = super::collect_pages(a.limit, None, |before, limit| {
        let page = store.revisions_page(item.id, before, limit)?;
        let next = super::before_cursor(&page, limit, |r| r.version);
        Ok((page, next))
    })?;
    super::note_if_cut(revisions.len(), a.limit, "revisions");
    match ctx.format()? {
        Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => {
            output::json(&serde_json::json!({"item": item, "revisions": revisions}))?
        }
        Format::Text => {
            println!("{} [item {}]", item.label(), item.id);
            if let Some(arn) = &item.arn {
                println!("{arn}");
            }
            let mut t = Table::new(&[
                "REV", "VERSION", "CHANGE", "CAUSE", "OBSERVED", "HASH", "ORIGIN", "BY",
            ]);
            for r in &revisions {
                t.row(vec![
                    r.id.to_string(),
                    format!("v{}", r.version),
                    r.change.to_string(),
                    r.cause.clone(),
                    short_time(&r.observed_at),
                    r.hash.chars().take(12).collect(),
                    r.origin.rsplit('/').next().unwrap_or(&r.origin).to_owned(),
                    guardrail_storage::actor_of(r.actor.as_deref())
                        .map(|a| a.label())
                        .unwrap_or_default(),
                ]);
            }
            t.print()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
