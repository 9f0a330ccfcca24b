//! Watchers: sources that snapshot cloud configuration into normalised items.
//!
//! A watcher knows one source and reports what it sees to a
//! [`guardrail_model::Collector`] as listings of observations. It never writes to the
//! cloud, and it says how complete each listing was: deletions are inferred from
//! complete listings only, by storage, never here.

pub mod aws;
pub mod config_deliveries;
pub mod normalize;

use guardrail_model::{CollectError, Collector};

/// A source of items.
pub trait Watcher {
    /// What is being watched, for logs and errors.
    fn describe(&self) -> String;
    /// Lists everything into `collector`. Problems with the input are reported through
    /// `collector.error` and do not stop the sweep; `Err` means the collector itself
    /// failed (storage unavailable) and the sweep must stop.
    fn sweep(
        &mut self,
        collector: &mut dyn Collector,
        progress: &dyn Progress,
    ) -> Result<(), CollectError>;
}

/// Progress reporting for long sweeps; every method defaults to doing nothing.
pub trait Progress {
    fn begin(&self, _units: u64) {}
    fn file(&self, _location: &str) {}
    fn item(&self) {}
    fn finish(&self) {}
    /// Nothing finished for `seconds`; `what` names what is still running. Called
    /// every [`WAITING_EVERY`] of silence, so a stalled endpoint is never silent.
    fn waiting(&self, what: &str, seconds: u64) {
        tracing::warn!(seconds, still_running = %what, "waiting on the source");
    }
}

/// How often a source that makes no progress says so.
pub const WAITING_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Reports nothing but stalls (as warnings in the log).
pub struct Quiet;

impl Progress for Quiet {}
