//! Page costs of the server's reads at 100k findings: figures printed, nothing timed
//! is asserted (ignored by default: it takes a minute or two). Run with
//! `cargo test --release -p guardrail-storage --test server_load -- --ignored --nocapture`
//! (`GUARDRAIL_LOAD_ITEMS`, default 20000 items × 5 findings each).

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use guardrail_model::{Cause, Collector, Coverage, ItemKey, Listing, Observation};
use guardrail_storage::{
    FindingQuery, FindingSort, ItemAudit, ItemQuery, NewFinding, RuleResult, Store,
};
use serde_json::json;

fn key(n: usize) -> ItemKey {
    ItemKey {
        account: format!("{:012}", 100_000_000_000u64 + (n % 40) as u64),
        region: "us-east-1".into(),
        resource_type: "AWS::EC2::SecurityGroup".into(),
        resource_id: format!("sg-{n:08}"),
    }
}

fn load(store: &Store, items: usize) {
    let now = Utc::now();
    let mut ing = store.begin_sweep("load").unwrap();
    ing.begin_listing(Listing {
        origin: "load".into(),
        cause: Cause::Sweep,
        observed_at: now,
        actor: None,
    })
    .unwrap();
    for n in 0..items {
        ing.observe(Observation {
            key: key(n),
            arn: None,
            name: Some(format!("group-{n}")),
            tags: BTreeMap::from([("owner".to_string(), format!("team-{}", n % 13))]),
            config: json!({ "n": n }),
            ephemeral: json!({}),
            observed_at: now,
            unreadable: Vec::new(),
        })
        .unwrap();
    }
    ing.end_listing(Coverage::Nothing).unwrap();
    ing.finish(None).unwrap();
    let mut after = None;
    let mut all = Vec::new();
    loop {
        let page = store
            .items_page(&ItemQuery {
                limit: 500,
                after_id: after,
                ..Default::default()
            })
            .unwrap();
        all.extend(page.rows.iter().map(|i| {
            let key = ItemKey {
                account: i.account.clone(),
                region: i.region.clone(),
                resource_type: i.resource_type.clone(),
                resource_id: i.resource_id.clone(),
            };
            (i.id, key)
        }));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    for chunk in all.chunks(1000) {
        let audits: Vec<ItemAudit> = chunk
            .iter()
            .enumerate()
            .map(|(k, (id, key))| ItemAudit {
                item_id: *id,
                key: key.clone(),
                revision_id: None,
                audited_as: None,
                results: (0..5)
                    .map(|r| {
                        (
                            format!("rule/{r}"),
                            RuleResult::Findings(vec![NewFinding {
                                key: "k".into(),
                                kind: "state".into(),
                                title: format!("finding {r}"),
                                score: ((*id as usize + k + r) % 11) as i64,
                                rule_score: 5,
                                severity: ["low", "medium", "high", "critical"][r % 4].into(),
                                detail: "d".into(),
                                remediation: "r".into(),
                                suppressed_by: None,
                                controls: String::new(),
                            }]),
                        )
                    })
                    .collect(),
            })
            .collect();
        store.record_audits(&audits, now).unwrap();
    }
}

fn time<T>(what: &str, f: impl Fn() -> T) {
    f(); // warm the cache: the figure is a page served by a running server
    let start = Instant::now();
    let runs = 5;
    for _ in 0..runs {
        f();
    }
    let each = start.elapsed() / runs;
    println!("{what:<48} {:>8.2} ms", each.as_secs_f64() * 1000.0);
}

fn measure(store: &Store) {
    let items: usize = std::env::var("GUARDRAIL_LOAD_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let start = Instant::now();
    load(store, items);
    println!(
        "{}: {} items, {} findings loaded in {:.1}s",
        store.backend().as_str(),
        items,
        items * 5,
        start.elapsed().as_secs_f64()
    );
    let q = FindingQuery {
        states: vec![guardrail_model::FindingState::Open],
        owner_tag: "owner".into(),
        limit: 50,
        ..Default::default()
    };
    time("findings page 1 (open, by score)", || {
        store.findings_page(&q).unwrap()
    });
    // Walk 200 pages deep, then time the next one: keyset pages cost the same anywhere.
    let mut deep = q.clone();
    for _ in 0..200 {
        deep.cursor = store.findings_page(&deep).unwrap().next_cursor;
    }
    time("findings page 201 (cursor)", || {
        store.findings_page(&deep).unwrap()
    });
    time("findings page 1 (one account)", || {
        store
            .findings_page(&FindingQuery {
                account: Some(key(3).account),
                ..q.clone()
            })
            .unwrap()
    });
    time("findings page 1 (open, by first seen)", || {
        store
            .findings_page(&FindingQuery {
                sort: FindingSort::FirstSeen,
                ..q.clone()
            })
            .unwrap()
    });
    time("findings page 1 (owner = team-3)", || {
        store
            .findings_page(&FindingQuery {
                owner: Some("team-3".into()),
                ..q.clone()
            })
            .unwrap()
    });
    time("summary (5 GROUP BYs)", || {
        store.summary("owner", Utc::now()).unwrap()
    });
    time("items page (text search)", || {
        store
            .items_page(&ItemQuery {
                text: Some("group-1999".into()),
                limit: 50,
                ..Default::default()
            })
            .unwrap()
    });
}

#[test]
#[ignore]
fn sqlite_pages_at_100k_findings() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/g.db", dir.path().display())).unwrap();
    measure(&store);
}

#[test]
#[ignore]
fn postgres_pages_at_100k_findings() {
    let Some(db) = guardrail_storage::testing::PgTestDb::create_or_skip("gr_load") else {
        return;
    };
    let store = Store::open(&db.url).unwrap();
    measure(&store);
    if std::env::var("GUARDRAIL_LOAD_KEEP").is_ok_and(|v| v == "1") {
        // Keep the database for EXPLAIN ANALYZE; drop it by hand afterwards.
        println!("kept {}", db.url);
        std::mem::forget(db);
    }
}
