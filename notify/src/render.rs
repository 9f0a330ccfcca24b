//! Text pieces every channel shares: truncation, UI links, diff lines, the one-line
//! form of a finding. Each channel's own message shapes live in its module.

use guardrail_model::{DiffEntry, DiffOp};
use guardrail_storage::{FindingRow, ItemRow};
use serde_json::Value;

use crate::route::Notice;
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

/// One line of a digest for an event.
pub fn digest_line(notice: Notice, f: &FindingRow, item: &ItemRow, links: &Links) -> String {
    let what = match &links.finding {
        Some(url) => format!("<{url}|{}>", truncate(&f.title, 150)),
        None => truncate(&f.title, 150),
    };
    format!(
        "• *{}* ({}) {notice}: {what} — {}/{}",
        f.severity, f.score, item.account, item.region
    )
}

/// "Changed by …" for people, when the actor is known: principal, the session behind
/// an assumed role, source IP, user agent and the API call.
pub fn actor_line(a: &guardrail_model::Actor) -> String {
    let mut s = a.label();
    if let Some(call) = &a.event_name {
        s.push_str(&format!(" via {call}"));
    }
    if let Some(ua) = &a.user_agent {
        s.push_str(&format!(" ({})", truncate(ua, 80)));
    }
    if let Some(t) = a.event_time {
        s.push_str(&format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC")));
    }
    s
}

/// The actor as OCSF's `actor` object (user, session), for exports and webhooks.
pub fn ocsf_actor(a: &guardrail_model::Actor) -> serde_json::Value {
    serde_json::json!({
        "user": {"uid": a.principal, "type": a.principal_type, "name": a.session_name},
        "session": {"issuer": a.session_issuer},
        "app_name": a.user_agent,
    })
}
