//! The storage suite: every scenario runs against SQLite and PostgreSQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use guardrail_model::{
    diff, Cause, Collector, Coverage, ItemKey, Listing, Observation, Scope, SourceError,
};
use guardrail_storage::testing::PgTestDb;
use guardrail_storage::{ItemQuery, RevisionRow, Store, SweepSummary};

#[macro_use]
mod support;
use serde_json::{json, Value};

/// An item's revisions, newest first, with their documents.
fn history(store: &Store, item_id: i64) -> Vec<RevisionRow> {
    store
        .revisions_page(item_id, None, 10)
        .unwrap()
        .into_iter()
        .map(|m| store.revision(m.id).unwrap().unwrap())
        .collect()
}

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
}

fn key(account: &str, region: &str, ty: &str, id: &str) -> ItemKey {
    ItemKey {
        account: account.into(),
        region: region.into(),
        resource_type: ty.into(),
        resource_id: id.into(),
    }
}

fn sg(id: &str, ports: &[u16], at: DateTime<Utc>) -> Observation {
    Observation {
        key: key("111111111111", "us-east-1", "AWS::EC2::SecurityGroup", id),
        arn: Some(format!(
            "arn:aws:ec2:us-east-1:111111111111:security-group/{id}"
        )),
        name: Some(format!("name-{id}")),
        tags: BTreeMap::from([("owner".to_string(), "team-a".to_string())]),
        config: json!({"ipPermissions": ports.iter().map(|p| json!({"fromPort": p, "toPort": p})).collect::<Vec<_>>()}),
        ephemeral: json!({"configurationItemCaptureTime": at.to_rfc3339()}),
        observed_at: at,
        unreadable: Vec::new(),
    }
}

fn sg_scope() -> Scope {
    key("111111111111", "us-east-1", "AWS::EC2::SecurityGroup", "x").scope()
}

fn listing(at: DateTime<Utc>) -> Listing {
    Listing {
        origin: format!("test-{}", at.timestamp()),
        cause: Cause::Sweep,
        observed_at: at,
        actor: None,
    }
}

/// One sweep with one listing of `obs` and the given coverage.
fn sweep(
    store: &Store,
    at: DateTime<Utc>,
    obs: Vec<Observation>,
    coverage: Coverage,
) -> SweepSummary {
    sweep_with_errors(store, at, obs, vec![], coverage)
}

fn sweep_with_errors(
    store: &Store,
    at: DateTime<Utc>,
    obs: Vec<Observation>,
    errors: Vec<SourceError>,
    coverage: Coverage,
) -> SweepSummary {
    let mut ing = store.begin_sweep("test").unwrap();
    ing.begin_listing(listing(at)).unwrap();
    for o in obs {
        ing.observe(o).unwrap();
    }
    for e in errors {
        ing.error(e);
    }
    ing.end_listing(coverage).unwrap();
    ing.finish(None).unwrap()
}

fn revisions(store: &Store) -> i64 {
    store.counts().unwrap().2
}

fn scenario_unchanged_writes_nothing(store: &Store) {
    let obs = vec![sg("sg-1", &[22], t(1)), sg("sg-2", &[443], t(1))];
    let s = sweep(store, t(1), obs.clone(), Coverage::Scopes(vec![sg_scope()]));
    assert_eq!((s.created, s.modified, s.deleted), (2, 0, 0));
    assert_eq!(revisions(store), 2);
    let s = sweep(store, t(1), obs, Coverage::Scopes(vec![sg_scope()]));
    assert_eq!(
        (
            s.created,
            s.modified,
            s.deleted,
            s.unchanged,
            s.ephemeral_updates
        ),
        (0, 0, 0, 2, 0)
    );
    assert_eq!(revisions(store), 2);
}

fn scenario_ephemeral_only_change_makes_no_revision(store: &Store) {
    sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1))],
        Coverage::Nothing,
    );
    let mut later = sg("sg-1", &[22], t(2));
    later.ephemeral = json!({"configurationItemCaptureTime": "changed", "state": "stopped"});
    let s = sweep(store, t(2), vec![later], Coverage::Nothing);
    assert_eq!((s.unchanged, s.ephemeral_updates, s.modified), (1, 1, 0));
    assert_eq!(revisions(store), 1);
    let item = store.resolve_item("sg-1").unwrap();
    assert_eq!(item.ephemeral_json()["state"], "stopped");
    assert_eq!(item.version, 1);
}

fn scenario_durable_change_is_one_revision_with_a_diff(store: &Store) {
    sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1))],
        Coverage::Nothing,
    );
    let s = sweep(
        store,
        t(2),
        vec![sg("sg-1", &[22, 3389], t(2))],
        Coverage::Nothing,
    );
    assert_eq!(s.modified, 1);
    let item = store.resolve_item("sg-1").unwrap();
    let hist = history(store, item.id);
    assert_eq!(hist.len(), 2);
    assert_eq!((hist[0].version, hist[0].change.as_str()), (2, "modified"));
    assert_eq!((hist[1].version, hist[1].change.as_str()), (1, "created"));
    let d = diff(
        &hist[1].document_json().unwrap(),
        &hist[0].document_json().unwrap(),
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].path, "config.ipPermissions[1]");
    assert_eq!(d[0].new, Some(json!({"fromPort": 3389, "toPort": 3389})));
}

fn scenario_complete_listing_deletes_missing_items(store: &Store) {
    let both = vec![sg("sg-1", &[22], t(1)), sg("sg-2", &[443], t(1))];
    sweep(store, t(1), both, Coverage::Scopes(vec![sg_scope()]));
    let s = sweep(
        store,
        t(2),
        vec![sg("sg-1", &[22], t(2))],
        Coverage::Scopes(vec![sg_scope()]),
    );
    assert_eq!(s.deleted, 1);
    let gone = store.resolve_item("sg-2").unwrap();
    assert!(!gone.active);
    let hist = history(store, gone.id);
    assert_eq!(hist[0].change, "deleted");
    assert_eq!(hist[0].document_json().unwrap(), Value::Null);
    // The deleted item is hidden from the default listing but kept in history.
    let active = store.items_page(&ItemQuery::default()).unwrap().rows;
    assert_eq!(active.len(), 1);
}

fn scenario_incomplete_listing_deletes_nothing(store: &Store) {
    let both = vec![sg("sg-1", &[22], t(1)), sg("sg-2", &[443], t(1))];
    sweep(store, t(1), both, Coverage::Scopes(vec![sg_scope()]));
    // An error in the scope (a throttled call, a broken item) taints it.
    let err = SourceError {
        origin: "file.json".into(),
        item: Some("item #2".into()),
        scope: Some(sg_scope()),
        message: "throttled".into(),
    };
    let s = sweep_with_errors(
        store,
        t(2),
        vec![],
        vec![err.clone()],
        Coverage::Scopes(vec![sg_scope()]),
    );
    assert_eq!((s.deleted, s.errors), (0, 1));
    // An error without a scope taints the whole listing.
    let whole = SourceError { scope: None, ..err };
    let s = sweep_with_errors(
        store,
        t(2),
        vec![],
        vec![whole],
        Coverage::Scopes(vec![sg_scope()]),
    );
    assert_eq!(s.deleted, 0);
    // No coverage: nothing can be inferred.
    let s = sweep(store, t(2), vec![], Coverage::Nothing);
    assert_eq!(s.deleted, 0);
    assert_eq!(
        store.items_page(&ItemQuery::default()).unwrap().rows.len(),
        2
    );
    let sweeps = store.sweeps_page(None, 10).unwrap();
    assert_eq!(sweeps[0].status, "complete");
    assert_eq!(sweeps[1].status, "partial");
    let errors = store.sweep_errors_page(sweeps[1].id, None, 500).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].origin, "file.json");
    assert!(errors[0].account.is_none());
    let errors = store.sweep_errors_page(sweeps[2].id, None, 500).unwrap();
    assert_eq!(
        errors[0].resource_type.as_deref(),
        Some("AWS::EC2::SecurityGroup")
    );
}

fn scenario_errors_taint_only_their_scope(store: &Store) {
    let mut role = sg("role-1", &[], t(1));
    role.key = key("111111111111", "global", "AWS::IAM::Role", "role-1");
    let obs = vec![sg("sg-1", &[22], t(1)), role.clone()];
    let scopes = vec![sg_scope(), role.key.scope()];
    sweep(store, t(1), obs, Coverage::Scopes(scopes.clone()));
    let err = SourceError {
        origin: "f".into(),
        item: None,
        scope: Some(role.key.scope()),
        message: "bad policy".into(),
    };
    let s = sweep_with_errors(store, t(2), vec![], vec![err], Coverage::Scopes(scopes));
    assert_eq!(s.deleted, 1);
    assert!(store.resolve_item("role-1").unwrap().active);
    assert!(!store.resolve_item("sg-1").unwrap().active);
}

fn scenario_empty_and_repeated_identities_are_errors_never_items(store: &Store) {
    let scope = Coverage::Scopes(vec![sg_scope()]);
    sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1)), sg("sg-2", &[22], t(1))],
        scope.clone(),
    );
    // Day 2: sg-1 twice with different content, one item without an id, sg-2 absent.
    let s = sweep(
        store,
        t(2),
        vec![
            sg("sg-1", &[22], t(2)),
            sg("sg-1", &[443], t(2)),
            sg("", &[80], t(2)),
        ],
        scope,
    );
    let messages: Vec<&str> = s.error_details.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(s.errors, 2, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("listed twice") && m.contains("#1") && m.contains("#2")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("empty resource id")),
        "{messages:?}"
    );
    // The scope is tainted: the item missing from it is not deleted.
    assert_eq!(s.deleted, 0);
    assert!(store.resolve_item("sg-2").unwrap().active);
    // The first sg-1 counts; the second is not stored; nothing has an empty id.
    let sg1 = store.resolve_item("sg-1").unwrap();
    assert_eq!(sg1.version, 1, "the repeated observation made no revision");
    let all = store.items_page(&ItemQuery::default()).unwrap().rows;
    assert!(all.iter().all(|i| !i.resource_id.is_empty()));
    assert_eq!(all.len(), 2);
}

fn scenario_unreadable_fields_never_cost_an_item(store: &Store) {
    let scope = Coverage::Scopes(vec![sg_scope()]);
    let unreadable = |mut o: Observation| {
        o.unreadable = vec!["configuration.policy: broken IAM policy document".into()];
        o
    };
    // Day 1: sg-1 readable; sg-2 first seen with an unreadable field: stored, marked.
    let s = sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1)), unreadable(sg("sg-2", &[22], t(1)))],
        scope.clone(),
    );
    assert_eq!(s.created, 2, "{:?}", s.error_details);
    assert!(
        s.error_details[0].message.contains("first seen, so stored"),
        "{:?}",
        s.error_details
    );
    let sg2 = store.resolve_item("sg-2").unwrap();
    assert_eq!(
        sg2.ephemeral_json()["unreadable"][0],
        "configuration.policy: broken IAM policy document"
    );
    // Day 2: sg-1 turns unreadable (and would look different): its readable revision
    // stays, it is not deleted, and the error says which revision is kept.
    let s = sweep(
        store,
        t(2),
        vec![
            unreadable(sg("sg-1", &[443], t(2))),
            sg("sg-2", &[22], t(2)),
        ],
        scope,
    );
    assert_eq!(s.deleted, 0);
    assert!(
        s.error_details[0]
            .message
            .contains("last stored revision (version 1) is kept"),
        "{:?}",
        s.error_details
    );
    let sg1 = store.resolve_item("sg-1").unwrap();
    assert!(sg1.active);
    assert_eq!(sg1.version, 1);
}

fn scenario_recorded_coverage_covers_stored_types_of_the_region(store: &Store) {
    let mut vpc = sg("vpc-1", &[], t(1));
    vpc.key.resource_type = "AWS::EC2::VPC".into();
    let mut role = sg("role-1", &[], t(1));
    role.key = key("111111111111", "global", "AWS::IAM::Role", "role-1");
    let recorded = || Coverage::Recorded {
        account: "111111111111".into(),
        region: "us-east-1".into(),
    };
    sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1)), vpc, role],
        recorded(),
    );
    // The next snapshot has only the security group: the VPC type vanished entirely
    // from the region, so its last item is deleted; the global role is not in the
    // region's coverage and stays.
    let s = sweep(store, t(2), vec![sg("sg-1", &[22], t(2))], recorded());
    assert_eq!(s.deleted, 1);
    assert!(!store.resolve_item("vpc-1").unwrap().active);
    assert!(store.resolve_item("role-1").unwrap().active);
}

fn scenario_every_region_coverage_reaches_buckets_in_any_region(store: &Store) {
    let bucket = |id: &str, region: &str, at| {
        let mut o = sg(id, &[], at);
        o.key = key("111111111111", region, "AWS::S3::Bucket", id);
        o
    };
    let every = || Coverage::EveryRegion {
        account: "111111111111".into(),
        resource_type: "AWS::S3::Bucket".into(),
    };
    sweep(
        store,
        t(1),
        vec![
            bucket("logs", "us-east-1", t(1)),
            bucket("eu-only", "eu-west-1", t(1)),
            sg("sg-1", &[22], t(1)),
        ],
        every(),
    );
    // The only bucket of eu-west-1 is gone: its region was not in this listing at all,
    // and still the listing vouches for it. Other types are untouched.
    let s = sweep(
        store,
        t(2),
        vec![bucket("logs", "us-east-1", t(2))],
        every(),
    );
    assert_eq!(s.deleted, 1);
    assert!(!store.resolve_item("eu-only").unwrap().active);
    assert!(store.resolve_item("sg-1").unwrap().active);
}

fn scenario_stale_data_changes_nothing(store: &Store) {
    sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1))],
        Coverage::Scopes(vec![sg_scope()]),
    );
    sweep(
        store,
        t(3),
        vec![sg("sg-1", &[22, 80], t(3)), sg("sg-2", &[443], t(3))],
        Coverage::Scopes(vec![sg_scope()]),
    );
    let before = revisions(store);
    // Replaying an older listing: its state is stale, and it cannot delete sg-2,
    // which was created after it.
    let s = sweep(
        store,
        t(2),
        vec![sg("sg-1", &[22], t(2))],
        Coverage::Scopes(vec![sg_scope()]),
    );
    assert_eq!((s.created, s.modified, s.deleted, s.stale), (0, 0, 0, 1));
    assert_eq!(revisions(store), before);
    assert!(store.resolve_item("sg-2").unwrap().active);
}

fn scenario_deleted_item_comes_back(store: &Store) {
    sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1))],
        Coverage::Scopes(vec![sg_scope()]),
    );
    sweep(store, t(2), vec![], Coverage::Scopes(vec![sg_scope()]));
    let s = sweep(
        store,
        t(3),
        vec![sg("sg-1", &[22], t(3))],
        Coverage::Scopes(vec![sg_scope()]),
    );
    assert_eq!(s.created, 1);
    let item = store.resolve_item("sg-1").unwrap();
    assert!(item.active);
    let changes: Vec<String> = store
        .revisions_page(item.id, None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.change.to_string())
        .collect();
    assert_eq!(changes, ["created", "deleted", "created"]);
}

fn scenario_explicit_deletions_and_repeated_states(store: &Store) {
    // A history file: several states of one item in one listing, then its deletion.
    let mut ing = store.begin_sweep("history").unwrap();
    ing.begin_listing(Listing {
        origin: "history.json".into(),
        cause: Cause::Backfill,
        observed_at: t(5),
        actor: None,
    })
    .unwrap();
    ing.observe(sg("sg-1", &[22], t(1))).unwrap();
    ing.observe(sg("sg-1", &[22, 80], t(2))).unwrap();
    ing.observe(sg("sg-1", &[80], t(3))).unwrap();
    ing.deleted(sg("sg-1", &[], t(4)).key, t(4)).unwrap();
    ing.end_listing(Coverage::Nothing).unwrap();
    let s = ing.finish(None).unwrap();
    assert_eq!((s.created, s.modified, s.deleted), (1, 2, 1));
    let item = store.resolve_item("sg-1").unwrap();
    let hist = history(store, item.id);
    assert_eq!(hist.len(), 4);
    assert!(hist.iter().all(|r| r.cause == "backfill"));
    // Time travel.
    let at = store
        .revision_at(item.id, t(2) + Duration::hours(1))
        .unwrap()
        .unwrap();
    assert_eq!(at.version, 2);
    assert!(store
        .revision_at(item.id, t(1) - Duration::hours(1))
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .revision_by_version(item.id, 4)
            .unwrap()
            .unwrap()
            .change,
        "deleted"
    );
}

fn scenario_large_batches_and_lookups(store: &Store) {
    let obs: Vec<Observation> = (0..1234)
        .map(|i| sg(&format!("sg-{i:05}"), &[22], t(1)))
        .collect();
    let s = sweep(store, t(1), obs.clone(), Coverage::Scopes(vec![sg_scope()]));
    assert_eq!(s.created, 1234);
    let mut changed = obs;
    changed.truncate(1200);
    for o in changed.iter_mut().step_by(100) {
        o.config = json!({"changed": true});
    }
    for o in changed.iter_mut() {
        o.observed_at = t(2);
    }
    let s = sweep(store, t(2), changed, Coverage::Scopes(vec![sg_scope()]));
    assert_eq!((s.modified, s.deleted, s.unchanged), (12, 34, 1188));
    assert_eq!(revisions(store), 1234 + 12 + 34);
    // Lookups by ARN, name, and ambiguity.
    let arn = "arn:aws:ec2:us-east-1:111111111111:security-group/sg-00007";
    assert_eq!(store.resolve_item(arn).unwrap().resource_id, "sg-00007");
    assert_eq!(
        store.resolve_item("name-sg-00008").unwrap().resource_id,
        "sg-00008"
    );
    assert!(store.resolve_item("nothing-like-this").is_err());
    let page = store
        .items_page(&ItemQuery {
            text: Some("sg-0001".into()),
            limit: 5,
            ..ItemQuery::default()
        })
        .unwrap()
        .rows;
    assert_eq!(page.len(), 5);
    assert!(store.database_size().unwrap() > 0);
}

fn scenario_two_accounts_same_resource_id(store: &Store) {
    let a = sg("sg-1", &[22], t(1));
    let mut b = sg("sg-1", &[22], t(1));
    b.key.account = "222222222222".into();
    sweep(store, t(1), vec![a, b], Coverage::Nothing);
    let err = store.resolve_item("sg-1").unwrap_err().to_string();
    assert!(err.contains("matches several items"), "{err}");
}

fn scenario_reopen_keeps_everything(store: &Store, url: &str) {
    sweep(
        store,
        t(1),
        vec![sg("sg-1", &[22], t(1))],
        Coverage::Nothing,
    );
    let again = Store::open(url).unwrap();
    assert_eq!(again.counts().unwrap(), (1, 1, 1));
}

on_both_backends!(
    scenario_unchanged_writes_nothing,
    scenario_ephemeral_only_change_makes_no_revision,
    scenario_durable_change_is_one_revision_with_a_diff,
    scenario_complete_listing_deletes_missing_items,
    scenario_incomplete_listing_deletes_nothing,
    scenario_errors_taint_only_their_scope,
    scenario_empty_and_repeated_identities_are_errors_never_items,
    scenario_unreadable_fields_never_cost_an_item,
    scenario_recorded_coverage_covers_stored_types_of_the_region,
    scenario_every_region_coverage_reaches_buckets_in_any_region,
    scenario_stale_data_changes_nothing,
    scenario_deleted_item_comes_back,
    scenario_explicit_deletions_and_repeated_states,
    scenario_large_batches_and_lookups,
    scenario_two_accounts_same_resource_id,
);

#[test]
fn sqlite_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/dir/g.db", dir.path().display());
    let store = Store::open(&url).unwrap();
    scenario_reopen_keeps_everything(&store, &url);
}

#[test]
fn postgres_reopen_keeps_everything() {
    let Some(db) = PgTestDb::create_or_skip("gr_store") else {
        return;
    };
    let store = Store::open(&db.url).unwrap();
    scenario_reopen_keeps_everything(&store, &db.url);
}

#[test]
fn unreachable_postgres_is_a_clear_error() {
    let err = Store::open("postgres://nobody:pw@127.0.0.1:1/none")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("is PostgreSQL running"), "{err}");
    assert!(!err.contains("pw@"), "password leaked: {err}");
}

#[test]
fn a_file_that_is_not_sqlite_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&format!("sqlite://{}", path.display()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not.db"), "{err}");
}
