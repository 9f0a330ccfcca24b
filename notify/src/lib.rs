//! Notifiers: finding events → routes → durable outbox → Slack, PagerDuty, webhooks,
//! e-mail.
//!
//! Sweeps never send: they only record finding events. [`route_events`] (`queue.rs`)
//! turns new events into outbox rows, each rendered by its route's channel;
//! [`dispatch_once`] (`dispatch.rs`) delivers due rows with retries and capped
//! exponential backoff. A receiver that is down loses nothing, and a re-sweep that
//! changes nothing notifies nobody.
//!
//! A channel is one module in `channels/` implementing [`Notifier`], registered by
//! one line in `channels!`.

pub mod channels;
pub mod dispatch;
pub mod notifier;
pub mod queue;
pub mod render;
pub mod route;
pub mod send;

pub use channels::ChannelConfig;
pub use dispatch::{dispatch_once, DispatchSummary};
pub use notifier::Notifier;
pub use queue::{route_events, route_events_as, Delivery, RouteSummary};
pub use route::{Notice, Route, Secret};
pub use send::{install_crypto_provider, signature, Http};

use serde::Deserialize;

fn d_initial() -> u64 {
    5
}
fn d_max() -> u64 {
    600
}
fn d_give_up() -> u64 {
    24 * 3600
}
fn d_timeout() -> u64 {
    10
}
fn d_lease() -> u64 {
    120
}

/// `[notify]` in the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Base URL of the web UI, for links in messages.
    #[serde(default)]
    pub ui_base_url: Option<String>,
    /// First retry delay; doubles per attempt up to `retry_max_seconds`.
    #[serde(default = "d_initial")]
    pub retry_initial_seconds: u64,
    #[serde(default = "d_max")]
    pub retry_max_seconds: u64,
    /// After this long undelivered, a notification is given up (and kept, visible).
    #[serde(default = "d_give_up")]
    pub give_up_after_seconds: u64,
    #[serde(default = "d_timeout")]
    pub timeout_seconds: u64,
    /// How long a dispatcher owns a row it is sending; a crashed dispatcher's rows are
    /// picked up again after it.
    #[serde(default = "d_lease")]
    pub lease_seconds: u64,
    #[serde(default)]
    pub routes: Vec<Route>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            ui_base_url: None,
            retry_initial_seconds: d_initial(),
            retry_max_seconds: d_max(),
            give_up_after_seconds: d_give_up(),
            timeout_seconds: d_timeout(),
            lease_seconds: d_lease(),
            routes: Vec::new(),
        }
    }
}

impl NotifySettings {
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for r in &self.routes {
            r.validate()?;
            if !names.insert(&r.name) {
                return Err(format!("notify.routes: two routes are named {:?}", r.name));
            }
        }
        if self.retry_initial_seconds == 0 || self.timeout_seconds == 0 || self.lease_seconds == 0 {
            return Err("notify: retry_initial_seconds, timeout_seconds and lease_seconds must be at least 1".into());
        }
        if let Some(u) = &self.ui_base_url {
            url::Url::parse(u).map_err(|e| format!("notify.ui_base_url {u:?}: {e}"))?;
        }
        Ok(())
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }
}
