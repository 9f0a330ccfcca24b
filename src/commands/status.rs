use std::process::ExitCode;

use super::{short_time, Context};
use crate::output::{self, Format};

pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let (items, active, revisions) = store.counts()?;
    let bytes = store.database_size()?;
    let last = store.sweeps_page(None, 1)?.into_iter().next();
    let rules = store.rule_health()?;
    let broken: Vec<_> = rules.iter().filter(|r| !r.healthy()).collect();
    let unaudited = store.count_never_audited()?;
    match ctx.format()? {
        Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => {
            output::json(&serde_json::json!({
                "database": store.display_url(),
                "backend": store.backend().as_str(),
                "items": items,
                "active_items": active,
                "revisions": revisions,
                "database_bytes": bytes,
                "last_sweep": last,
                "items_unaudited": unaudited,
                "rules": rules,
            }))?
        }
        Format::Text => {
            println!(
                "database   {} ({})",
                store.display_url(),
                store.backend().as_str()
            );
            println!(
                "items      {items} ({active} active, {} deleted)",
                items - active
            );
            println!("revisions  {revisions}");
            println!("size       {:.1} MiB", bytes as f64 / 1_048_576.0);
            match last {
                Some(s) => println!(
                    "last sweep {} {} at {}: {} seen, {} errors",
                    s.id,
                    s.status,
                    short_time(&s.started_at),
                    s.items_seen,
                    s.errors
                ),
                None => println!("last sweep none yet: run `guardrail sweep --source PATH`"),
            }
            if unaudited > 0 {
                println!("unaudited  {unaudited} items not judged yet (the next sweep or `guardrail audit` judges them)");
            }
            println!(
                "rules      {} known, {} not judging as they should",
                rules.len(),
                broken.len()
            );
            for r in &broken {
                println!("  {} {}: {}", r.rule_id, r.status, r.message);
            }
        }
    }
    // A rule that does not judge is a problem scripts should see.
    Ok(if broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
