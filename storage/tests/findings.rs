//! The findings lifecycle on both backends.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use guardrail_model::{Cause, Collector, Coverage, ItemKey, Listing, Observation};
use guardrail_storage::{FindingQuery, ItemAudit, NewFinding, RuleResult, Store};
use serde_json::json;

#[macro_use]
mod support;

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
}

fn key(id: &str) -> ItemKey {
    ItemKey {
        account: "111111111111".into(),
        region: "us-east-1".into(),
        resource_type: "AWS::EC2::SecurityGroup".into(),
        resource_id: id.into(),
    }
}

/// Stores an item and returns its id.
fn item(store: &Store, id: &str) -> i64 {
    let mut ing = store.begin_sweep("t").unwrap();
    ing.begin_listing(Listing {
        origin: "t".into(),
        cause: Cause::Sweep,
        observed_at: t(1),
        actor: None,
    })
    .unwrap();
    ing.observe(Observation {
        key: key(id),
        arn: None,
        name: Some(id.into()),
        tags: BTreeMap::new(),
        config: json!({"x": 1}),
        ephemeral: json!({}),
        observed_at: t(1),
        unreadable: Vec::new(),
    })
    .unwrap();
    ing.end_listing(Coverage::Nothing).unwrap();
    ing.finish(None).unwrap();
    store.resolve_item(id).unwrap().id
}

fn finding(k: &str, score: i64, title: &str) -> NewFinding {
    NewFinding {
        key: k.into(),
        kind: "state".into(),
        title: title.into(),
        score,
        rule_score: score,
        severity: "high".into(),
        detail: "d".into(),
        remediation: "r".into(),
        suppressed_by: None,
        controls: String::new(),
    }
}

fn audit(
    store: &Store,
    item_id: i64,
    id: &str,
    rule: &str,
    result: RuleResult,
    at: DateTime<Utc>,
) -> guardrail_storage::AuditSummary {
    store
        .record_audits(
            &[ItemAudit {
                item_id,
                key: key(id),
                revision_id: None,
                audited_as: None,
                results: vec![(rule.into(), result)],
            }],
            at,
        )
        .unwrap()
}

fn only(store: &Store) -> guardrail_storage::FindingRow {
    let all = store.findings_page(&FindingQuery::default()).unwrap().rows;
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].0.clone()
}

fn events(store: &Store, id: i64) -> Vec<String> {
    store
        .finding_events(id)
        .unwrap()
        .into_iter()
        .map(|e| e.event.to_string())
        .collect()
}

fn scenario_open_fixed_reopened_on_one_row(store: &Store) {
    let i = item(store, "sg-1");
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![finding("22", 10, "SSH open")]),
        t(1),
    );
    assert_eq!(s.opened, 1);
    let f = only(store);
    assert_eq!((f.state.as_str(), f.score), ("open", 10));
    // The same result again writes nothing.
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![finding("22", 10, "SSH open")]),
        t(2),
    );
    assert_eq!((s.unchanged, s.opened, s.updated), (1, 0, 0));
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![]),
        t(3),
    );
    assert_eq!(s.fixed, 1);
    assert_eq!(only(store).state, "fixed");
    // Rewording and rescoring do not change identity: the same row reopens.
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![finding("22", 7, "SSH reachable")]),
        t(4),
    );
    assert_eq!(s.reopened, 1);
    let f2 = only(store);
    assert_eq!(f2.id, f.id);
    assert_eq!(
        (f2.state.as_str(), f2.reopen_count, f2.title.as_str()),
        ("open", 1, "SSH reachable")
    );
    assert!(f2.fixed_at.is_none());
    assert_eq!(
        events(store, f.id),
        ["opened", "fixed", "reopened", "score changed"]
    );
}

fn scenario_justification_survives_and_lapses(store: &Store) {
    let i = item(store, "sg-1");
    audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![finding("22", 10, "SSH open")]),
        t(1),
    );
    let f = only(store);
    let j = store
        .justify(f.id, "alice", "bastion, accepted", Some(t(10)), t(2))
        .unwrap();
    assert_eq!(
        (j.state.as_str(), j.justified_by.as_deref()),
        ("justified", Some("alice"))
    );
    // Re-audit with a different score and wording: still justified, who/why kept.
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![finding("22", 3, "SSH open (overridden)")]),
        t(3),
    );
    assert_eq!(s.updated, 1);
    let f = only(store);
    assert_eq!(
        (f.state.as_str(), f.score, f.justification.as_deref()),
        ("justified", 3, Some("bastion, accepted"))
    );
    // After its expiry the next audit reopens it, unjustified.
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![finding("22", 3, "SSH open (overridden)")]),
        t(11),
    );
    assert_eq!(s.justifications_lapsed, 1);
    let f = only(store);
    assert_eq!(f.state, "open");
    assert!(f.justified_by.is_none());
    // Lapsing also happens without an audit.
    store
        .justify(f.id, "bob", "again", Some(t(20)), t(12))
        .unwrap();
    assert_eq!(store.lapse_expired_justifications(t(19)).unwrap(), 0);
    assert_eq!(store.lapse_expired_justifications(t(21)).unwrap(), 1);
    assert_eq!(only(store).state, "open");
    // Unjustify.
    store
        .justify(f.id, "carol", "no expiry", None, t(22))
        .unwrap();
    assert_eq!(store.unjustify(f.id, "dave", t(23)).unwrap().state, "open");
    assert!(
        store.unjustify(f.id, "dave", t(23)).is_err(),
        "not justified any more"
    );
    let ev = events(store, f.id);
    assert!(
        ev.contains(&"justification expired".to_string())
            && ev.contains(&"unjustified".to_string()),
        "{ev:?}"
    );
}

fn scenario_justify_validation(store: &Store) {
    let i = item(store, "sg-1");
    audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![finding("22", 10, "x")]),
        t(1),
    );
    let f = only(store);
    assert!(store.justify(f.id, "a", "  ", None, t(2)).is_err());
    assert!(
        store.justify(f.id, "a", "ok", Some(t(1)), t(2)).is_err(),
        "expiry in the past"
    );
    assert!(store.justify(999_999, "a", "ok", None, t(2)).is_err());
    audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![]),
        t(3),
    );
    let err = store
        .justify(f.id, "a", "ok", None, t(4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("fixed"), "{err}");
}

fn scenario_suppression_and_rule_errors(store: &Store) {
    let i = item(store, "sg-1");
    let mut f = finding("443", 2, "web");
    f.suppressed_by = Some("ec2/*:*:*web*".into());
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![f.clone()]),
        t(1),
    );
    assert_eq!((s.suppressed, s.opened), (1, 0));
    assert_eq!(only(store).state, "suppressed");
    // A rule error touches nothing and is recorded.
    let s = audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Error("ran out of its operation budget".into()),
        t(2),
    );
    assert_eq!(s.rule_errors, 1);
    assert_eq!(only(store).state, "suppressed");
    let errors = store.rule_errors_page(None, 10).unwrap();
    assert_eq!(
        (errors[0].rule_id.as_str(), errors[0].item_id),
        ("ec2/r", Some(i))
    );
    // The suppression pattern is removed: the finding opens.
    f.suppressed_by = None;
    audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![f]),
        t(3),
    );
    assert_eq!(only(store).state, "open");
    store
        .record_rule_error("bad/rule", "syntax error at line 3", t(4))
        .unwrap();
    assert_eq!(store.rule_errors_page(None, 10).unwrap()[0].item_id, None);
}

/// A justification lapsing on a finding that a suppression matches leaves it
/// suppressed, as the next audit would: never briefly open and announced.
fn scenario_a_lapsed_justification_of_a_suppressed_finding_stays_suppressed(store: &Store) {
    let i = item(store, "sg-1");
    let mut f = finding("443", 2, "web");
    f.suppressed_by = Some("ec2/*:*:*web*".into());
    audit(
        store,
        i,
        "sg-1",
        "ec2/r",
        RuleResult::Findings(vec![f]),
        t(1),
    );
    let id = only(store).id;
    store
        .justify(id, "carol", "accepted", Some(t(5)), t(2))
        .unwrap();
    assert_eq!(only(store).state, "justified");
    assert_eq!(store.lapse_expired_justifications(t(6)).unwrap(), 1);
    assert_eq!(only(store).state, "suppressed");
    let events: Vec<String> = store
        .finding_events(id)
        .unwrap()
        .iter()
        .map(|e| e.event.to_string())
        .collect();
    assert!(
        events.contains(&"justification expired".to_string()),
        "{events:?}"
    );
}

fn scenario_change_findings_stay_and_deleted_items_fix(store: &Store) {
    let i = item(store, "sg-1");
    let mut change = finding("opened:3389", 9, "change opened RDP");
    change.kind = "change".into();
    audit(
        store,
        i,
        "sg-1",
        "ec2/change",
        RuleResult::Findings(vec![change]),
        t(1),
    );
    audit(
        store,
        i,
        "sg-1",
        "ec2/state",
        RuleResult::Findings(vec![finding("3389", 10, "RDP open")]),
        t(1),
    );
    audit(
        store,
        i,
        "sg-1",
        "ec2/change",
        RuleResult::Findings(vec![]),
        t(2),
    );
    let open = store
        .findings_page(&FindingQuery {
            states: vec![guardrail_model::FindingState::Open],
            ..FindingQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(
        open.len(),
        2,
        "a change finding is not fixed by a later audit"
    );
    // Delete the item through a complete listing; its state findings are fixed.
    let mut ing = store.begin_sweep("t").unwrap();
    ing.begin_listing(Listing {
        origin: "t".into(),
        cause: Cause::Sweep,
        observed_at: t(3),
        actor: None,
    })
    .unwrap();
    ing.end_listing(Coverage::Scopes(vec![key("x").scope()]))
        .unwrap();
    ing.finish(None).unwrap();
    assert_eq!(store.fix_findings_of_deleted_items(t(3)).unwrap(), 1);
    let by_state = |s: &str| {
        store
            .findings_page(&FindingQuery {
                states: vec![s.parse().unwrap()],
                ..FindingQuery::default()
            })
            .unwrap()
            .rows
            .len()
    };
    assert_eq!((by_state("open"), by_state("fixed")), (1, 1));
    // Filters.
    let f = store
        .findings_page(&FindingQuery {
            min_score: Some(10),
            ..FindingQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(f.len(), 1);
    let f = store
        .findings_page(&FindingQuery {
            rule_id: Some("ec2/change".into()),
            resource_type: Some("AWS::EC2::SecurityGroup".into()),
            account: Some("111111111111".into()),
            ..FindingQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(f.len(), 1);
}

/// Stores items of (account, type, id, config) in one listing at `day`.
fn observe_all(store: &Store, day: u32, items: &[(&str, &str, &str, i64)]) {
    let mut ing = store.begin_sweep("t").unwrap();
    ing.begin_listing(Listing {
        origin: "t".into(),
        cause: Cause::Sweep,
        observed_at: t(day),
        actor: None,
    })
    .unwrap();
    for (account, resource_type, id, x) in items {
        ing.observe(Observation {
            key: ItemKey {
                account: (*account).into(),
                region: "us-east-1".into(),
                resource_type: (*resource_type).into(),
                resource_id: (*id).into(),
            },
            arn: None,
            name: Some((*id).into()),
            tags: BTreeMap::new(),
            config: json!({"x": x}),
            ephemeral: json!({}),
            observed_at: t(day),
            unreadable: Vec::new(),
        })
        .unwrap();
    }
    ing.end_listing(Coverage::Nothing).unwrap();
    ing.finish(None).unwrap();
}

fn scenario_a_changed_neighbour_makes_its_dependents_due(store: &Store) {
    const PATH: &[&str] = &["AWS::EC2::RouteTable", "AWS::EC2::Instance"];
    const DEPENDENT: &[&str] = &["AWS::EC2::Instance"];
    observe_all(
        store,
        1,
        &[
            ("111111111111", "AWS::EC2::RouteTable", "rtb-1", 1),
            ("111111111111", "AWS::EC2::Instance", "i-1", 1),
            ("111111111111", "AWS::S3::Bucket", "b-1", 1),
            ("222222222222", "AWS::EC2::Instance", "i-2", 1),
        ],
    );
    let rules: std::sync::Arc<str> = std::sync::Arc::from("rules-a");
    let due_rule = guardrail_storage::DueRule {
        rules: &rules,
        judged_before: t(1),
    };
    let judge_everything = || {
        let due = store.due_audits(&due_rule, 0, 100).unwrap();
        let audits: Vec<ItemAudit> = due
            .iter()
            .map(|d| ItemAudit {
                item_id: d.item.id,
                key: ItemKey {
                    account: d.item.account.clone(),
                    region: d.item.region.clone(),
                    resource_type: d.item.resource_type.clone(),
                    resource_id: d.item.resource_id.clone(),
                },
                revision_id: Some(d.revision.id),
                audited_as: Some(guardrail_storage::AuditedAs {
                    version: d.revision.version,
                    rules: rules.clone(),
                }),
                results: Vec::new(),
            })
            .collect();
        store.record_audits(&audits, t(2)).unwrap();
        due.len()
    };
    // The first pass: every revision is new to the cursor, and everything is due anyway.
    store.invalidate_dependents("c", PATH, DEPENDENT).unwrap();
    assert_eq!(judge_everything(), 4);
    assert!(store.due_audits(&due_rule, 0, 100).unwrap().is_empty());
    assert_eq!(
        store.invalidate_dependents("c", PATH, DEPENDENT).unwrap(),
        0
    );
    // The route table of account 1 changes: its instance is due again (as a
    // re-judgement, its own version unchanged); the other account's is not.
    observe_all(
        store,
        3,
        &[("111111111111", "AWS::EC2::RouteTable", "rtb-1", 2)],
    );
    assert_eq!(
        store.invalidate_dependents("c", PATH, DEPENDENT).unwrap(),
        1
    );
    let due: Vec<String> = store
        .due_audits(&due_rule, 0, 100)
        .unwrap()
        .into_iter()
        .map(|d| d.item.resource_id)
        .collect();
    assert_eq!(due, vec!["rtb-1", "i-1"]);
    // The cursor moved with the marks: nothing more to invalidate.
    assert_eq!(
        store.invalidate_dependents("c", PATH, DEPENDENT).unwrap(),
        0
    );
    assert_eq!(judge_everything(), 2);
}

/// Pages of items are read first and their latest revisions after: an item whose
/// latest revision is gone is an error naming it, never a row left out (a short page
/// would end the audit's paging early, silently skipping the rest).
fn a_missing_latest_revision_is_an_error_not_a_short_page(url: &str) {
    let store = Store::open(url).unwrap();
    observe_all(
        &store,
        1,
        &[
            ("111111111111", "AWS::EC2::SecurityGroup", "sg-1", 1),
            ("111111111111", "AWS::EC2::SecurityGroup", "sg-2", 1),
            ("111111111111", "AWS::EC2::SecurityGroup", "sg-3", 1),
        ],
    );
    let rules: std::sync::Arc<str> = std::sync::Arc::from("rules-a");
    let due_rule = guardrail_storage::DueRule {
        rules: &rules,
        judged_before: t(1),
    };
    let types = ["AWS::EC2::SecurityGroup"];
    assert_eq!(store.due_audits(&due_rule, 0, 100).unwrap().len(), 3);
    let scope = store
        .scope_items("111111111111", "us-east-1", &types, 0, 100)
        .unwrap();
    assert_eq!(scope.len(), 3);
    let broken = store.resolve_item("sg-2").unwrap().id;
    guardrail_storage::testing::execute_sql(
        url,
        &format!("DELETE FROM revisions WHERE item_id = {broken}"),
    )
    .unwrap();
    let e = store.due_audits(&due_rule, 0, 100).unwrap_err().to_string();
    assert!(e.contains("sg-2") && e.contains("has no revision"), "{e}");
    let e = store
        .scope_items("111111111111", "us-east-1", &types, 0, 100)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sg-2") && e.contains("has no revision"), "{e}");
}

#[test]
fn sqlite_a_missing_latest_revision_is_an_error_not_a_short_page() {
    let dir = tempfile::tempdir().unwrap();
    a_missing_latest_revision_is_an_error_not_a_short_page(&format!(
        "sqlite://{}/g.db",
        dir.path().display()
    ));
}

#[test]
fn postgres_a_missing_latest_revision_is_an_error_not_a_short_page() {
    let Some(db) = guardrail_storage::testing::PgTestDb::create_or_skip("gr_store") else {
        return;
    };
    a_missing_latest_revision_is_an_error_not_a_short_page(&db.url);
}

on_both_backends!(
    scenario_a_changed_neighbour_makes_its_dependents_due,
    scenario_open_fixed_reopened_on_one_row,
    scenario_justification_survives_and_lapses,
    scenario_justify_validation,
    scenario_suppression_and_rule_errors,
    scenario_a_lapsed_justification_of_a_suppressed_finding_stays_suppressed,
    scenario_change_findings_stay_and_deleted_items_fix,
);

#[test]
fn repeated_items_in_one_batch_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/g.db", dir.path().display())).unwrap();
    let i = item(&store, "sg-1");
    let a = |score| ItemAudit {
        item_id: i,
        key: key("sg-1"),
        revision_id: None,
        audited_as: None,
        results: vec![(
            "r".into(),
            RuleResult::Findings(vec![finding("k", score, "t")]),
        )],
    };
    let s = store.record_audits(&[a(3), a(7)], t(1)).unwrap();
    assert_eq!((s.items, s.opened), (1, 1));
    assert_eq!(only(&store).score, 7);
}
