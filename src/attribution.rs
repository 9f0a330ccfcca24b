//! Who made the changes a sweep found. An event-driven change carries its actor; a
//! change a sweep finds does not, so after each AWS sweep CloudTrail is asked
//! (`LookupEvents`, read-only) for the item within the window between the version
//! before and the one found. CloudTrail delivers events minutes late, so a change is
//! asked about on up to [`MAX_LOOKUPS`] sweeps before it is left without an actor; and
//! it answers two calls a second per account and region, so a pass asks about at most
//! [`PER_PASS`] changes, spaced out.

use std::time::Duration;

use chrono::Utc;
use guardrail_storage::Store;
use guardrail_watchers::aws::actors::{lookup, lookup_name};
use guardrail_watchers::aws::{AwsSweep, AwsTarget};

use crate::config::Config;

pub const MAX_LOOKUPS: i32 = 3;
const PER_PASS: i64 = 20;
/// CloudTrail's LookupEvents allows two calls a second per account and region.
const SPACING: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Attribution {
    pub asked: u64,
    pub found: u64,
    /// Why the pass stopped early (CloudTrail refused or failed), once.
    pub problem: Option<String>,
}

/// Looks up the actors of recent sweep-found changes of `target`'s accounts, after
/// sweep `sweep_id`; after a source's `baseline` sweep, nothing of it is looked up.
pub fn attribute_changes(
    store: &Store,
    config: &Config,
    target: AwsTarget,
    sweep_id: i64,
    baseline: bool,
) -> anyhow::Result<Attribution> {
    let mut done = Attribution::default();
    if baseline {
        store.settle_attribution(sweep_id, MAX_LOOKUPS)?;
    }
    if !config.aws.lookup_actors {
        return Ok(done);
    }
    let since = Utc::now() - chrono::Duration::days(1);
    let changes = store.unattributed_changes(since, MAX_LOOKUPS, PER_PASS)?;
    if changes.is_empty() {
        return Ok(done);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sweep = AwsSweep::new(target).map_err(anyhow::Error::msg)?;
    let (contexts, _problems) = rt.block_on(sweep.event_contexts());
    for (i, (rev, item, before)) in changes.iter().enumerate() {
        // Global items' calls are recorded in us-east-1.
        let region = if item.region == "global" {
            "us-east-1"
        } else {
            &item.region
        };
        let Some(ctx) = contexts.context(&item.account, region) else {
            continue; // an account this source does not enter
        };
        if i > 0 {
            std::thread::sleep(SPACING);
        }
        let to = rev.observed_at.and_utc();
        let from = before
            .map(|b| b.and_utc())
            .unwrap_or(to - chrono::Duration::days(1));
        let name = lookup_name(
            &item.resource_type,
            &item.resource_id,
            item.name.as_deref(),
            item.arn.as_deref(),
        );
        done.asked += 1;
        match rt.block_on(lookup(&ctx, name, from, to)) {
            Ok(actor) => {
                done.found += u64::from(actor.is_some());
                store.attribute_revision(rev.id, actor.as_ref())?;
            }
            Err(e) => {
                // Not counted as an answer: the change is asked about again next time.
                done.problem = Some(format!(
                    "{e} (who made the changes is left unknown; allow cloudtrail:LookupEvents, or set [aws] lookup_actors = false)"
                ));
                break;
            }
        }
    }
    Ok(done)
}

/// Logs a pass's outcome; an error here never fails the sweep it follows.
pub fn say(outcome: anyhow::Result<Attribution>) {
    match outcome {
        Ok(a) if a.problem.is_some() => {
            tracing::warn!(asked = a.asked, found = a.found, problem = ?a.problem, "CloudTrail actor lookup stopped");
        }
        Ok(a) if a.asked > 0 => {
            tracing::info!(
                asked = a.asked,
                found = a.found,
                "CloudTrail actors looked up"
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "CloudTrail actor lookup failed; the changes stay without an actor");
        }
    }
}
