//! The reference corpus: policy cases with the verdicts a reviewer would sign, kept in
//! `auditors/corpus/*.json` and run in CI (`guardrail policy corpus`, and the test
//! below). Each case states every verdict; an omitted verdict means "no" (not
//! internet-accessible, no other account, not admin, no escalation path, no
//! service-wide grant), so a case checks all five, not only the one it is about.
//!
//! A case says where its expectation comes from (`source`): AWS's documentation of
//! policy evaluation, or a public policy analyser's test suite, read for the fact it
//! asserts and rewritten as our own case. Where that tool's verdict is wrong by AWS's
//! evaluation logic, `disputes` records what it says and why we differ; the report
//! counts those separately from our own agreement.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::helpers::policy::{Boundary, Policy};
use crate::helpers::privesc;

/// The five verdicts, in the order the report prints them.
pub const VERDICTS: [&str; 5] = [
    "internet_accessible",
    "cross_account",
    "admin",
    "privilege_escalation",
    "full_service_access",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// identity, resource or trust: what kind of document this is (informational;
    /// the analysis reads the document itself).
    pub kind: String,
    /// The account owning the policy (default 111122223333).
    #[serde(default = "own_account")]
    pub account: String,
    /// Account classifications (`ours`, `friendly`, `third_party`); others are unknown.
    #[serde(default)]
    pub accounts: BTreeMap<String, String>,
    #[serde(default)]
    pub boundary: Boundary,
    pub policy: Value,
    pub expect: Verdicts,
    /// Where the expectation comes from: `aws-docs: <page>`, `<tool>: <test>`, or
    /// `construct: <what>` for cases written for a construct of the analysis.
    pub source: String,
    #[serde(default)]
    pub disputes: Vec<Dispute>,
}

fn own_account() -> String {
    "111122223333".into()
}

/// What a public tool asserts for this case and why, by AWS's logic, it is wrong.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dispute {
    pub tool: String,
    pub says: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Verdicts {
    pub internet_accessible: bool,
    /// Other accounts given access, each `account:classification`, sorted.
    pub cross_account: Vec<String>,
    pub admin: bool,
    /// Catalogue ids (`auditors/privilege_escalation.json`), sorted; `["all"]` is
    /// every catalogued path (what `*:*` grants).
    pub privilege_escalation: Vec<String>,
    /// Services granted in full on every resource (`s3`), sorted; `*:*` is `admin`.
    pub full_service_access: Vec<String>,
}

impl Verdicts {
    fn normalised(mut self) -> Verdicts {
        if self.privilege_escalation.iter().any(|p| p.trim() == "all") {
            self.privilege_escalation = privesc::catalogue()
                .map(|c| c.iter().map(|p| p.id.clone()).collect())
                .unwrap_or_default();
        }
        for list in [
            &mut self.cross_account,
            &mut self.privilege_escalation,
            &mut self.full_service_access,
        ] {
            for v in list.iter_mut() {
                *v = v.trim().to_ascii_lowercase();
            }
            list.sort();
            list.dedup();
        }
        self
    }

    fn field(&self, verdict: &str) -> String {
        match verdict {
            "internet_accessible" => self.internet_accessible.to_string(),
            "cross_account" => format!("{:?}", self.cross_account),
            "admin" => self.admin.to_string(),
            "privilege_escalation" => format!("{:?}", self.privilege_escalation),
            _ => format!("{:?}", self.full_service_access),
        }
    }
}

/// guardrail's verdicts on one case, from the same helpers the rules call.
pub fn judge(case: &Case) -> Result<Verdicts, String> {
    let decoded = guardrail_model::policy::decode_policy_value(&case.policy)
        .map_err(|e| format!("not a policy document: {e}"))?;
    let mut policy = Policy::parse(&decoded)?;
    policy.boundary = case.boundary.clone();
    let classify = |account: &str| {
        case.accounts
            .get(account)
            .map(String::as_str)
            .filter(|c| matches!(*c, "ours" | "friendly" | "third_party"))
            .unwrap_or("unknown")
            .to_owned()
    };
    let cross_account = policy
        .cross_account_principals(&case.account)
        .into_iter()
        .filter_map(|p| p.account)
        .map(|a| format!("{a}:{}", classify(&a)))
        .collect();
    let admin = !policy.full_access_statements("*").is_empty()
        || policy
            .not_action_grants()
            .iter()
            .any(|g| g.admin_equivalent);
    let privilege_escalation = privesc::escalation_paths(&policy, &case.account)?
        .into_iter()
        .map(|g| g.path.id.clone())
        .collect();
    // Services to ask about: those the policy names with a service-wide pattern, and
    // those the case expects (a NotAction grant names none of what it leaves).
    let mut services: BTreeSet<String> = policy
        .allowed_actions()
        .iter()
        .filter_map(|a| a.trim().strip_suffix(":*").map(str::to_ascii_lowercase))
        .filter(|s| !s.contains(['*', '?']))
        .collect();
    services.extend(
        case.expect
            .full_service_access
            .iter()
            .map(|s| s.to_ascii_lowercase()),
    );
    let full_service_access = services
        .into_iter()
        .filter(|s| !policy.full_access_statements(s).is_empty())
        .collect();
    Ok(Verdicts {
        internet_accessible: !policy.internet_accessible_statements().is_empty(),
        cross_account,
        admin,
        privilege_escalation,
        full_service_access,
    }
    .normalised())
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    pub file: String,
    pub name: String,
    pub source: String,
    /// Verdicts where guardrail and the expectation differ: (verdict, expected, got).
    pub disagreements: Vec<(String, String, String)>,
    pub error: Option<String>,
    pub disputes: Vec<Dispute>,
}

/// Agreement per verdict, per source family, and the public verdicts we dispute.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub cases: usize,
    /// verdict → (cases where guardrail agrees, cases)
    pub by_verdict: BTreeMap<String, (usize, usize)>,
    /// verdict → cases whose expectation is "yes" (positive findings)
    pub positives: BTreeMap<String, usize>,
    /// source family (`aws-docs`, `construct`, a tool's name) → (agreeing cases, cases)
    pub by_source: BTreeMap<String, (usize, usize)>,
    pub disputed: usize,
    pub outcomes: Vec<CaseOutcome>,
}

impl Report {
    pub fn failures(&self) -> Vec<&CaseOutcome> {
        self.outcomes
            .iter()
            .filter(|o| o.error.is_some() || !o.disagreements.is_empty())
            .collect()
    }

    /// The agreement table, as README shows it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{} cases, {} verdicts each\n\n| verdict | cases asserting yes | guardrail agrees |\n|---|---:|---:|\n",
            self.cases,
            VERDICTS.len()
        ));
        for v in VERDICTS {
            let (agree, total) = self.by_verdict.get(v).copied().unwrap_or_default();
            out.push_str(&format!(
                "| {v} | {} | {agree}/{total} |\n",
                self.positives.get(v).copied().unwrap_or_default()
            ));
        }
        out.push_str("\n| source of the expectation | cases | guardrail agrees on every verdict |\n|---|---:|---:|\n");
        for (source, (agree, total)) in &self.by_source {
            out.push_str(&format!("| {source} | {total} | {agree}/{total} |\n"));
        }
        out.push_str(&format!(
            "\nPublic tools' verdicts disputed by AWS's evaluation logic: {} (each case says why)\n",
            self.disputed
        ));
        for o in self.failures() {
            match &o.error {
                Some(e) => out.push_str(&format!("FAILED {} / {}: {e}\n", o.file, o.name)),
                None => {
                    for (verdict, want, got) in &o.disagreements {
                        out.push_str(&format!(
                            "DISAGREES {} / {}: {verdict} expected {want}, guardrail says {got}\n",
                            o.file, o.name
                        ));
                    }
                }
            }
        }
        out
    }
}

fn source_family(source: &str) -> String {
    source
        .split_once(':')
        .map_or(source, |(family, _)| family)
        .trim()
        .to_ascii_lowercase()
}

/// Runs every `*.json` corpus file in `dir` (sorted by name).
pub fn run(dir: &Path) -> Result<Report, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading the corpus {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut report = Report::default();
    let mut names = BTreeSet::new();
    for path in files {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let cases: Vec<Case> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a list of corpus cases: {e} (see auditors/src/corpus.rs)",
                path.display()
            )
        })?;
        for case in cases {
            if !names.insert(case.name.clone()) {
                return Err(format!(
                    "{}: case name {:?} is used twice; names identify cases",
                    path.display(),
                    case.name
                ));
            }
            report.add(&file, case);
        }
    }
    Ok(report)
}

impl Report {
    fn add(&mut self, file: &str, case: Case) {
        self.cases += 1;
        self.disputed += case.disputes.len();
        let expected = case.expect.clone().normalised();
        let mut outcome = CaseOutcome {
            file: file.to_owned(),
            name: case.name.clone(),
            source: case.source.clone(),
            disagreements: Vec::new(),
            error: None,
            disputes: case.disputes.clone(),
        };
        let positive = |v: &str| match v {
            "internet_accessible" => expected.internet_accessible,
            "cross_account" => !expected.cross_account.is_empty(),
            "admin" => expected.admin,
            "privilege_escalation" => !expected.privilege_escalation.is_empty(),
            _ => !expected.full_service_access.is_empty(),
        };
        for v in VERDICTS {
            if positive(v) {
                *self.positives.entry(v.to_owned()).or_default() += 1;
            }
        }
        match judge(&case) {
            Err(e) => outcome.error = Some(e),
            Ok(got) => {
                for v in VERDICTS {
                    let entry = self.by_verdict.entry(v.to_owned()).or_default();
                    entry.1 += 1;
                    if expected.field(v) == got.field(v) {
                        entry.0 += 1;
                    } else {
                        outcome
                            .disagreements
                            .push((v.to_owned(), expected.field(v), got.field(v)));
                    }
                }
            }
        }
        let agrees = outcome.error.is_none() && outcome.disagreements.is_empty();
        let entry = self
            .by_source
            .entry(source_family(&case.source))
            .or_default();
        entry.1 += 1;
        if agrees {
            entry.0 += 1;
        }
        self.outcomes.push(outcome);
    }
}

/// Where the corpus lives in the source tree.
pub fn default_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_agrees_with_every_expected_verdict() {
        let report = run(&default_dir()).expect("the corpus reads");
        let failures = report.failures();
        assert!(
            failures.is_empty(),
            "the corpus disagrees:\n{}",
            report.to_text()
        );
        assert!(
            report.cases >= 300,
            "the corpus must hold at least 300 cases, has {}",
            report.cases
        );
    }

    #[test]
    fn a_wrong_expectation_is_reported_with_both_verdicts() {
        let case: Case = serde_json::from_value(serde_json::json!({
            "name": "wrong on purpose", "kind": "identity", "source": "construct: test",
            "policy": {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}},
            "expect": {"admin": false, "privilege_escalation": ["all"]}
        }))
        .unwrap();
        let mut report = Report::default();
        report.add("t.json", case);
        let f = report.failures();
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].disagreements,
            vec![("admin".to_owned(), "false".to_owned(), "true".to_owned())]
        );
        assert!(report
            .to_text()
            .contains("admin expected false, guardrail says true"));
    }
}
