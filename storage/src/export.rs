//! Findings as other tools read them, one function per format: guardrail's own JSON
//! ([`finding_json`]), CSV rows ([`finding_csv_fields`]) and OCSF Compliance Findings
//! ([`to_ocsf`]). The CLI exports, the server's export route and the notifiers all
//! use these, so a finding reads the same everywhere.

use chrono::NaiveDateTime;
use guardrail_model::FindingState;

use crate::findings::FindingRow;
use crate::items::ItemRow;

/// OCSF version of [`to_ocsf`]'s output.
pub const OCSF_VERSION: &str = "1.1.0";

fn millis(t: &NaiveDateTime) -> i64 {
    t.and_utc().timestamp_millis()
}

/// A finding as an OCSF Compliance Finding (class 2003, OCSF 1.1.0). Guardrail's own
/// fields (score, state, justification) ride in `unmapped`.
pub fn to_ocsf(f: &FindingRow, item: &ItemRow) -> serde_json::Value {
    let (severity_id, severity) = match f.severity.as_str() {
        "info" => (1, "Informational"),
        "low" => (2, "Low"),
        "medium" => (3, "Medium"),
        "high" => (4, "High"),
        "critical" => (5, "Critical"),
        _ => (0, "Unknown"),
    };
    let (status_id, status) = match f.state {
        FindingState::Open if f.reopen_count > 0 => (2, "In Progress"),
        FindingState::Open => (1, "New"),
        FindingState::Justified | FindingState::Suppressed => (3, "Suppressed"),
        FindingState::Fixed => (4, "Resolved"),
    };
    let (activity_id, activity) = match (f.state, f.first_seen_at == f.last_seen_at) {
        (FindingState::Fixed, _) => (3, "Close"),
        (_, true) => (1, "Create"),
        _ => (2, "Update"),
    };
    serde_json::json!({
        "class_uid": 2003,
        "class_name": "Compliance Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": 2003 * 100 + activity_id,
        "time": millis(&f.last_seen_at),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "message": f.title,
        "metadata": {
            "version": OCSF_VERSION,
            // `cloud` comes from OCSF's cloud profile: a record that carries it says so.
            "profiles": ["cloud"],
            "uid": f.fingerprint,
            "product": {"name": "guardrail", "vendor_name": "guardrail", "version": env!("CARGO_PKG_VERSION")},
        },
        "finding_info": {
            "uid": f.fingerprint,
            "title": f.title,
            "desc": f.detail,
            "types": [f.rule_id],
            "created_time": millis(&f.first_seen_at),
            "first_seen_time": millis(&f.first_seen_at),
            "last_seen_time": millis(&f.last_seen_at),
            "analytic": {"uid": f.rule_id, "name": f.rule_id, "type_id": 1, "type": "Rule"},
        },
        "compliance": {
            // Required in 1.1.0: the standards of the controls the rule implements
            // (its `controls` meta), each control as a requirement; a rule mapped to
            // none is judged by the rule pack itself.
            "standards": standards(f),
            "requirements": f.control_list(),
            "control": f.control_list().first().copied().unwrap_or(&f.rule_id),
            "status_id": if f.state == FindingState::Fixed { 1 } else { 3 },
            "status": if f.state == FindingState::Fixed { "Pass" } else { "Fail" },
        },
        "remediation": {"desc": f.remediation},
        "cloud": {"provider": "AWS", "region": item.region, "account": {"uid": item.account, "type": "AWS Account", "type_id": 10}},
        // Class 2003 has one `resource` (resource_details); `resources` is not one of
        // its attributes in 1.1.0.
        "resource": {
            "uid": item.arn.clone().unwrap_or_else(|| item.resource_id.clone()),
            "name": item.name.clone().unwrap_or_else(|| item.resource_id.clone()),
            "type": item.resource_type,
            "region": item.region,
            "cloud_partition": "aws",
            "labels": [format!("resource_id:{}", item.resource_id)],
        },
        "unmapped": {
            "guardrail_id": f.id,
            "score": f.score,
            "rule_score": f.rule_score,
            "state": f.state,
            "key": f.finding_key,
            "kind": f.kind,
            "justification": f.justification.as_ref().map(|j| serde_json::json!({
                "by": f.justified_by, "reason": j, "until": f.justified_until.map(|u| u.and_utc().to_rfc3339()),
            })),
            "suppressed_by": f.suppressed_by,
        },
    })
}

/// The JSON shape of a finding in listings and exports.
/// The CSV export's columns, shared by the CLI and the server.
pub const FINDING_CSV_COLUMNS: [&str; 18] = [
    "id",
    "state",
    "score",
    "severity",
    "rule_id",
    "title",
    "account",
    "region",
    "resource_type",
    "resource_id",
    "resource_name",
    "arn",
    "first_seen_at",
    "last_seen_at",
    "justified_by",
    "justification",
    "justified_until",
    "fingerprint",
];

/// One finding as the fields of [`FINDING_CSV_COLUMNS`].
pub fn finding_csv_fields(f: &FindingRow, i: &ItemRow) -> [String; 18] {
    [
        f.id.to_string(),
        f.state.to_string(),
        f.score.to_string(),
        f.severity.clone(),
        f.rule_id.clone(),
        f.title.clone(),
        i.account.clone(),
        i.region.clone(),
        i.resource_type.clone(),
        i.resource_id.clone(),
        i.name.clone().unwrap_or_default(),
        i.arn.clone().unwrap_or_default(),
        f.first_seen_at.and_utc().to_rfc3339(),
        f.last_seen_at.and_utc().to_rfc3339(),
        f.justified_by.clone().unwrap_or_default(),
        f.justification.clone().unwrap_or_default(),
        f.justified_until
            .map(|t| t.and_utc().to_rfc3339())
            .unwrap_or_default(),
        f.fingerprint.clone(),
    ]
}

/// The standards a finding's controls belong to, by name.
fn standards(f: &FindingRow) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = f
        .control_list()
        .iter()
        .filter_map(|c| match c.split_once(':').map(|(fw, _)| fw) {
            Some("cis-aws-3.0") => Some("CIS AWS Foundations Benchmark v3.0.0"),
            Some("aws-fsbp") => Some("AWS Foundational Security Best Practices"),
            _ => None,
        })
        .collect();
    out.dedup();
    if out.is_empty() {
        out.push("guardrail rule pack");
    }
    out
}

pub fn finding_json(f: &FindingRow, i: &ItemRow) -> serde_json::Value {
    serde_json::json!({
        "id": f.id,
        "fingerprint": f.fingerprint,
        "rule_id": f.rule_id,
        "key": f.finding_key,
        "kind": f.kind,
        "state": f.state,
        "score": f.score,
        "rule_score": f.rule_score,
        "severity": f.severity,
        "title": f.title,
        "detail": f.detail,
        "remediation": f.remediation,
        "first_seen_at": f.first_seen_at.and_utc().to_rfc3339(),
        "last_seen_at": f.last_seen_at.and_utc().to_rfc3339(),
        "fixed_at": f.fixed_at.map(|t| t.and_utc().to_rfc3339()),
        "reopen_count": f.reopen_count,
        "justification": f.justification.as_ref().map(|j| serde_json::json!({
            "by": f.justified_by, "reason": j,
            "at": f.justified_at.map(|t| t.and_utc().to_rfc3339()),
            "until": f.justified_until.map(|t| t.and_utc().to_rfc3339()),
        })),
        "suppressed_by": f.suppressed_by,
        "controls": f.control_list(),
        "resource": {
            "item_id": i.id, "type": i.resource_type, "id": i.resource_id, "arn": i.arn,
            "name": i.name, "account": i.account, "region": i.region,
        },
    })
}
