//! Slack: Block Kit messages built with slack-morphism, posted with a bot token
//! (`chat.postMessage`, per-owner channels) or to an incoming webhook.

use std::collections::BTreeMap;

use async_trait::async_trait;
use guardrail_model::DiffEntry;
use guardrail_storage::ItemRow;
use serde::Deserialize;
use serde_json::{json, Value};
use slack_morphism::prelude::*;

use crate::notifier::{BaselineMessage, ChangeMessage, FindingMessage, Notifier, Outgoing};
use crate::render::{diff_lines, truncate, Links};
use crate::route::{Notice, Route, Secret};
use crate::send::{self, Http, SendError};

/// Slack's limits: header 150 characters, a section's text 3000.
const HEADER_MAX: usize = 150;
const TEXT_MAX: usize = 2900;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    #[serde(default)]
    pub slack_channel: Option<String>,
    /// Owner tag value → Slack channel; owners without an entry go to `slack_channel`.
    #[serde(default)]
    pub owner_channels: BTreeMap<String, String>,
    #[serde(default)]
    pub slack_token: Option<Secret>,
    #[serde(default)]
    pub slack_webhook_url: Option<Secret>,
    /// Another Slack API base (a test server, an enterprise proxy).
    #[serde(default)]
    pub slack_api_url: Option<String>,
}

#[async_trait]
impl Notifier for SlackConfig {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn validate(&self, _route: &Route) -> Result<(), String> {
        let ok = self.slack_webhook_url.is_some()
            || (self.slack_token.is_some()
                && (self.slack_channel.is_some() || !self.owner_channels.is_empty()));
        if ok {
            Ok(())
        } else {
            Err("a slack route needs slack_webhook_url = { env = \"...\" }, or slack_token = { env = \"...\" } with slack_channel".into())
        }
    }

    /// The owner's channel, else the route's.
    fn destination(&self, route: &Route, item: &ItemRow) -> Option<String> {
        route
            .owner(item)
            .and_then(|o| self.owner_channels.get(&o).cloned())
            .or_else(|| self.slack_channel.clone())
    }

    fn finding(&self, m: &FindingMessage) -> Value {
        json!({
            "channel": self.destination(m.route, m.item),
            "message": message(m.notice, m.finding, m.item, m.changes, m.actor, m.links),
        })
    }

    fn digest_entry(&self, m: &FindingMessage) -> Value {
        json!({
            "channel": self.destination(m.route, m.item),
            "score": m.finding.score,
            "line": crate::render::digest_line(m.notice, m.finding, m.item, m.links),
        })
    }

    fn digest_group(&self, payload: &Value) -> String {
        payload["channel"].as_str().unwrap_or_default().to_owned()
    }

    fn change(&self, m: &ChangeMessage) -> Option<Value> {
        Some(json!({
            "channel": self.destination(m.route, m.item),
            "message": change(m.revision.change, m.revision.version, m.item, m.changes, m.item_url),
        }))
    }

    fn baseline(&self, m: &BaselineMessage) -> Value {
        let lines: Vec<(i64, String)> = m.found.iter().map(|f| (f.score, f.line.clone())).collect();
        json!({
            "channel": m.destination,
            "message": summary(
                format!("[guardrail] {}", m.headline),
                format!("guardrail baseline: {} existing findings", lines.len()),
                format!("route `{}` · {}", m.route.name, m.headline),
                &lines,
            ),
        })
    }

    fn test(&self, route: &Route, _delivery_id: &str) -> Value {
        let text = "[guardrail] test notification: this route works";
        json!({
            "channel": self.slack_channel,
            "message": {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("*{text}*\nroute `{}`", route.name)}}]},
        })
    }

    async fn send(&self, http: &Http, out: &Outgoing<'_>) -> Result<(), SendError> {
        let (_, first) = out.first()?;
        let content: SlackMessageContent = if out.is_digest() {
            let mut lines = out.digest_lines();
            lines.sort_by_key(|l| std::cmp::Reverse(l.0));
            let (route, window) = (&out.route.name, out.window());
            summary(
                format!(
                    "[guardrail] {} findings for {route} since {window}",
                    lines.len()
                ),
                format!("guardrail digest: {} finding events", lines.len()),
                format!("route `{route}` · window from {window}"),
                &lines,
            )
        } else {
            serde_json::from_value(first["message"].clone()).map_err(|e| {
                SendError::Permanent(format!("stored Slack message is invalid: {e}"))
            })?
        };
        if self.slack_token.is_some() {
            let token = out.secret(self.slack_token.as_ref(), "slack_token")?;
            let channel = first["channel"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| self.slack_channel.clone())
                .ok_or_else(|| {
                    SendError::Permanent(format!(
                        "route {}: no Slack channel for this resource",
                        out.route.name
                    ))
                })?;
            send::slack_post(
                http,
                self.slack_api_url.as_deref(),
                &token,
                &channel,
                content,
            )
            .await
        } else {
            let url = out.secret(self.slack_webhook_url.as_ref(), "slack_webhook_url")?;
            send::slack_webhook(http, &url, content).await
        }
    }
}

fn headline(notice: Notice, f: &guardrail_storage::FindingRow) -> String {
    let icon = match (notice, f.score) {
        (Notice::Fixed, _) => ":white_check_mark:",
        (Notice::Justified, _) => ":memo:",
        (_, 9..) => ":rotating_light:",
        (_, 7..=8) => ":warning:",
        _ => ":information_source:",
    };
    let sev = f.severity.to_uppercase();
    truncate(
        &format!("{icon} {sev} ({}) {notice}: {}", f.score, f.title),
        HEADER_MAX,
    )
}

/// The "What changed" section for a diff, if there is one.
fn what_changed(diff: &[DiffEntry]) -> Option<SlackBlock> {
    let lines = diff_lines(diff);
    (!lines.is_empty()).then(|| {
        SlackSectionBlock::new()
            .with_text(md!(
                "*What changed*\n```{}```",
                truncate(&lines.join("\n"), TEXT_MAX - 40)
            ))
            .into()
    })
}

/// A button linking into the UI, when the URL is valid.
fn link_button(label: &str, action: &str, url: Option<&str>) -> Option<SlackActionBlockElement> {
    let url = url.and_then(|u| url::Url::parse(u).ok())?;
    Some(
        SlackBlockButtonElement::new(pt!("{}", label))
            .with_action_id(action.into())
            .with_url(url)
            .into(),
    )
}

/// One finding event as a Block Kit message.
pub fn message(
    notice: Notice,
    f: &guardrail_storage::FindingRow,
    item: &ItemRow,
    diff: &[DiffEntry],
    actor: Option<&guardrail_model::Actor>,
    links: &Links,
) -> SlackMessageContent {
    let resource = format!(
        "{} `{}`",
        item.resource_type,
        item.name.as_deref().unwrap_or(&item.resource_id)
    );
    let mut blocks: Vec<SlackBlock> = vec![
        SlackHeaderBlock::new(pt!("{}", headline(notice, f))).into(),
        SlackSectionBlock::new()
            .with_fields(vec![
                md!("*Severity*\n{} (score {})", f.severity, f.score),
                md!("*Account / region*\n{} / {}", item.account, item.region),
                md!("*Resource*\n{}", truncate(&resource, 500)),
                md!("*Rule*\n`{}`", f.rule_id),
            ])
            .into(),
    ];
    if !f.detail.is_empty() {
        blocks.push(
            SlackSectionBlock::new()
                .with_text(md!("{}", truncate(&f.detail, TEXT_MAX)))
                .into(),
        );
    }
    if let Some(a) = actor {
        blocks.push(
            SlackSectionBlock::new()
                .with_text(md!(
                    "*Changed by*\n{}",
                    truncate(&crate::render::actor_line(a), TEXT_MAX)
                ))
                .into(),
        );
    }
    blocks.extend(what_changed(diff));
    if !f.remediation.is_empty() && notice != Notice::Fixed {
        blocks.push(
            SlackSectionBlock::new()
                .with_text(md!("*Remediation*\n{}", truncate(&f.remediation, TEXT_MAX)))
                .into(),
        );
    }
    let buttons: Vec<SlackActionBlockElement> = [
        link_button("Open finding", "open-finding", links.finding.as_deref()),
        link_button("Resource history", "open-item", links.item.as_deref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !buttons.is_empty() {
        blocks.push(SlackActionsBlock::new(buttons).into());
    }
    SlackMessageContent::new()
        .with_text(format!(
            "[guardrail] {} {}: {} ({}/{})",
            f.severity, notice, f.title, item.account, item.region
        ))
        .with_blocks(blocks)
}

/// One message for many findings: a header, a context line and the first 15 lines
/// (digests and baselines).
fn summary(
    fallback: String,
    header: String,
    context: String,
    lines: &[(i64, String)],
) -> SlackMessageContent {
    let top: Vec<String> = lines.iter().take(15).map(|(_, l)| l.clone()).collect();
    let mut text = top.join("\n");
    if lines.len() > top.len() {
        text.push_str(&format!("\n… and {} more", lines.len() - top.len()));
    }
    SlackMessageContent::new()
        .with_text(fallback)
        .with_blocks(vec![
            SlackHeaderBlock::new(pt!("{}", truncate(&header, HEADER_MAX))).into(),
            SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                SlackBlockMarkDownText::new(context),
            )])
            .into(),
            SlackSectionBlock::new()
                .with_text(md!("{}", truncate(&text, TEXT_MAX)))
                .into(),
        ])
}

/// A changed item (the `changed` notice).
fn change(
    change: guardrail_model::ChangeKind,
    version: i64,
    item: &ItemRow,
    diff: &[DiffEntry],
    item_url: Option<&str>,
) -> SlackMessageContent {
    let name = item.name.as_deref().unwrap_or(&item.resource_id);
    let mut blocks: Vec<SlackBlock> = vec![
        SlackHeaderBlock::new(pt!(
            "{}",
            truncate(
                &format!(
                    ":pencil2: {} {} {change} (v{version})",
                    item.resource_type, name
                ),
                HEADER_MAX
            )
        ))
        .into(),
        SlackSectionBlock::new()
            .with_fields(vec![
                md!("*Account / region*\n{} / {}", item.account, item.region),
                md!("*Resource*\n`{}`", item.resource_id),
            ])
            .into(),
    ];
    blocks.extend(what_changed(diff));
    if let Some(button) = link_button("Resource history", "open-item", item_url) {
        blocks.push(SlackActionsBlock::new(vec![button]).into());
    }
    SlackMessageContent::new()
        .with_text(format!(
            "[guardrail] {} {name} {change} ({}/{})",
            item.resource_type, item.account, item.region
        ))
        .with_blocks(blocks)
}
