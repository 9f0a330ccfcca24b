//! Leased sweep jobs and named leases on both backends, and many workers claiming at
//! once on PostgreSQL.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use guardrail_storage::{JobSpec, Store};

#[macro_use]
mod support;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
}

fn nv(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

fn spec(job: &str, def: &str, due: DateTime<Utc>) -> JobSpec {
    JobSpec {
        job: job.into(),
        source: "s".into(),
        account: String::new(),
        role_arn: None,
        definition: def.into(),
        interval: Duration::seconds(300),
        first_due: due,
    }
}

fn a_due_job_is_claimed_once_and_taken_over_only_after_its_lease_expires(store: &Store) {
    let t0 = t0();
    let mine = vec!["s/1".to_owned(), "s/2".to_owned()];
    let sync = store
        .sync_jobs(
            &["s".into()],
            &[
                spec("s/1", "a", t0),
                spec("s/2", "a", t0 + Duration::hours(1)),
            ],
            t0,
        )
        .unwrap();
    assert_eq!(sync.added.len(), 2);
    let lease = Duration::seconds(60);
    let a = store.claim_job("w1", &mine, t0, lease).unwrap().unwrap();
    assert_eq!(a.row.job, "s/1");
    // Held and the other not due: nothing for a second worker.
    assert!(store.claim_job("w2", &mine, t0, lease).unwrap().is_none());
    // The heartbeat keeps it held past its first expiry.
    store
        .renew_leases("w1", t0 + Duration::seconds(50), lease)
        .unwrap();
    assert!(store
        .claim_job("w2", &mine, t0 + Duration::seconds(90), lease)
        .unwrap()
        .is_none());
    // w1 dies: once the lease runs out, w2 takes over, and w1 can no longer finish.
    let later = t0 + Duration::seconds(200);
    let b = store.claim_job("w2", &mine, later, lease).unwrap().unwrap();
    assert_eq!(b.row.job, "s/1");
    assert_eq!(b.taken_over_from.as_deref(), Some("w1"));
    assert_eq!(b.row.takeovers, 1);
    assert!(!store
        .finish_job(
            &a,
            "w1",
            later,
            "complete",
            "",
            later + Duration::seconds(300)
        )
        .unwrap());
    assert!(store
        .finish_job(
            &b,
            "w2",
            later,
            "complete",
            "ok",
            later + Duration::seconds(300)
        )
        .unwrap());
    let row = store
        .jobs()
        .unwrap()
        .into_iter()
        .find(|j| j.job == "s/1")
        .unwrap();
    assert_eq!((row.runs, row.leased_by.as_deref()), (1, None));
    assert_eq!(row.due_at, nv(later + Duration::seconds(300)));
    assert!(store
        .claim_job("w1", &mine, later, lease)
        .unwrap()
        .is_none());
}

fn syncing_redefines_edited_jobs_and_removes_only_this_sources_missing_ones(store: &Store) {
    let t0 = t0();
    let later = t0 + Duration::hours(1);
    store
        .sync_jobs(
            &["s".into()],
            &[spec("s/1", "a", later), spec("s/2", "a", later)],
            t0,
        )
        .unwrap();
    let mut other = spec("o", "x", later);
    other.source = "o".into();
    store.sync_jobs(&["o".into()], &[other], t0).unwrap();
    let sync = store
        .sync_jobs(&["s".into()], &[spec("s/1", "b", later)], t0)
        .unwrap();
    assert_eq!(sync.redefined, vec!["s/1".to_owned()]);
    assert_eq!(sync.removed, vec!["s/2".to_owned()]);
    let jobs = store.jobs().unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.job.as_str()).collect();
    assert_eq!(names, ["o", "s/1"]);
    // Edited: due at once, not at its old time.
    assert_eq!(jobs[1].due_at, nv(t0));
}

fn a_named_lease_has_one_holder_until_it_is_released_or_expires(store: &Store) {
    let t0 = t0();
    let lease = Duration::seconds(30);
    assert!(store.acquire_lease("audit", "w1", t0, lease).unwrap());
    assert!(store.acquire_lease("audit", "w1", t0, lease).unwrap());
    assert!(!store.acquire_lease("audit", "w2", t0, lease).unwrap());
    store.release_lease("audit", "w2").unwrap();
    assert!(!store.acquire_lease("audit", "w2", t0, lease).unwrap());
    store.release_lease("audit", "w1").unwrap();
    assert!(store.acquire_lease("audit", "w2", t0, lease).unwrap());
    assert!(store
        .acquire_lease("audit", "w3", t0 + Duration::seconds(31), lease)
        .unwrap());
}

/// Many workers claiming at once, each from its own connection: every due job is run
/// by exactly one of them.
fn concurrent_claims_take_each_job_once(store: &Store) {
    let t = t0();
    let names: Vec<String> = (0..200).map(|i| format!("s/{i:03}")).collect();
    let specs: Vec<JobSpec> = names.iter().map(|n| spec(n, "a", t)).collect();
    store.sync_jobs(&["s".into()], &specs, t).unwrap();
    let lease = Duration::seconds(600);
    let claimed: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|w| {
                let (store, names) = (store.clone(), names.clone());
                scope.spawn(move || {
                    let worker = format!("w{w}");
                    let mut got = Vec::new();
                    while let Some(job) = store.claim_job(&worker, &names, t, lease).unwrap() {
                        got.push(job.row.job.clone());
                        assert!(store
                            .finish_job(&job, &worker, t, "complete", "", t + Duration::hours(1))
                            .unwrap());
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<String> = claimed.concat();
    all.sort();
    assert_eq!(all, names, "each job exactly once");
    assert!(store.jobs().unwrap().iter().all(|j| j.runs == 1));
}

on_both_backends!(
    a_due_job_is_claimed_once_and_taken_over_only_after_its_lease_expires,
    syncing_redefines_edited_jobs_and_removes_only_this_sources_missing_ones,
    a_named_lease_has_one_holder_until_it_is_released_or_expires,
    concurrent_claims_take_each_job_once,
);
