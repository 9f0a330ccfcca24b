//! The bundled examples, swept by the real binary on SQLite and PostgreSQL: day 1,
//! day 2 (the planted changes), day 2 again (nothing).

mod common;

use common::{examples, Db};
use serde_json::Value;

fn counts(v: &Value) -> [u64; 5] {
    ["created", "modified", "deleted", "unchanged", "errors"]
        .map(|k| v[k].as_u64().unwrap_or(u64::MAX))
}

fn find<'a>(items: &'a [Value], name: &str, account: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["name"] == name && i["account"] == account)
        .unwrap_or_else(|| panic!("no item {name} in {account}"))
}

fn two_days(db: &Db) {
    let (code, day1) = db.sweep(&examples("day1"));
    assert_eq!(code, 0);
    assert_eq!(day1["items_seen"], 77);
    assert_eq!(counts(&day1), [77, 0, 0, 0, 0]);
    assert_eq!(db.revisions(), 77);

    let (code, day2) = db.sweep(&examples("day2"));
    assert_eq!(code, 0, "{day2}");
    // 2 created (user dave, SG analytics-db), 5 modified (vendor-audit trust, customer
    // data bucket, eu scratch bucket, admin-access SG, bastion SG), 3 deleted (user
    // bob, two terminated instances), 69 unchanged of which 8 ephemeral-only.
    assert_eq!(counts(&day2), [2, 5, 3, 69, 0]);
    assert_eq!(day2["ephemeral_updates"], 8);
    assert_eq!(db.revisions(), 87);

    let (code, again) = db.sweep(&examples("day2"));
    assert_eq!(code, 0);
    assert_eq!(counts(&again), [0, 0, 0, 76, 0]);
    assert_eq!(again["ephemeral_updates"], 0);
    assert_eq!(
        db.revisions(),
        87,
        "a quiet re-sweep must not write revisions"
    );

    // The planted changes, read back through the CLI.
    let items: Vec<Value> = db
        .run(&["items", "--deleted", "--format", "json"])
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(find(&items, "bob", "111111111111")["active"], false);
    assert_eq!(find(&items, "dave", "222222222222")["version"], 1);
    let worker = find(&items, "worker-1", "111111111111");
    assert_eq!(worker["version"], 1, "instance state is ephemeral");
    let shown = db
        .run(&["show", &worker["id"].to_string(), "--format", "json"])
        .json();
    assert_eq!(shown["document"]["tags"]["Name"], "worker-1");

    let diff = db.run(&["diff", "admin-access", "--format", "json"]);
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    let changes = diff.json()["changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["op"], "added");
    assert_eq!(changes[0]["new"]["fromPort"], 3389);
    assert_eq!(changes[0]["new"]["ipRanges"][0], "0.0.0.0/0");

    let diff = db.run(&["diff", "vendor-audit", "--format", "json"]).json();
    assert_eq!(
        diff["changes"][0]["path"],
        "config.configuration.assumeRolePolicyDocument.Statement[0].Condition"
    );

    let history = db.run(&["history", "bob", "--format", "json"]).json();
    let changes: Vec<&str> = history["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["deleted", "created"]);

    // Time travel: the admin group as it was on day 1 had no RDP rule.
    let before = db
        .run(&[
            "show",
            "admin-access",
            "--at",
            "2026-11-20T12:00:00Z",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(before["revision"]["version"], 1);
    assert_eq!(
        before["document"]["config"]["configuration"]["ipPermissions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn sqlite_two_days_of_examples() {
    two_days(&common::sqlite());
}

#[test]
fn postgres_two_days_of_examples() {
    if let Some(db) = common::postgres() {
        two_days(&db);
    }
}

#[test]
fn replaying_day1_after_day2_changes_nothing() {
    let db = common::sqlite();
    db.sweep(&examples("day1"));
    db.sweep(&examples("day2"));
    let (_, replay) = db.sweep(&examples("day1"));
    assert_eq!(replay["created"], 0);
    assert_eq!(replay["modified"], 0);
    assert_eq!(
        replay["deleted"], 0,
        "an older snapshot must not delete newer items"
    );
    assert_eq!(db.revisions(), 87);
}

#[test]
fn both_days_in_one_sweep_apply_in_order() {
    let db = common::sqlite();
    let (_, s) = db.sweep(&common::repo().join("examples/aws-config"));
    assert_eq!(s["listings"], 8);
    assert_eq!(s["created"], 79);
    assert_eq!(s["modified"], 5);
    assert_eq!(s["deleted"], 3);
    assert_eq!(db.revisions(), 87);
}

#[test]
fn text_output_is_plain_when_piped() {
    let db = common::sqlite();
    let r = db.run(&["sweep", "--source", &examples("day1").display().to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("sweep 1: 77 items seen"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stderr.contains('\u{1b}'),
        "no terminal codes when piped"
    );
    let items = db.run(&["items", "--type", "AWS::S3::Bucket"]);
    assert!(items.stdout.lines().next().unwrap().starts_with("ID  TYPE"));
    assert_eq!(
        items.stdout.lines().count(),
        1 + 10,
        "header and ten buckets"
    );
}

/// Short commands against PostgreSQL exit while r2d2 workers may still be connecting
/// over TLS; OpenSSL's exit-time cleanup used to free memory under them (a segfault in
/// ~7% of runs). Storage now initialises OpenSSL without that exit handler.
#[test]
fn postgres_short_commands_never_crash_at_exit() {
    let Some(db) = common::postgres() else { return };
    db.sweep(&examples("day1"));
    for i in 0..80 {
        let r = db.run(&["diff", "admin-access", "--format", "json"]);
        assert_eq!(
            r.code, 0,
            "run {i} ended with {} (a signal is -1): {}",
            r.code, r.stderr
        );
    }
}

/// `guardrail bench` keeps working end to end at a small size: three deliveries, both
/// backends when PostgreSQL is there, the audit on each, and the floor measured by a
/// child process of its own (figures are printed, never asserted).
#[test]
fn bench_runs_at_a_small_size() {
    let db = common::sqlite();
    let backend = if common::postgres().is_some() {
        "both"
    } else {
        "sqlite"
    };
    let r = db.run(&[
        "bench",
        "--items",
        "150",
        "--backend",
        backend,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert!(
        v["floor"]["single_thread_seconds"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert_eq!(v["floor"]["items"], 150, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), if backend == "both" { 2 } else { 1 }, "{v}");
    for r in results {
        let phases = r["phases"].as_array().unwrap();
        assert_eq!(phases[0]["created"], 150, "{r}");
        assert_eq!(phases[1]["revisions_written"], 0, "quiet re-sweep: {r}");
    }
    for a in v["audits"].as_array().unwrap() {
        assert_eq!(a["items"], 150, "{a}");
        assert_eq!(a["rule_errors"], 0, "{a}");
        assert!(a["findings_opened"].as_u64().unwrap() > 0, "{a}");
    }
}
