//! The server's storage: tokens, sessions, findings pages with keyset cursors, the
//! summary, item search and revision pages, on both backends.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use guardrail_model::{Cause, Collector, Coverage, ItemKey, Listing, Observation};
use guardrail_storage::{
    FindingQuery, FindingSort, ItemAudit, ItemQuery, NewFinding, Principal, Role, RuleResult, Store,
};
use serde_json::json;

#[macro_use]
mod support;

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
}

fn key(account: &str, rtype: &str, id: &str) -> ItemKey {
    ItemKey {
        account: account.into(),
        region: "us-east-1".into(),
        resource_type: rtype.into(),
        resource_id: id.into(),
    }
}

/// One sweep storing `items` (account, type, id, owner tag, config) at `at`.
fn sweep(store: &Store, at: DateTime<Utc>, items: &[(&str, &str, &str, Option<&str>, i64)]) {
    let mut ing = store.begin_sweep("t").unwrap();
    ing.begin_listing(Listing {
        origin: "t".into(),
        cause: Cause::Sweep,
        observed_at: at,
        actor: None,
    })
    .unwrap();
    for (account, rtype, id, owner, x) in items {
        let mut tags = BTreeMap::new();
        if let Some(o) = owner {
            tags.insert("owner".to_string(), o.to_string());
        }
        ing.observe(Observation {
            key: key(account, rtype, id),
            arn: Some(format!("arn:aws:x::{account}:{id}")),
            name: Some(format!("Name-{id}")),
            tags,
            config: json!({ "x": x }),
            ephemeral: json!({}),
            observed_at: at,
            unreadable: Vec::new(),
        })
        .unwrap();
    }
    ing.end_listing(Coverage::Nothing).unwrap();
    ing.finish(None).unwrap();
}

fn finding(k: &str, score: i64, severity: &str) -> NewFinding {
    NewFinding {
        key: k.into(),
        kind: "state".into(),
        title: format!("finding {k}"),
        score,
        rule_score: score,
        severity: severity.into(),
        detail: "d".into(),
        remediation: "r".into(),
        suppressed_by: None,
        controls: String::new(),
    }
}

/// 3 items in two accounts, 2 owners; 7 findings with scores 1..=7.
fn seed(store: &Store) -> Vec<i64> {
    let items = [
        (
            "111111111111",
            "AWS::EC2::SecurityGroup",
            "sg-a",
            Some("web"),
            1,
        ),
        (
            "111111111111",
            "AWS::S3::Bucket",
            "bucket-b",
            Some("data"),
            1,
        ),
        ("222222222222", "AWS::EC2::SecurityGroup", "sg-c", None, 1),
    ];
    sweep(store, t(1), &items);
    let mut ids = Vec::new();
    let mut audits = Vec::new();
    for (n, (account, rtype, id, _, _)) in items.iter().enumerate() {
        let item = store.resolve_item(id).unwrap();
        ids.push(item.id);
        let results = (0..3)
            .filter(|k| n * 3 + k < 7)
            .map(|k| {
                let score = (n * 3 + k + 1) as i64;
                let sev = if score >= 6 { "high" } else { "low" };
                (
                    format!("r/{k}"),
                    RuleResult::Findings(vec![finding(&format!("{k}"), score, sev)]),
                )
            })
            .collect();
        audits.push(ItemAudit {
            item_id: item.id,
            key: key(account, rtype, id),
            revision_id: None,
            audited_as: None,
            results,
        });
    }
    store.record_audits(&audits, t(1)).unwrap();
    ids
}

fn query() -> FindingQuery {
    FindingQuery {
        owner_tag: "owner".into(),
        ..Default::default()
    }
}

fn scenario_tokens_hashed_verified_revoked(store: &Store) {
    let (row, secret) = store.create_token("alice", Role::Triager, t(1)).unwrap();
    assert!(
        secret.starts_with("grd_") && secret.len() == 4 + 64,
        "{secret}"
    );
    assert_ne!(row.token_hash, secret, "the plaintext is never stored");
    let p = store
        .verify_token(&secret, t(1))
        .unwrap()
        .expect("valid token");
    assert_eq!((p.name.as_str(), p.role), ("alice", Role::Triager));
    assert!(store.verify_token("grd_nope", t(1)).unwrap().is_none());
    assert!(store.verify_token(&secret[4..], t(1)).unwrap().is_none());
    let e = store.create_token("alice", Role::Admin, t(1)).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert!(store.create_token("bad name", Role::Admin, t(1)).is_err());
    let listed = store.tokens().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());
    // A session made from the token dies with it.
    let (sid, csrf) = store.create_session(&p, Duration::hours(8), t(1)).unwrap();
    let (sp, row) = store.session(&sid, t(1)).unwrap().expect("live session");
    assert_eq!(sp, p);
    assert_eq!(row.csrf_token, csrf);
    assert!(store.revoke_token("alice", t(2)).unwrap());
    assert!(!store.revoke_token("alice", t(2)).unwrap());
    assert!(store.verify_token(&secret, t(2)).unwrap().is_none());
    assert!(store.session(&sid, t(2)).unwrap().is_none());
}

fn scenario_sessions_expire_and_log_out(store: &Store) {
    let p = Principal {
        name: "bob@example.com".into(),
        role: Role::Viewer,
        token_id: None,
    };
    let (sid, _) = store.create_session(&p, Duration::hours(1), t(1)).unwrap();
    assert!(store.session(&sid, t(1)).unwrap().is_some());
    assert!(store
        .session(&sid, t(1) + Duration::hours(2))
        .unwrap()
        .is_none());
    assert!(store.session("not-a-session", t(1)).unwrap().is_none());
    let (sid2, _) = store.create_session(&p, Duration::hours(1), t(1)).unwrap();
    store.delete_session(&sid2).unwrap();
    assert!(store.session(&sid2, t(1)).unwrap().is_none());
}

fn scenario_findings_pages_follow_the_cursor(store: &Store) {
    seed(store);
    let mut q = query();
    q.limit = 3;
    let mut seen = Vec::new();
    loop {
        let page = store.findings_page(&q).unwrap();
        assert!(page.rows.len() <= 3);
        seen.extend(page.rows.iter().map(|(f, _)| f.score));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, vec![7, 6, 5, 4, 3, 2, 1]);
    // A cursor of another sort is refused, not misread.
    let first = store
        .findings_page(&FindingQuery {
            limit: 2,
            ..query()
        })
        .unwrap();
    let e = store
        .findings_page(&FindingQuery {
            sort: FindingSort::LastSeen,
            cursor: first.next_cursor,
            ..query()
        })
        .unwrap_err();
    assert!(e.to_string().contains("cursor"), "{e}");
    // Time sorts page too (all share one timestamp: the id breaks the tie).
    let mut q = FindingQuery {
        sort: FindingSort::FirstSeen,
        limit: 4,
        ..query()
    };
    let p1 = store.findings_page(&q).unwrap();
    q.cursor = p1.next_cursor.clone();
    let p2 = store.findings_page(&q).unwrap();
    assert_eq!(p1.rows.len() + p2.rows.len(), 7);
    assert!(p2.next_cursor.is_none());
}

fn scenario_findings_filters(store: &Store) {
    seed(store);
    let count = |q: FindingQuery| store.findings_page(&q).unwrap().rows.len();
    assert_eq!(
        count(FindingQuery {
            min_score: Some(5),
            ..query()
        }),
        3
    );
    assert_eq!(
        count(FindingQuery {
            severities: vec!["high".into()],
            ..query()
        }),
        2
    );
    assert_eq!(
        count(FindingQuery {
            account: Some("222222222222".into()),
            ..query()
        }),
        1
    );
    assert_eq!(
        count(FindingQuery {
            resource_type: Some("AWS::S3::Bucket".into()),
            ..query()
        }),
        3
    );
    assert_eq!(
        count(FindingQuery {
            rule_id: Some("r/0".into()),
            ..query()
        }),
        3
    );
    assert_eq!(
        count(FindingQuery {
            owner: Some("web".into()),
            ..query()
        }),
        3
    );
    assert_eq!(
        count(FindingQuery {
            owner: Some("nobody".into()),
            ..query()
        }),
        0
    );
    assert_eq!(
        count(FindingQuery {
            text: Some("BUCKET-b".into()),
            ..query()
        }),
        3
    );
    assert_eq!(
        count(FindingQuery {
            text: Some("%".into()),
            ..query()
        }),
        0
    );
    assert_eq!(
        count(FindingQuery {
            states: vec![guardrail_model::FindingState::Fixed],
            ..query()
        }),
        0
    );
}

fn scenario_summary_groups_in_the_database(store: &Store) {
    seed(store);
    let summary = store.summary("owner", t(1) - Duration::hours(1)).unwrap();
    assert_eq!(summary.new_since, 7);
    let s = summary.counts;
    assert_eq!(s.open, 7);
    let get = |v: &[guardrail_storage::Count], k: Option<&str>| {
        v.iter().find(|c| c.key.as_deref() == k).map(|c| c.count)
    };
    assert_eq!(get(&s.by_severity, Some("high")), Some(2));
    assert_eq!(get(&s.by_severity, Some("low")), Some(5));
    assert_eq!(get(&s.by_account, Some("111111111111")), Some(6));
    assert_eq!(get(&s.by_resource_type, Some("AWS::S3::Bucket")), Some(3));
    assert_eq!(get(&s.by_owner, Some("web")), Some(3));
    assert_eq!(get(&s.by_owner, Some("data")), Some(3));
    assert_eq!(get(&s.by_owner, None), Some(1));
    let later = store.summary("owner", t(2)).unwrap();
    assert_eq!(later.new_since, 0);
}

fn scenario_item_search_and_revision_pages(store: &Store) {
    seed(store);
    let q = |q: ItemQuery| store.items_page(&q).unwrap().rows;
    assert_eq!(q(ItemQuery::default()).len(), 3);
    assert_eq!(
        q(ItemQuery {
            text: Some("name-sg".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        q(ItemQuery {
            text: Some("arn:aws:x::222".into()),
            ..Default::default()
        })
        .len(),
        1
    );
    assert_eq!(
        q(ItemQuery {
            tag_key: Some("owner".into()),
            tag_value: Some("data".into()),
            ..Default::default()
        })[0]
            .resource_id,
        "bucket-b"
    );
    assert_eq!(
        q(ItemQuery {
            tag_key: Some("owner".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        q(ItemQuery {
            account: Some("222222222222".into()),
            ..Default::default()
        })
        .len(),
        1
    );
    assert_eq!(
        q(ItemQuery {
            resource_type: Some("AWS::S3::Bucket".into()),
            ..Default::default()
        })
        .len(),
        1
    );
    let p1 = store
        .items_page(&ItemQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p1.rows.len(), 2);
    let p2 = store
        .items_page(&ItemQuery {
            limit: 2,
            after_id: p1.next_cursor,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p2.rows.len(), 1);
    assert!(p2.next_cursor.is_none());

    // Five versions of one item; pages of two, newest first.
    for (day, x) in [(2, 2), (3, 3), (4, 4), (5, 5)] {
        sweep(
            store,
            t(day),
            &[(
                "111111111111",
                "AWS::EC2::SecurityGroup",
                "sg-a",
                Some("web"),
                x,
            )],
        );
    }
    let item = store.resolve_item("sg-a").unwrap();
    assert_eq!(item.version, 5);
    let page = store.revisions_page(item.id, None, 2).unwrap();
    assert_eq!(
        page.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![5, 4]
    );
    let page = store.revisions_page(item.id, Some(4), 2).unwrap();
    assert_eq!(
        page.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![3, 2]
    );
    let page = store.revisions_page(item.id, Some(2), 2).unwrap();
    assert_eq!(page.iter().map(|r| r.version).collect::<Vec<_>>(), vec![1]);
}

fn scenario_sweep_health_and_metrics(store: &Store) {
    seed(store);
    sweep(store, t(2), &[]);
    let health = store.sweep_health().unwrap();
    assert_eq!(health.len(), 1, "one source");
    assert_eq!(health[0].last.id, store.sweeps_page(None, 1).unwrap()[0].id);
    let page = store.sweeps_page(None, 1).unwrap();
    assert_eq!(page.len(), 1);
    let older = store.sweeps_page(Some(page[0].id), 10).unwrap();
    assert_eq!(older.len(), 1);
    store.record_rule_error("r/x", "boom", t(2)).unwrap();
    let m = store.metrics_snapshot().unwrap();
    assert_eq!(m.rule_errors, 1);
    assert_eq!(m.items_active, 3);
    let open: i64 = m
        .findings_by_state_severity
        .iter()
        .filter(|(s, _, _)| s == "open")
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(open, 7);
    assert_eq!(store.rule_errors_page(None, 10).unwrap().len(), 1);
    store.ping().unwrap();
}

on_both_backends!(
    scenario_tokens_hashed_verified_revoked,
    scenario_sessions_expire_and_log_out,
    scenario_findings_pages_follow_the_cursor,
    scenario_findings_filters,
    scenario_summary_groups_in_the_database,
    scenario_item_search_and_revision_pages,
    scenario_sweep_health_and_metrics,
);
