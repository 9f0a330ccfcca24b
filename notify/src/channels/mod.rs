//! Every channel, one module each. Adding one is a file implementing [`Notifier`]
//! and one line in `channels!` below: the line names the `channel = "..."` value and
//! the module's config type, and makes it a variant of [`ChannelConfig`].

pub mod email;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use serde::Deserialize;

use crate::Notifier;

macro_rules! channels {
    ($($variant:ident($config:ty) = $name:literal,)+) => {
        /// A route's channel and its own settings, chosen by `channel = "..."`.
        #[derive(Debug, Clone, Deserialize, PartialEq)]
        #[serde(tag = "channel")]
        pub enum ChannelConfig {
            $(#[serde(rename = $name)] $variant($config),)+
        }

        /// The `channel` values, for messages.
        pub const NAMES: &[&str] = &[$($name),+];

        impl ChannelConfig {
            pub fn notifier(&self) -> &dyn Notifier {
                match self {
                    $(ChannelConfig::$variant(c) => c,)+
                }
            }
        }
    };
}

channels! {
    Slack(slack::SlackConfig) = "slack",
    Pagerduty(pagerduty::PagerdutyConfig) = "pagerduty",
    Webhook(webhook::WebhookConfig) = "webhook",
    Email(email::EmailConfig) = "email",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_channel_answers_to_its_name() {
        for name in NAMES {
            let c: ChannelConfig =
                serde_json::from_value(serde_json::json!({ "channel": name })).unwrap();
            assert_eq!(c.notifier().name(), *name);
        }
    }
}
