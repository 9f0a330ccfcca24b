//! Bad input gets a clear error naming the file and item, and loses nothing already
//! stored: no scope touched by an error has anything marked deleted.

mod common;

use std::io::Write;

use common::{copy_tree, examples, snapshot_file};
use serde_json::Value;

const PROD: &str = "111111111111";
const DEV: &str = "222222222222";

fn active_names(db: &common::Db, account: &str, region: &str) -> Vec<String> {
    let items = db
        .run(&[
            "items",
            "--account",
            account,
            "--region",
            region,
            "--format",
            "json",
        ])
        .json();
    let mut names: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["resource_id"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn errors(summary: &Value) -> Vec<String> {
    summary["error_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} | {} | {}", e["origin"], e["item"], e["message"]))
        .collect()
}

#[test]
fn truncated_malformed_and_broken_files_delete_nothing() {
    let db = common::sqlite();
    db.sweep(&examples("day1"));
    let before_prod_eu = active_names(&db, PROD, "eu-west-1");
    let before_dev_eu = active_names(&db, DEV, "eu-west-1");
    let before_global = active_names(&db, PROD, "global");

    let work = tempfile::tempdir().unwrap();
    copy_tree(&examples("day2"), work.path());
    // 1. prod/eu-west-1: gzip it and cut it in half.
    let f = snapshot_file(work.path(), PROD, "eu-west-1");
    let body = std::fs::read(&f).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::remove_file(&f).unwrap();
    let truncated = f.with_extension("json.gz");
    std::fs::write(&truncated, &gz[..gz.len() / 2]).unwrap();
    // 2. dev/eu-west-1: malformed JSON part-way through the items.
    let f = snapshot_file(work.path(), DEV, "eu-west-1");
    let text = std::fs::read_to_string(&f).unwrap();
    let cut = text.find("\"AWS::EC2::Instance\"").unwrap();
    std::fs::write(&f, format!("{}}}}}, oops ]", &text[..cut])).unwrap();
    // 3. prod/us-east-1: a user's inline policy that is not a policy.
    let f = snapshot_file(work.path(), PROD, "us-east-1");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    for item in doc["configurationItems"].as_array_mut().unwrap() {
        if item["resourceName"] == "alice" {
            item["configuration"]["userPolicyList"] = serde_json::json!([{"policyName": "oops", "policyDocument": "%7B%22Statement%22%3A%5B"}]);
        }
    }
    std::fs::write(&f, serde_json::to_string(&doc).unwrap()).unwrap();

    let (code, s) = db.sweep(work.path());
    assert_eq!(code, 2, "a sweep with input errors exits 2");
    let errs = errors(&s);
    assert_eq!(s["errors"], 3, "{errs:#?}");
    let truncated_name = truncated.file_name().unwrap().to_str().unwrap();
    assert!(
        errs.iter()
            .any(|e| e.contains(truncated_name) && e.contains("truncated")),
        "{errs:#?}"
    );
    assert!(errs.iter().any(|e| e.contains(&format!("{DEV}_Config_eu-west-1")) && e.contains("malformed JSON")), "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.contains(&format!("{PROD}_Config_us-east-1"))
                && e.contains("AWS::IAM::User AIDAPALICE000000001")
                && e.contains("configuration.userPolicyList[0].policyDocument")
                && e.contains("broken IAM policy document")),
        "{errs:#?}"
    );

    // Nothing in the broken files' scopes was deleted, even though day 2 dropped an
    // instance there; the broken user keeps its day-1 revision.
    assert_eq!(active_names(&db, PROD, "eu-west-1"), before_prod_eu);
    assert_eq!(active_names(&db, DEV, "eu-west-1"), before_dev_eu);
    let alice = db.run(&["history", "alice", "--format", "json"]);
    assert!(alice.code != 0, "alice exists in both accounts: ambiguous");
    let users = db
        .run(&[
            "items",
            "--type",
            "AWS::IAM::User",
            "--account",
            PROD,
            "--format",
            "json",
        ])
        .json();
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap();
    assert_eq!(alice["version"], 1);
    // The user scope was tainted by the broken item, so bob (gone on day 2) stays too.
    assert_eq!(active_names(&db, PROD, "global"), before_global);
    // Clean scopes still see their real changes: the admin-access SG gained RDP.
    let sg = db
        .run(&["history", "admin-access", "--format", "json"])
        .json();
    assert_eq!(sg["item"]["version"], 2);

    // The errors are stored with the sweep.
    let sweeps = db.run(&["sweeps", "--format", "json"]).json();
    assert_eq!(sweeps[0]["status"], "partial");
    let detail = db
        .run(&[
            "sweeps",
            "--id",
            &sweeps[0]["id"].to_string(),
            "--format",
            "json",
        ])
        .json();
    assert_eq!(detail["errors"].as_array().unwrap().len(), 3);
    assert!(detail["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["resource_type"] == "AWS::IAM::User"));
}

#[test]
fn missing_or_empty_sources_are_clear_errors() {
    let db = common::sqlite();
    db.sweep(&examples("day1"));
    let (code, s) = db.sweep(std::path::Path::new("/nonexistent/deliveries"));
    assert_eq!(code, 2);
    let e = &errors(&s)[0];
    assert!(e.contains("cannot read /nonexistent/deliveries"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README.txt"), "not a delivery").unwrap();
    let (_, s) = db.sweep(empty.path());
    assert!(
        errors(&s)[0].contains("no AWS Config delivery files found"),
        "{:?}",
        errors(&s)
    );
    // Nothing was lost.
    assert_eq!(db.revisions(), 77);
    assert_eq!(
        db.run(&["items", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        77
    );
}

#[test]
fn json_that_is_not_a_delivery_and_items_missing_fields() {
    let db = common::sqlite();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.json"), r#"{"hello": "world"}"#).unwrap();
    let stamp = "111111111111_Config_us-east-1_ConfigSnapshot_20261122T000000Z_x.json";
    std::fs::write(
        dir.path().join(stamp),
        r#"{"configurationItems": [{"accountId": "111111111111", "awsRegion": "us-east-1", "resourceType": "AWS::S3::Bucket"}]}"#,
    )
    .unwrap();
    let (_, s) = db.sweep(dir.path());
    let errs = errors(&s);
    assert!(
        errs.iter()
            .any(|e| e.contains("other.json") && e.contains("not an AWS Config delivery file")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains(stamp)
            && e.contains("item #1")
            && e.contains("missing required field(s): resourceId")),
        "{errs:#?}"
    );
}

#[test]
fn bad_database_urls_are_clear_errors() {
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(["--database", "mysql://x/y", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(
        err.contains("unsupported database URL") && err.contains("sqlite://PATH"),
        "{err}"
    );
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(["--database", "postgres://u:hunter2@127.0.0.1:1/x", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("is PostgreSQL running") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn read_commands_never_create_a_mistyped_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("guardrial.db");
    let url = format!("sqlite://{}", typo.display());
    for args in [
        &["findings"][..],
        &["items"],
        &["status"],
        &["sweeps"],
        &["outbox"],
    ] {
        let r = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
            .arg("--database")
            .arg(&url)
            .args(args)
            .env_remove("GUARDRAIL_DATABASE_URL")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success(),
            "{args:?} succeeded on a missing database"
        );
        assert!(
            err.contains("no database at") && err.contains("guardrial.db"),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // Commands that write create it.
    let db = common::Db::at(&url);
    let r = db.run(&[
        "sweep",
        "--source",
        common::examples("day1").to_str().unwrap(),
    ]);
    assert!(typo.exists(), "{}", r.stderr);
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let db = common::sqlite();
    let data = tempfile::tempdir().unwrap();
    common::write_snapshot(data.path(), 4000);
    let r = db.run(&["sweep", "--source", data.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for args in [
        &["findings", "--format", "csv", "--limit", "100000"][..],
        &["findings", "--limit", "100000"],
        &["items", "--limit", "100000"],
        &["items", "--format", "json", "--limit", "100000"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
            .arg("--database")
            .arg(&db.url)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head -c 100`: read a little, then close the pipe.
        let mut first = [0u8; 100];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{args:?}: {err}");
        // Ended by SIGPIPE (no exit code) or exited 0: never an error exit.
        assert!(
            out.status.code().is_none_or(|c| c == 0),
            "{args:?}: {:?}",
            out.status
        );
    }
}

#[test]
fn a_wrong_command_line_is_a_usage_error_not_bad_input() {
    for args in [
        &["sweep", "--no-such-flag"][..],
        &["no-such-command"],
        &["changes", "--since", "yesterday"],
    ] {
        let r = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(64), "{args:?}");
        assert!(!r.stderr.is_empty(), "{args:?}");
    }
    let since = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(["changes", "--since", "yesterday"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&since.stderr);
    assert!(err.contains("RFC 3339") && err.contains("24h"), "{err}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
}

#[test]
fn a_listing_cut_at_its_limit_says_so() {
    let db = common::sqlite();
    let r = db.run(&[
        "sweep",
        "--source",
        common::examples("day1").to_str().unwrap(),
    ]);
    assert!(r.code == 0, "{}", r.stderr);
    let cut = db.run(&["findings", "--limit", "2", "--format", "json"]);
    assert_eq!(cut.json().as_array().unwrap().len(), 2);
    assert!(
        cut.stderr.contains("showing the first 2 findings"),
        "{}",
        cut.stderr
    );
    let whole = db.run(&["findings", "--format", "json"]);
    assert!(
        !whole.stderr.contains("showing the first"),
        "{}",
        whole.stderr
    );
    let outbox = db.run(&["outbox", "--limit", "1"]);
    assert!(
        !outbox.stderr.contains("showing"),
        "an empty outbox is not cut"
    );
}
