//! The dashboard's grouped counts, computed in the database and kept for a few
//! seconds.
//!
//! The five aggregations cost ~150 ms together at 100k findings on PostgreSQL (the
//! owner count reads each item's tags); run on every dashboard view under load, they
//! made it the slowest page by far. So counts are kept:
//! - younger than [`SUMMARY_TTL`] and nothing changed: served as they are;
//! - older, but younger than [`SUMMARY_MAX_STALE`] and nothing changed: served while
//!   one background task recomputes them;
//! - after an audit finished in this process, or a justification made through this
//!   server: recomputed before they are served again (the server also starts that
//!   recount as soon as an audit finishes, see [`watch_audits`]), so nobody is shown
//!   counts from before a change this process made;
//! - older than [`SUMMARY_MAX_STALE`] (an idle server): recomputed before serving.
//!
//! One computation runs at a time; requests that need fresh counts wait for it
//! rather than start their own. Changes by other workers on a shared database show
//! within the TTL. Pages say when their counts were computed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use guardrail_storage::SummaryCounts;

use crate::{db, AppError, AppState};

/// Counts younger than this are served as they are.
pub const SUMMARY_TTL: Duration = Duration::from_secs(15);
/// Counts older than this are never served.
pub const SUMMARY_MAX_STALE: Duration = Duration::from_secs(60);

/// Grouped counts and when they were computed.
#[derive(Debug, Clone)]
pub struct CachedCounts {
    pub counts: Arc<SummaryCounts>,
    pub as_of: DateTime<Utc>,
}

#[derive(Clone)]
struct Entry {
    value: CachedCounts,
    at: Instant,
    /// The [`generation`] the computation started from.
    generation: u64,
}

#[derive(Default)]
pub(crate) struct SummaryCache {
    entry: Mutex<Option<Entry>>,
    /// Held by whoever is computing.
    computing: Arc<tokio::sync::Mutex<()>>,
    /// Justifications and unjustifications made through this server.
    writes: AtomicU64,
}

impl SummaryCache {
    /// Marks the counts stale: a finding changed state through this server.
    pub(crate) fn invalidate(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    fn kept(&self) -> Option<Entry> {
        self.entry.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Changes to findings this process knows of: its justifications and its audits.
/// Both counters only grow, so a larger sum means something changed since.
fn generation(state: &AppState) -> u64 {
    state.summary.writes.load(Ordering::SeqCst) + state.metrics.audits_run.load(Ordering::SeqCst)
}

/// The counts for a page: kept, kept while a refresh runs, or freshly computed.
pub(crate) async fn counts(state: &AppState) -> Result<CachedCounts, AppError> {
    let now = generation(state);
    if let Some(e) = state.summary.kept() {
        let age = e.at.elapsed();
        let unchanged = e.generation == now;
        if unchanged && age < SUMMARY_TTL {
            return Ok(e.value);
        }
        if unchanged && age < SUMMARY_MAX_STALE {
            if let Ok(guard) = state.summary.computing.clone().try_lock_owned() {
                let state = state.clone();
                tokio::spawn(async move {
                    let _computing = guard;
                    if let Err(e) = compute(&state).await {
                        tracing::warn!(error = %e.message(), "refreshing the dashboard counts failed; the kept ones are served until the next try");
                    }
                });
            }
            return Ok(e.value);
        }
    }
    fresh(state, now).await
}

/// Counts computed from `generation` on: waits for a computation under way (which
/// may be recent enough) or runs one.
async fn fresh(state: &AppState, generation: u64) -> Result<CachedCounts, AppError> {
    let _computing = state.summary.computing.lock().await;
    if let Some(e) = state.summary.kept() {
        if e.generation >= generation && e.at.elapsed() < SUMMARY_TTL {
            return Ok(e.value);
        }
    }
    compute(state).await
}

/// Counts at start, then again each time an audit of this process finishes, so the
/// dashboard after a sweep rarely waits for its recount.
pub async fn watch_audits(state: AppState) {
    loop {
        if let Err(e) = fresh(&state, generation(&state)).await {
            tracing::warn!(error = %e.message(), "computing the dashboard counts failed");
        }
        state.metrics.findings_changed.notified().await;
    }
}

async fn compute(state: &AppState) -> Result<CachedCounts, AppError> {
    // Read the generation first: a change during the computation leaves it stale.
    let generation = generation(state);
    let tag = state.settings.owner_tag.clone();
    let (as_of, started) = (Utc::now(), Instant::now());
    let counts = db(state, move |s| s.summary_counts(&tag)).await?;
    let value = CachedCounts {
        counts: Arc::new(counts),
        as_of,
    };
    *state
        .summary
        .entry
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(Entry {
        value: value.clone(),
        at: started,
        generation,
    });
    Ok(value)
}
