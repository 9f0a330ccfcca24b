//! One module per subcommand.

pub mod accounts;
pub mod audit;
pub mod bench;
pub mod changes;
pub mod diff;
pub mod findings;
pub mod history;
pub mod items;
pub mod loadtest;
pub mod notify;
pub mod rules;
pub mod serve;
pub mod show;
pub mod status;
pub mod sweep;
pub mod sweeps;
pub mod token;
pub mod watch;

use anyhow::Context as _;
use guardrail_storage::Store;

use crate::output::Format;

pub struct Context {
    pub database_url: String,
    pub format: Format,
    pub rules_dir: std::path::PathBuf,
    pub config: crate::config::Config,
    /// The configuration file, re-read by the scheduler when it changes.
    pub config_path: Option<std::path::PathBuf>,
}

impl Context {
    /// Text or JSON; CSV and OCSF are export formats of `findings`.
    pub fn format(&self) -> anyhow::Result<Format> {
        match self.format {
            Format::Csv | Format::Ocsf => {
                anyhow::bail!("--format csv and --format ocsf are for `guardrail findings`; use text or json here")
            }
            f => Ok(f),
        }
    }

    pub fn auditor(&self) -> anyhow::Result<crate::audit::Auditor> {
        crate::audit::Auditor::new(&self.rules_dir, &self.config)
    }

    /// Opens the database, creating it if needed: for commands that write
    /// (sweep, watch, serve, token, notify).
    pub fn open_store(&self) -> anyhow::Result<Store> {
        Store::open(&self.database_url).with_context(|| {
            "opening the database (set --database or GUARDRAIL_DATABASE_URL)".to_owned()
        })
    }

    /// Opens a database that must exist: for commands that read what sweeps stored.
    pub fn open_existing_store(&self) -> anyhow::Result<Store> {
        Store::open_existing(&self.database_url).with_context(|| {
            "opening the database (set --database or GUARDRAIL_DATABASE_URL)".to_owned()
        })
    }
}

/// Shortens a timestamp for tables.
pub fn short_time(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
