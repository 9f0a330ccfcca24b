//! One module per subcommand.

pub mod bench;
pub mod changes;
pub mod diff;
pub mod history;
pub mod items;
pub mod show;
pub mod status;
pub mod sweep;
pub mod sweeps;

use anyhow::Context as _;
use guardrail_storage::Store;

use crate::output::Format;

pub struct Context {
    pub database_url: String,
    pub format: Format,
}

impl Context {
    pub fn open_store(&self) -> anyhow::Result<Store> {
        Store::open(&self.database_url).with_context(|| {
            "opening the database (set --database or GUARDRAIL_DATABASE_URL)".to_owned()
        })
    }
}

/// Shortens a timestamp for tables.
pub fn short_time(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
