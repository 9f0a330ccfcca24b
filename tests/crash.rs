//! kill -9 at any moment of a sweep, then a clean sweep: the findings equal those of an
//! uninterrupted run, and the killed sweep is marked interrupted (both backends).
//!
//! Kill points are fractions of the uninterrupted run's own duration, so the test
//! lands in ingest, between ingest and audit, and inside the audit on any machine.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Db;
use guardrail_storage::{FindingFilter, Store};

const ACCOUNT: &str = "111111111111";
const REGION: &str = "eu-west-1";

/// One snapshot of `n` items: security groups open to the world on SSH (every other
/// one), and buckets without encryption, so the audit opens thousands of findings.
fn write_snapshot(dir: &Path, n: usize) {
    let folder = dir.join(format!(
        "AWSLogs/{ACCOUNT}/Config/{REGION}/2026/11/20/ConfigSnapshot"
    ));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(format!(
        "{ACCOUNT}_Config_{REGION}_ConfigSnapshot_20261120T060000Z_00000000-0000-4000-8000-000000000001.json"
    ));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write!(
        out,
        "{{\"fileVersion\":\"1.0\",\"configSnapshotId\":\"crash\",\"configurationItems\":["
    )
    .unwrap();
    for i in 0..n {
        if i > 0 {
            out.write_all(b",").unwrap();
        }
        let (rtype, id, configuration, supplementary) = if i % 2 == 0 {
            let id = format!("sg-{i:017x}");
            let cidr = if i % 4 == 0 {
                "0.0.0.0/0"
            } else {
                "10.0.0.0/8"
            };
            (
                "AWS::EC2::SecurityGroup",
                id.clone(),
                serde_json::json!({
                    "groupId": id, "groupName": format!("sg-{i}"), "vpcId": "vpc-1",
                    "ipPermissions": [{"fromPort": 22, "toPort": 22, "ipProtocol": "tcp",
                        "ipv4Ranges": [{"cidrIp": cidr}], "ipv6Ranges": [], "prefixListIds": [], "userIdGroupPairs": []}],
                    "ipPermissionsEgress": []
                }),
                serde_json::json!({}),
            )
        } else {
            let name = format!("bucket-{i}");
            (
                "AWS::S3::Bucket",
                name.clone(),
                serde_json::json!({"name": name}),
                serde_json::json!({"BucketVersioningConfiguration": {"status": "Off"}}),
            )
        };
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "version": "1.3", "accountId": ACCOUNT,
                "configurationItemCaptureTime": "2026-11-20T05:00:00.000Z",
                "configurationItemStatus": "OK", "configurationStateId": format!("{}", 1_700_000_000_000u64 + i as u64),
                "arn": format!("arn:aws:test:::{id}"), "resourceType": rtype, "resourceId": id,
                "resourceName": id, "awsRegion": REGION, "tags": {}, "relationships": [],
                "configuration": configuration, "supplementaryConfiguration": supplementary
            }),
        )
        .unwrap();
    }
    out.write_all(b"]}").unwrap();
}

fn findings(url: &str) -> BTreeSet<(String, String)> {
    let store = Store::open(url).unwrap();
    store
        .findings(&FindingFilter {
            limit: 1_000_000,
            ..FindingFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|(f, _)| (f.fingerprint, f.state))
        .collect()
}

fn sweep_cmd(db: &Db, source: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guardrail"));
    c.arg("--database")
        .arg(&db.url)
        .arg("sweep")
        .arg("--source")
        .arg(source)
        .env_remove("GUARDRAIL_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn kill_points_then_clean_sweeps_equal_an_uninterrupted_run(make_db: impl Fn() -> Db) {
    let data = tempfile::tempdir().unwrap();
    write_snapshot(data.path(), 6000);

    let reference = make_db();
    let started = Instant::now();
    let status = sweep_cmd(&reference, data.path()).status().unwrap();
    let full = started.elapsed();
    assert!(status.code() == Some(0), "reference sweep: {status:?}");
    let want = findings(&reference.url);
    assert!(
        want.len() > 3000,
        "the data should open many findings: {}",
        want.len()
    );

    let mut killed_mid_way = 0;
    for fraction in [0.1, 0.3, 0.5, 0.7, 0.9] {
        let db = make_db();
        let mut child = sweep_cmd(&db, data.path()).spawn().unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        let finished_anyway = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let store = Store::open(&db.url).unwrap();
        let before = findings(&db.url);
        if !finished_anyway && before != want {
            killed_mid_way += 1;
        }

        let status = sweep_cmd(&db, data.path()).status().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "clean sweep after a kill at {fraction}"
        );
        let got = findings(&db.url);
        assert_eq!(
            got.len(),
            want.len(),
            "kill at {fraction} of {full:?}: findings differ from an uninterrupted run"
        );
        assert_eq!(got, want, "kill at {fraction}");
        // No sweep is left running; one killed mid-way says it was interrupted.
        let sweeps = store.sweeps(10).unwrap();
        assert!(
            sweeps.iter().all(|s| s.status != "running"),
            "kill at {fraction}: {:?}",
            sweeps.iter().map(|s| &s.status).collect::<Vec<_>>()
        );
        if !finished_anyway && sweeps.len() > 1 && sweeps[1].finished_at.is_none() {
            panic!("kill at {fraction}: the killed sweep was not closed");
        }
    }
    // The kill points must actually interrupt something, or the test proves nothing.
    assert!(
        killed_mid_way >= 2,
        "only {killed_mid_way} kills left findings missing; the run ({full:?}) is too fast to interrupt"
    );
}

#[test]
fn crash_recovery_sqlite() {
    kill_points_then_clean_sweeps_equal_an_uninterrupted_run(common::sqlite);
}

#[test]
fn crash_recovery_postgres() {
    if common::postgres().is_none() {
        return;
    }
    kill_points_then_clean_sweeps_equal_an_uninterrupted_run(|| {
        common::postgres().expect("PostgreSQL went away")
    });
}

#[test]
fn a_sweep_left_running_by_a_dead_process_is_marked_interrupted() {
    let db = common::sqlite();
    let data = tempfile::tempdir().unwrap();
    write_snapshot(data.path(), 20_000);
    // Create the database first, so polling it below never races its creation.
    drop(Store::open(&db.url).unwrap());
    let mut child = sweep_cmd(&db, data.path()).spawn().unwrap();
    // Wait until the sweep record exists, then kill it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(store) = Store::open(&db.url) {
            if store
                .sweeps(1)
                .is_ok_and(|s| s.first().is_some_and(|s| s.status == "running"))
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no running sweep appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let r = db.run(&["sweeps", "--format", "json"]);
    let before = r.json();
    assert_eq!(before[0]["status"], "running", "{before}");
    // Any later sweep notices.
    let r = db.run(&["sweep", "--source", data.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = db.run(&["sweeps", "--format", "json"]);
    let after = r.json();
    let killed = after
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == before[0]["id"])
        .unwrap();
    assert_eq!(killed["status"], "interrupted", "{after}");
}
