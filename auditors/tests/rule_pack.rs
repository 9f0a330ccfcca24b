//! Every rule in the bundled pack compiles, and every one of its cases passes.

use std::path::PathBuf;

use guardrail_auditors::{run_cases, Engine, Limits, RuleSet};

fn pack() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

#[test]
fn the_rule_pack_compiles() {
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, &pack()).unwrap();
    let errors: Vec<String> = set.load_errors.iter().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        set.rules().len() >= 20,
        "the pack has {} rules",
        set.rules().len()
    );
}

#[test]
fn every_rule_case_passes() {
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, &pack()).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for rule in set.rules() {
        for r in run_cases(&engine, rule) {
            count += 1;
            if !r.passed {
                failures.push(format!("{} / {}: {}", r.rule_id, r.case, r.message));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(count >= 60, "only {count} cases");
}
