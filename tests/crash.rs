//! kill -9 at any moment of a sweep, then a clean sweep: the findings equal those of an
//! uninterrupted run, and the killed sweep is marked interrupted (both backends).
//!
//! Kill points are fractions of the uninterrupted run's own duration, so the test
//! lands in ingest, between ingest and audit, and inside the audit on any machine.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{write_snapshot, Db};
use guardrail_storage::{FindingQuery, Store};

fn findings(url: &str) -> BTreeSet<(String, String)> {
    let store = Store::open(url).unwrap();
    let mut q = FindingQuery::default();
    let mut all = BTreeSet::new();
    loop {
        let page = store.findings_page(&q).unwrap();
        all.extend(
            page.rows
                .into_iter()
                .map(|(f, _)| (f.fingerprint, f.state.to_string())),
        );
        match page.next_cursor {
            Some(next) => q.cursor = Some(next),
            None => return all,
        }
    }
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
        let sweeps = store.sweeps_page(None, 10).unwrap();
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
                .sweeps_page(None, 1)
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
