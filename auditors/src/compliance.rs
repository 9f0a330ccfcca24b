//! Compliance frameworks as data, and a framework's report from the rule set and the
//! stored state: per control, the rules that implement it (their `controls` meta), how
//! many resources they judged, which fail. A control no rule implements is "not
//! covered", never "pass"; one whose rules found nothing of their types to judge says
//! so instead of passing.
//!
//! The catalogues live in `auditors/frameworks/` (one JSON file per framework, compiled
//! in). A framework rules may name without a bundled catalogue (`aws-fsbp`) reports
//! the controls its rules declare, and says that the list is not the whole framework.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::engine::RuleSet;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub id: String,
    pub title: String,
    /// Scored as automated by the benchmark (manual checks no item can settle).
    pub automated: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    pub id: String,
    pub name: String,
    pub reference: String,
    pub note: String,
    pub controls: Vec<Control>,
}

const CATALOGUES: &[&str] = &[include_str!("../frameworks/cis-aws-3.0.json")];

/// The bundled framework catalogue `id`, if there is one.
pub fn framework(id: &str) -> Result<Option<Framework>, String> {
    for text in CATALOGUES {
        let f: Framework = serde_json::from_str(text)
            .map_err(|e| format!("a bundled framework catalogue is malformed: {e}"))?;
        if f.id == id {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// One control's state.
#[derive(Debug, Clone, Serialize)]
pub struct ControlStatus {
    pub id: String,
    pub title: String,
    /// `fail`, `pass`, `not covered` (no rule implements it), `nothing to judge` (its
    /// rules' resource types are not stored), or `rule errors` (nothing fails, but a
    /// rule of it is erroring, suspended or not loaded: its silence is not a pass).
    pub status: String,
    pub automated: bool,
    pub rules: Vec<String>,
    /// Resources its rules judged (stored items of their types).
    pub judged: i64,
    /// Resources with an open finding of one of its rules.
    pub failing: i64,
    pub passing: i64,
    /// Up to `shown` failing resources, in words.
    pub failing_resources: Vec<String>,
}

/// A framework's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub framework: String,
    pub name: String,
    /// Whether the control list is the bundled catalogue (else: only the controls the
    /// rules declare).
    pub complete_catalogue: bool,
    pub controls: Vec<ControlStatus>,
}

impl Report {
    pub fn count(&self, status: &str) -> usize {
        self.controls.iter().filter(|c| c.status == status).count()
    }
}

/// The rules implementing each control of `framework_id`, by control id.
pub fn rules_by_control(rules: &RuleSet, framework_id: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rules.rules() {
        for c in &r.controls {
            if let Some((fw, id)) = c.split_once(':') {
                if fw == framework_id {
                    out.entry(id.to_owned()).or_default().push(r.id.clone());
                }
            }
        }
    }
    out
}

/// Builds the report. `stored`: active items per resource type; `failing`: per rule,
/// the resources (item id and a label) with an open finding of it; `unhealthy`: rules
/// whose last pass did not judge everything (`rule_health` not ok).
pub fn report(
    framework_id: &str,
    rules: &RuleSet,
    stored: &HashMap<String, i64>,
    failing: &HashMap<String, BTreeMap<i64, String>>,
    unhealthy: &BTreeSet<String>,
    shown: usize,
) -> Result<Report, String> {
    let by_control = rules_by_control(rules, framework_id);
    let catalogue = framework(framework_id)?;
    let known = crate::engine::FRAMEWORKS.contains(&framework_id);
    if catalogue.is_none() && !known {
        return Err(format!(
            "unknown framework {framework_id:?}: use one of {:?}",
            crate::engine::FRAMEWORKS
        ));
    }
    let controls: Vec<Control> = match &catalogue {
        Some(f) => {
            let listed: BTreeSet<&str> = f.controls.iter().map(|c| c.id.as_str()).collect();
            if let Some(unknown) = by_control.keys().find(|id| !listed.contains(id.as_str())) {
                return Err(format!(
                    "rule(s) {:?} declare control {framework_id}:{unknown}, which {} does not have (fix the rule's meta controls)",
                    by_control[unknown], f.name
                ));
            }
            f.controls.clone()
        }
        None => by_control
            .keys()
            .map(|id| Control {
                id: id.clone(),
                title: String::new(),
                automated: true,
            })
            .collect(),
    };
    let types_of: HashMap<&str, &[String]> = rules
        .rules()
        .iter()
        .map(|r| (r.id.as_str(), r.resource_types.as_slice()))
        .collect();
    let statuses = controls
        .into_iter()
        .map(|c| {
            let rule_ids = by_control.get(&c.id).cloned().unwrap_or_default();
            let types: BTreeSet<&String> = rule_ids
                .iter()
                .filter_map(|r| types_of.get(r.as_str()))
                .flat_map(|t| t.iter())
                .collect();
            let judged: i64 = types
                .iter()
                .map(|t| stored.get(*t).copied().unwrap_or(0))
                .sum();
            let mut bad: BTreeMap<i64, &String> = BTreeMap::new();
            for r in &rule_ids {
                for (id, label) in failing.get(r).into_iter().flatten() {
                    bad.insert(*id, label);
                }
            }
            let failing_count = i64::try_from(bad.len()).unwrap_or(i64::MAX);
            let status = if rule_ids.is_empty() {
                "not covered"
            } else if failing_count > 0 {
                "fail"
            } else if rule_ids.iter().any(|r| unhealthy.contains(r)) {
                "rule errors"
            } else if judged == 0 {
                "nothing to judge"
            } else {
                "pass"
            };
            ControlStatus {
                id: c.id,
                title: c.title,
                status: status.to_owned(),
                automated: c.automated,
                rules: rule_ids,
                judged,
                failing: failing_count,
                passing: (judged - failing_count).max(0),
                failing_resources: bad.values().take(shown).map(|l| (*l).clone()).collect(),
            }
        })
        .collect();
    Ok(Report {
        framework: framework_id.to_owned(),
        name: catalogue
            .map(|f| f.name)
            .unwrap_or_else(|| framework_id.to_owned()),
        complete_catalogue: known && framework(framework_id)?.is_some(),
        controls: statuses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Limits};

    fn rules(files: &[(&str, &str)]) -> (tempfile::TempDir, RuleSet) {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let set = RuleSet::load(&Engine::new(Limits::default()), dir.path()).unwrap();
        (dir, set)
    }

    fn rule(types: &str, controls: &str) -> String {
        format!("fn meta() {{ #{{ resource_types: [{types}], description: \"d\", controls: [{controls}] }} }}\nfn check(item, ctx) {{ [] }}\n")
    }

    #[test]
    fn the_bundled_cis_catalogue_reads() {
        let f = framework("cis-aws-3.0").unwrap().unwrap();
        assert_eq!(f.controls.len(), 62);
        assert!(f.controls.iter().any(|c| c.id == "5.2"));
    }

    #[test]
    fn a_control_without_rules_is_not_covered_never_pass() {
        let (_d, set) = rules(&[
            (
                "ssh.rhai",
                &rule(
                    "\"AWS::EC2::SecurityGroup\"",
                    "\"cis-aws-3.0:5.2\", \"cis-aws-3.0:5.3\"",
                ),
            ),
            (
                "imds.rhai",
                &rule("\"AWS::EC2::Instance\"", "\"cis-aws-3.0:5.6\""),
            ),
            (
                "ebs.rhai",
                &rule("\"AWS::EC2::Volume\"", "\"cis-aws-3.0:2.2.1\""),
            ),
        ]);
        let stored = HashMap::from([
            ("AWS::EC2::SecurityGroup".to_owned(), 5),
            ("AWS::EC2::Instance".to_owned(), 3),
        ]);
        let failing = HashMap::from([(
            "ssh".to_owned(),
            BTreeMap::from([(7, "sg-7".to_owned()), (9, "sg-9".to_owned())]),
        )]);
        let r = report("cis-aws-3.0", &set, &stored, &failing, &BTreeSet::new(), 10).unwrap();
        let c = |id: &str| r.controls.iter().find(|c| c.id == id).unwrap();
        assert_eq!(
            (c("5.2").status.as_str(), c("5.2").failing, c("5.2").passing),
            ("fail", 2, 3)
        );
        assert_eq!(c("5.2").failing_resources, vec!["sg-7", "sg-9"]);
        assert_eq!((c("5.6").status.as_str(), c("5.6").passing), ("pass", 3));
        assert_eq!(c("2.2.1").status, "nothing to judge");
        assert_eq!(c("1.4").status, "not covered");
        assert!(r.complete_catalogue);
        assert_eq!(r.count("not covered"), 62 - 4);
        // A rule that errored judged nothing for sure: its control does not pass.
        let erroring = BTreeSet::from(["imds".to_owned()]);
        let r = report("cis-aws-3.0", &set, &stored, &failing, &erroring, 10).unwrap();
        let c = r.controls.iter().find(|c| c.id == "5.6").unwrap();
        assert_eq!(c.status, "rule errors");
    }

    #[test]
    fn a_control_the_catalogue_lacks_is_an_error_naming_the_rule() {
        let (_d, set) = rules(&[("x.rhai", &rule("\"T\"", "\"cis-aws-3.0:9.9\""))]);
        let e = report(
            "cis-aws-3.0",
            &set,
            &HashMap::new(),
            &HashMap::new(),
            &BTreeSet::new(),
            5,
        )
        .unwrap_err();
        assert!(e.contains("9.9") && e.contains("\"x\""), "{e}");
        assert!(report(
            "nist",
            &set,
            &HashMap::new(),
            &HashMap::new(),
            &BTreeSet::new(),
            5
        )
        .unwrap_err()
        .contains("unknown framework"));
    }
}
