//! The outbox on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use guardrail_storage::{NewOutbox, Store};

#[macro_use]
mod support;

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap() + Duration::minutes(min)
}

fn row(key: &str, due: DateTime<Utc>) -> NewOutbox {
    NewOutbox {
        route: "r".into(),
        channel: "webhook".into(),
        dedup_key: key.into(),
        event: "opened".into(),
        finding_id: None,
        payload: "{}".into(),
        created_at: t(0).naive_utc(),
        next_attempt_at: due.naive_utc(),
        digest_window: None,
    }
}

fn scenario_enqueue_lease_retry_deliver(store: &Store) {
    let (cursor, events) = store.events_after_cursor("c", 100).unwrap();
    assert_eq!((cursor, events.len()), (0, 0));
    assert_eq!(
        store
            .enqueue("c", 7, &[row("a", t(0)), row("b", t(5))])
            .unwrap(),
        2
    );
    // Enqueueing the same dedup keys again adds nothing; the cursor moved.
    assert_eq!(store.enqueue("c", 9, &[row("a", t(0))]).unwrap(), 0);
    assert_eq!(store.events_after_cursor("c", 100).unwrap().0, 9);

    let leased = store.lease_due(t(1), Duration::minutes(1), 10).unwrap();
    assert_eq!(
        leased
            .iter()
            .map(|r| r.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    // Leased rows are not handed out twice.
    assert!(store
        .lease_due(t(1), Duration::minutes(1), 10)
        .unwrap()
        .is_empty());
    store
        .mark_failed(&[leased[0].id], "HTTP 500", t(3), false, t(1))
        .unwrap();
    assert!(
        store
            .lease_due(t(2), Duration::minutes(1), 10)
            .unwrap()
            .is_empty(),
        "not before the backoff"
    );
    let again = store.lease_due(t(6), Duration::minutes(1), 10).unwrap();
    assert_eq!(again.len(), 2);
    let a = again.iter().find(|r| r.dedup_key == "a").unwrap();
    assert_eq!(
        (a.attempts, a.last_error.as_deref(), a.status()),
        (1, Some("HTTP 500"), "failed")
    );
    store.mark_delivered(&[a.id], t(6)).unwrap();
    let b = again.iter().find(|r| r.dedup_key == "b").unwrap();
    store
        .mark_failed(&[b.id], "connection refused", t(60), true, t(6))
        .unwrap();
    assert!(store
        .lease_due(t(100), Duration::minutes(1), 10)
        .unwrap()
        .is_empty());
    assert_eq!(store.outbox(Some("delivered"), 10).unwrap().len(), 1);
    let gave_up = store.outbox(Some("gave_up"), 10).unwrap();
    assert_eq!(
        (gave_up.len(), gave_up[0].last_error.as_deref()),
        (1, Some("connection refused"))
    );
    assert_eq!(store.outbox(None, 10).unwrap().len(), 2);
    // An expired lease is handed out again (a dispatcher died mid-delivery).
    store.enqueue_one(&row("c", t(0))).unwrap();
    assert_eq!(
        store
            .lease_due(t(200), Duration::minutes(1), 10)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .lease_due(t(202), Duration::minutes(1), 10)
            .unwrap()
            .len(),
        1
    );
}

on_both_backends!(scenario_enqueue_lease_retry_deliver);
