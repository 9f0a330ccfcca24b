//! What each channel receives, rendered once when a notification is queued (so every
//! retry sends the same thing) and stored without secrets.

use guardrail_model::{DiffEntry, DiffOp};
use guardrail_storage::{finding_json, to_ocsf, FindingRow, ItemRow};
use serde_json::{json, Value};
use slack_morphism::prelude::*;

use crate::routes::Route;

/// Slack's limits: header 150 characters, a section's text 3000.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_TEXT_MAX: usize = 2900;
/// Diff lines shown in a message; the rest is summarised.
const DIFF_LINES: usize = 12;

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!(
            "{}…",
            s.chars().take(max.saturating_sub(1)).collect::<String>()
        )
    }
}

/// Links into the UI for a finding and its item, when a base URL is configured.
pub struct Links {
    pub finding: Option<String>,
    pub item: Option<String>,
}

impl Links {
    pub fn new(base: Option<&str>, f: &FindingRow) -> Links {
        let base = base.map(|b| b.trim_end_matches('/').to_owned());
        Links {
            finding: base.as_ref().map(|b| format!("{b}/findings/{}", f.id)),
            item: base.as_ref().map(|b| format!("{b}/items/{}", f.item_id)),
        }
    }
}

/// The diff as short text lines, trimmed.
pub fn diff_lines(diff: &[DiffEntry]) -> Vec<String> {
    let v =
        |x: &Option<Value>| truncate(&x.as_ref().map(|v| v.to_string()).unwrap_or_default(), 160);
    let mut out: Vec<String> = diff
        .iter()
        .take(DIFF_LINES)
        .map(|e| match e.op {
            DiffOp::Added => format!("+ {}: {}", e.path, v(&e.new)),
            DiffOp::Removed => format!("- {}: {}", e.path, v(&e.old)),
            DiffOp::Changed => format!("~ {}: {} → {}", e.path, v(&e.old), v(&e.new)),
        })
        .collect();
    if diff.len() > DIFF_LINES {
        out.push(format!("… and {} more changes", diff.len() - DIFF_LINES));
    }
    out
}

fn headline(event: &str, f: &FindingRow) -> String {
    let icon = match (event, f.score) {
        ("fixed", _) => ":white_check_mark:",
        ("justified", _) => ":memo:",
        (_, 9..) => ":rotating_light:",
        (_, 7..=8) => ":warning:",
        _ => ":information_source:",
    };
    let sev = f.severity.to_uppercase();
    truncate(
        &format!("{icon} {sev} ({}) {event}: {}", f.score, f.title),
        SLACK_HEADER_MAX,
    )
}

/// The "What changed" section for a diff, if there is one.
fn what_changed(diff: &[DiffEntry]) -> Option<SlackBlock> {
    let lines = diff_lines(diff);
    (!lines.is_empty()).then(|| {
        SlackSectionBlock::new()
            .with_text(md!(
                "*What changed*\n```{}```",
                truncate(&lines.join("\n"), SLACK_TEXT_MAX - 40)
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

/// A Slack message built with slack-morphism's Block Kit types.
pub fn slack_message(
    event: &str,
    f: &FindingRow,
    item: &ItemRow,
    diff: &[DiffEntry],
    links: &Links,
) -> SlackMessageContent {
    let resource = format!(
        "{} `{}`",
        item.resource_type,
        item.name.as_deref().unwrap_or(&item.resource_id)
    );
    let mut blocks: Vec<SlackBlock> = vec![
        SlackHeaderBlock::new(pt!("{}", headline(event, f))).into(),
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
                .with_text(md!("{}", truncate(&f.detail, SLACK_TEXT_MAX)))
                .into(),
        );
    }
    blocks.extend(what_changed(diff));
    if !f.remediation.is_empty() && event != "fixed" {
        blocks.push(
            SlackSectionBlock::new()
                .with_text(md!(
                    "*Remediation*\n{}",
                    truncate(&f.remediation, SLACK_TEXT_MAX)
                ))
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
            f.severity, event, f.title, item.account, item.region
        ))
        .with_blocks(blocks)
}

/// A digest: one message for many events, the highest scores first.
pub fn slack_digest(route: &str, lines: &[(i64, String)], window: &str) -> SlackMessageContent {
    let mut sorted = lines.to_vec();
    sorted.sort_by_key(|l| std::cmp::Reverse(l.0));
    slack_summary(
        format!(
            "[guardrail] {} findings for {route} since {window}",
            lines.len()
        ),
        format!("guardrail digest: {} finding events", lines.len()),
        format!("route `{route}` · window from {window}"),
        &sorted,
    )
}

/// The baseline summary: what a first sweep found, in one message (`lines` already
/// sorted, highest score first).
pub fn slack_baseline(route: &str, headline: &str, lines: &[(i64, String)]) -> SlackMessageContent {
    slack_summary(
        format!("[guardrail] {headline}"),
        format!("guardrail baseline: {} existing findings", lines.len()),
        format!("route `{route}` · {headline}"),
        lines,
    )
}

/// One message for many findings: a header, a context line and the first 15 lines.
fn slack_summary(
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
            SlackHeaderBlock::new(pt!("{}", truncate(&header, SLACK_HEADER_MAX))).into(),
            SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                SlackBlockMarkDownText::new(context),
            )])
            .into(),
            SlackSectionBlock::new()
                .with_text(md!("{}", truncate(&text, SLACK_TEXT_MAX)))
                .into(),
        ])
}

/// One line of a digest for an event.
pub fn digest_line(event: &str, f: &FindingRow, item: &ItemRow, links: &Links) -> String {
    let what = match &links.finding {
        Some(url) => format!("<{url}|{}>", truncate(&f.title, 150)),
        None => truncate(&f.title, 150),
    };
    format!(
        "• *{}* ({}) {event}: {what} — {}/{}",
        f.severity, f.score, item.account, item.region
    )
}

/// PagerDuty Events API v2 severity for a score.
pub fn pagerduty_severity(score: i64) -> &'static str {
    match score {
        9.. => "critical",
        7..=8 => "error",
        4..=6 => "warning",
        _ => "info",
    }
}

/// A PagerDuty event without its routing key (added at send time). Opened and
/// reopened findings trigger; fixed and justified ones resolve. The dedup key is the
/// finding's fingerprint, so PagerDuty folds repeats into one incident.
pub fn pagerduty_event(
    event: &str,
    f: &FindingRow,
    item: &ItemRow,
    diff: &[DiffEntry],
    links: &Links,
) -> Value {
    let action = match event {
        "fixed" | "justified" => "resolve",
        _ => "trigger",
    };
    if action == "resolve" {
        return json!({"event_action": "resolve", "dedup_key": f.fingerprint});
    }
    let mut e = json!({
        "event_action": "trigger",
        "dedup_key": f.fingerprint,
        "client": "guardrail",
        "payload": {
            "summary": truncate(&format!("[guardrail] {} ({}/{})", f.title, item.account, item.region), 1024),
            "source": item.arn.clone().unwrap_or_else(|| item.resource_id.clone()),
            "severity": pagerduty_severity(f.score),
            "component": item.resource_type,
            "group": item.account,
            "class": f.rule_id,
            "custom_details": {
                "finding": finding_json(f, item),
                "event": event,
                "what_changed": diff_lines(diff),
            },
        },
    });
    if let Some(url) = &links.finding {
        e["links"] = json!([{"href": url, "text": "Finding in guardrail"}]);
        e["client_url"] = json!(url);
    }
    e
}

/// The webhook body: the finding in OCSF form plus guardrail's own fields.
pub fn webhook_body(
    route: &Route,
    event: &str,
    delivery: &str,
    f: &FindingRow,
    item: &ItemRow,
    diff: &[DiffEntry],
    links: &Links,
) -> Value {
    json!({
        "delivery_id": delivery,
        "event": event,
        "route": route.name,
        "ocsf": to_ocsf(f, item),
        "guardrail": {
            "finding": finding_json(f, item),
            "what_changed": diff,
            "links": {"finding": links.finding, "item": links.item},
        },
    })
}

/// A Slack message for a changed item (the `changed` event).
pub fn slack_change(
    change: &str,
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
                SLACK_HEADER_MAX
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
