//! A long-running `guardrail watch` picks up rule edits without a restart, and keeps the
//! last good version of a rule whose edit does not compile.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn rules_hot_reload_in_a_running_process() {
    let db = common::sqlite();
    let rules = tempfile::tempdir().unwrap();
    common::copy_tree(&common::repo().join("rules/s3"), &rules.path().join("s3"));
    db.sweep(&common::examples("day1")); // audited with the full pack
    let logging = |db: &common::Db| {
        db.run(&[
            "findings",
            "--rule",
            "s3/bucket_logging",
            "--format",
            "json",
        ])
        .json()
        .as_array()
        .unwrap()
        .len()
    };
    let before = logging(&db);
    assert!(before > 0);

    let mut child = Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args([
            "--database",
            &db.url,
            "--rules",
            &rules.path().display().to_string(),
            "watch",
            "--rules-poll",
            "0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = common::Running(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    common::wait_for(&lines, "watching rules", Duration::from_secs(60));

    // An edit that disables the logging check: its findings are fixed on re-audit.
    let path = rules.path().join("s3/bucket_logging.rhai");
    let original = std::fs::read_to_string(&path).unwrap();
    let edited = original.replace(
        "if target != () && target != \"\" { return []; }",
        "return [];",
    );
    assert_ne!(edited, original);
    std::fs::write(&path, &edited).unwrap();
    let line = common::wait_for(
        &lines,
        "rules changed (s3/bucket_logging)",
        Duration::from_secs(60),
    );
    assert!(line.contains(&format!("{before} fixed")), "{line}");
    assert_eq!(logging(&db), 0);

    // A broken edit: reported, and the last good version keeps running.
    std::fs::write(&path, "fn check(item, ctx) { broken").unwrap();
    common::wait_for(&lines, "last good version kept", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1000)); // several polls while it stays broken
    let errors = db.run(&["rules", "errors", "--format", "json"]).json();
    let loads = errors
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["message"].as_str().unwrap().contains("does not load"))
        .count();
    assert_eq!(
        loads, 1,
        "a broken rule is recorded once, not once per poll: {errors:#}"
    );

    // The original back: the findings reopen.
    std::fs::write(&path, &original).unwrap();
    let line = common::wait_for(
        &lines,
        "rules changed (s3/bucket_logging)",
        Duration::from_secs(60),
    );
    assert!(line.contains(&format!("{before} reopened")), "{line}");
    assert_eq!(logging(&db), before);
}
