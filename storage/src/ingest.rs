//! Turning observations into revisions: the change-detection core.
//!
//! Per scope `(account, region, type)` the ingestor loads a compact index (item id,
//! version, content hash, ephemeral hash, active flag, time of the latest revision)
//! once, then compares each observation against it in memory. Only differences are
//! written, in one transaction per batch. Memory is the index plus one batch, so a
//! quiet re-sweep streams no matter how large the listing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use guardrail_model::{
    content_hash, Canonical, ChangeKind, CollectError, Collector, Coverage, ItemKey, Listing,
    Observation, Scope, SourceError,
};
use serde::Serialize;
use tracing::{debug, warn};

use crate::schema::{items, revisions, sweep_errors, sweeps};
use crate::{with_conn, write_tx, StorageError, Store};

/// Observations written per transaction. Large enough that a first sweep of 100k items
/// is a few hundred transactions; each commit rewrites the index pages it touched.
const BATCH: usize = 500;

/// Rows per INSERT/UPDATE statement: under every bind-parameter limit (SQLite 32,766,
/// PostgreSQL 65,535) at 14 columns.
const ROWS_PER_STATEMENT: usize = 500;

/// Ephemeral-only changes (1 in 7 items of a quiet day in the benchmark) rewrite two
/// columns of many items: one statement for the batch on PostgreSQL, where each
/// statement is a network round trip; one prepared UPDATE each on SQLite, in process.
trait UpdateEphemeral {
    fn update_ephemeral(&mut self, rows: &[(i64, &str, &str)]) -> QueryResult<()>;
}

impl UpdateEphemeral for diesel::SqliteConnection {
    fn update_ephemeral(&mut self, rows: &[(i64, &str, &str)]) -> QueryResult<()> {
        for (id, ephemeral, hash) in rows {
            diesel::update(items::table.find(id))
                .set((
                    items::ephemeral.eq(ephemeral),
                    items::ephemeral_hash.eq(hash),
                ))
                .execute(self)?;
        }
        Ok(())
    }
}

impl UpdateEphemeral for diesel::PgConnection {
    fn update_ephemeral(&mut self, rows: &[(i64, &str, &str)]) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Text};
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let eph: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let hashes: Vec<&str> = rows.iter().map(|r| r.2).collect();
        diesel::sql_query(
            "UPDATE items SET ephemeral = v.e, ephemeral_hash = v.h \
             FROM (SELECT unnest($1::bigint[]) AS id, unnest($2::text[]) AS e, unnest($3::text[]) AS h) v \
             WHERE items.id = v.id",
        )
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Array<Text>, _>(&eph)
        .bind::<Array<Text>, _>(&hashes)
        .execute(self)?;
        Ok(())
    }
}

/// The document stored for a deletion.
const DELETED_DOCUMENT: &str = "null";

type Digest = [u8; 32];

#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepSummary {
    pub sweep_id: i64,
    pub items_seen: u64,
    pub created: u64,
    pub modified: u64,
    pub deleted: u64,
    /// Seen again with no durable change (ephemeral-only updates included).
    pub unchanged: u64,
    /// Of the unchanged: how many had only ephemeral fields change.
    pub ephemeral_updates: u64,
    /// Older than what is stored already; ignored.
    pub stale: u64,
    pub listings: u64,
    /// Listings whose coverage could be used to infer deletions.
    pub complete_listings: u64,
    pub errors: u64,
    pub error_details: Vec<SourceError>,
}

struct IndexEntry {
    item_id: i64,
    version: i64,
    hash: Digest,
    eph_hash: Digest,
    active: bool,
    observed_at: NaiveDateTime,
    /// Number of the last listing that saw this item.
    seen_in: u64,
}

struct Prepared {
    obs: Observation,
    canonical: Canonical,
}

struct OpenListing {
    listing: Listing,
    number: u64,
    scopes_seen: HashSet<Scope>,
    tainted: HashSet<Scope>,
    tainted_all: bool,
    first_error: usize,
    /// For listings that vouch for scopes: each key's position in the listing, so a
    /// key listed twice is an error naming both (by a 64-bit digest of the key, to keep
    /// memory at a few bytes an item).
    positions: Option<HashMap<u64, u64>>,
    observed: u64,
}

/// Receives one sweep's observations (it implements [`Collector`]) and writes them.
pub struct Ingestor {
    store: Store,
    sweep_id: i64,
    index: HashMap<Scope, HashMap<String, IndexEntry>>,
    listing: Option<OpenListing>,
    listings_started: u64,
    pending: Vec<Prepared>,
    pending_keys: HashSet<ItemKey>,
    errors_written: usize,
    /// When this sweep last told the database it is alive.
    heartbeat: std::time::Instant,
    summary: SweepSummary,
}

#[derive(Insertable)]
#[diesel(table_name = items)]
struct NewItem<'a> {
    account: &'a str,
    region: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    arn: Option<&'a str>,
    name: Option<&'a str>,
    tags: &'a str,
    active: bool,
    version: i64,
    config_hash: &'a str,
    observed_at: NaiveDateTime,
    ephemeral: &'a str,
    ephemeral_hash: &'a str,
    first_seen_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = revisions)]
struct NewRevision<'a> {
    item_id: i64,
    version: i64,
    change: &'a str,
    cause: &'a str,
    hash: &'a str,
    document: &'a str,
    ephemeral: &'a str,
    observed_at: NaiveDateTime,
    recorded_at: NaiveDateTime,
    sweep_id: Option<i64>,
    origin: &'a str,
    actor: Option<&'a str>,
    actor_arn: Option<&'a str>,
}

#[derive(Insertable)]
#[diesel(table_name = sweep_errors)]
struct NewSweepError<'a> {
    sweep_id: i64,
    account: Option<&'a str>,
    region: Option<&'a str>,
    resource_type: Option<&'a str>,
    origin: &'a str,
    item: Option<&'a str>,
    message: &'a str,
    at: NaiveDateTime,
}

fn digest(hex_text: &str) -> Digest {
    let mut out = [0u8; 32];
    // A malformed stored hash decodes to zeros: it then differs from every real hash,
    // so the next observation rewrites the item instead of being wrongly "unchanged".
    if hex::decode_to_slice(hex_text, &mut out).is_err() {
        out = [0u8; 32];
    }
    out
}

fn key_digest(key: &ItemKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

impl Store {
    /// Starts a sweep record and returns the ingestor that fills it.
    pub fn begin_sweep(&self, source: &str) -> Result<Ingestor, StorageError> {
        // A sweep another process left running when it died would otherwise stay
        // `running` forever; say what happened to it before starting a new one.
        for id in self.mark_interrupted_sweeps(Utc::now())? {
            warn!(
                sweep = id,
                "an earlier sweep was interrupted; marked as such"
            );
        }
        let now = naive(Utc::now());
        let owner = Store::sweep_owner();
        let sweep_id: i64 = write_tx!(self, conn => {
            Ok(diesel::insert_into(sweeps::table)
                .values((
                    sweeps::source.eq(source),
                    sweeps::started_at.eq(now),
                    sweeps::status.eq("running"),
                    sweeps::owner.eq(&owner),
                    sweeps::heartbeat_at.eq(Some(now)),
                ))
                .returning(sweeps::id)
                .get_result(conn)?)
        })?;
        Ok(Ingestor {
            store: self.clone(),
            sweep_id,
            index: HashMap::new(),
            listing: None,
            listings_started: 0,
            pending: Vec::new(),
            pending_keys: HashSet::new(),
            errors_written: 0,
            heartbeat: std::time::Instant::now(),
            summary: SweepSummary {
                sweep_id,
                ..SweepSummary::default()
            },
        })
    }
}

impl Ingestor {
    pub fn sweep_id(&self) -> i64 {
        self.sweep_id
    }

    pub fn summary(&self) -> &SweepSummary {
        &self.summary
    }

    /// Writes what is pending and closes the sweep record. `fatal` is an error that
    /// stopped the source early; the sweep is then marked failed, and nothing that
    /// listing vouched for is deleted.
    pub fn finish(mut self, fatal: Option<String>) -> Result<SweepSummary, StorageError> {
        if let Some(open) = self.listing.take() {
            // The source stopped without ending its listing: keep what it observed,
            // infer nothing from it.
            self.flush()?;
            debug!(origin = %open.listing.origin, "listing not ended; no deletions inferred");
        }
        self.flush()?;
        if let Some(message) = &fatal {
            self.summary.error_details.push(SourceError {
                origin: "sweep".into(),
                item: None,
                scope: None,
                message: message.clone(),
            });
            self.summary.errors += 1;
        }
        self.write_errors()?;
        let s = &self.summary;
        let status = if fatal.is_some() {
            "failed"
        } else if s.errors > 0 {
            "partial"
        } else {
            "complete"
        };
        let now = naive(Utc::now());
        let id = self.sweep_id;
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        write_tx!(self.store, conn => {
            diesel::update(sweeps::table.find(id))
                .set((
                    sweeps::finished_at.eq(Some(now)),
                    sweeps::status.eq(status),
                    sweeps::items_seen.eq(as_i64(s.items_seen)),
                    sweeps::created.eq(as_i64(s.created)),
                    sweeps::modified.eq(as_i64(s.modified)),
                    sweeps::deleted.eq(as_i64(s.deleted)),
                    sweeps::unchanged.eq(as_i64(s.unchanged)),
                    sweeps::ephemeral_updates.eq(as_i64(s.ephemeral_updates)),
                    sweeps::stale.eq(as_i64(s.stale)),
                    sweeps::errors.eq(as_i64(s.errors)),
                ))
                .execute(conn)?;
            Ok(())
        })?;
        Ok(self.summary)
    }

    fn ensure_scope(&mut self, scope: &Scope) -> Result<(), StorageError> {
        if self.index.contains_key(scope) {
            return Ok(());
        }
        type Row = (i64, String, i64, String, String, bool, NaiveDateTime);
        let rows: Vec<Row> = with_conn!(self.store, conn => {
            items::table
                .filter(items::account.eq(&scope.account))
                .filter(items::region.eq(&scope.region))
                .filter(items::resource_type.eq(&scope.resource_type))
                .select((
                    items::id,
                    items::resource_id,
                    items::version,
                    items::config_hash,
                    items::ephemeral_hash,
                    items::active,
                    items::observed_at,
                ))
                .load(conn)?
        });
        let map = rows
            .into_iter()
            .map(|(item_id, rid, version, hash, eph, active, observed_at)| {
                let entry = IndexEntry {
                    item_id,
                    version,
                    hash: digest(&hash),
                    eph_hash: digest(&eph),
                    active,
                    observed_at,
                    seen_in: 0,
                };
                (rid, entry)
            })
            .collect();
        self.index.insert(scope.clone(), map);
        Ok(())
    }

    fn stored_scopes(&self, account: &str, region: &str) -> Result<Vec<Scope>, StorageError> {
        let types: Vec<String> = with_conn!(self.store, conn => {
            items::table
                .filter(items::account.eq(account))
                .filter(items::region.eq(region))
                .filter(items::active.eq(true))
                .select(items::resource_type)
                .distinct()
                .load(conn)?
        });
        Ok(types
            .into_iter()
            .map(|resource_type| Scope {
                account: account.to_owned(),
                region: region.to_owned(),
                resource_type,
            })
            .collect())
    }

    fn stored_regions(
        &self,
        account: &str,
        resource_type: &str,
    ) -> Result<Vec<Scope>, StorageError> {
        let regions: Vec<String> = with_conn!(self.store, conn => {
            items::table
                .filter(items::account.eq(account))
                .filter(items::resource_type.eq(resource_type))
                .filter(items::active.eq(true))
                .select(items::region)
                .distinct()
                .load(conn)?
        });
        Ok(regions
            .into_iter()
            .map(|region| Scope {
                account: account.to_owned(),
                region,
                resource_type: resource_type.to_owned(),
            })
            .collect())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        if self.heartbeat.elapsed() > std::time::Duration::from_secs(30) {
            self.store
                .sweep_heartbeat(self.sweep_id, naive(Utc::now()))?;
            self.heartbeat = std::time::Instant::now();
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.pending_keys.clear();
        for p in &batch {
            self.ensure_scope(&p.obs.key.scope())?;
        }
        let listing_no = self.listing.as_ref().map_or(0, |l| l.number);
        let (cause, origin) = match &self.listing {
            Some(l) => (l.listing.cause.as_str(), l.listing.origin.clone()),
            None => ("sweep", String::new()),
        };
        let (actor, actor_arn) = self.listing_actor();
        let (actor, actor_arn) = (actor.as_deref(), actor_arn.as_deref());

        // Classify against the index; no writes yet.
        let mut created = Vec::new(); // batch index
        let mut rewritten = Vec::new(); // (batch index, item id, new version, revived)
        let mut ephemeral = Vec::new(); // (batch index, item id)
        for (i, p) in batch.iter().enumerate() {
            let scope = p.obs.key.scope();
            let entry = self
                .index
                .get_mut(&scope)
                .and_then(|m| m.get_mut(&p.obs.key.resource_id));
            let Some(e) = entry else {
                created.push(i);
                continue;
            };
            e.seen_in = listing_no;
            if naive(p.obs.observed_at) < e.observed_at {
                self.summary.stale += 1;
            } else if !e.active {
                rewritten.push((i, e.item_id, e.version + 1, true));
            } else if e.hash != digest(&p.canonical.hash) {
                rewritten.push((i, e.item_id, e.version + 1, false));
            } else if e.eph_hash != digest(&p.canonical.ephemeral_hash) {
                ephemeral.push((i, e.item_id));
            } else {
                self.summary.unchanged += 1;
            }
        }

        let now = naive(Utc::now());
        let sweep_id = Some(self.sweep_id);
        let origin = origin.as_str();
        let new_ids: Vec<(i64, String, String, String, String)> = write_tx!(self.store, conn => {
            let mut ids: Vec<(i64, String, String, String, String)> = Vec::with_capacity(created.len());
            let rows: Vec<NewItem> = created
                .iter()
                .map(|&i| {
                    let p = &batch[i];
                    NewItem {
                        account: &p.obs.key.account,
                        region: &p.obs.key.region,
                        resource_type: &p.obs.key.resource_type,
                        resource_id: &p.obs.key.resource_id,
                        arn: p.obs.arn.as_deref(),
                        name: p.obs.name.as_deref(),
                        tags: &p.canonical.tags,
                        active: true,
                        version: 1,
                        config_hash: &p.canonical.hash,
                        observed_at: naive(p.obs.observed_at),
                        ephemeral: &p.canonical.ephemeral,
                        ephemeral_hash: &p.canonical.ephemeral_hash,
                        first_seen_at: naive(p.obs.observed_at),
                    }
                })
                .collect();
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let got: Vec<(i64, String, String, String, String)> = diesel::insert_into(items::table)
                    .values(chunk)
                    .returning((
                        items::id,
                        items::account,
                        items::region,
                        items::resource_type,
                        items::resource_id,
                    ))
                    .get_results(conn)?;
                ids.extend(got);
            }
            let id_of: HashMap<(&str, &str, &str, &str), i64> = ids
                .iter()
                .map(|(id, a, r, t, rid)| ((a.as_str(), r.as_str(), t.as_str(), rid.as_str()), *id))
                .collect();
            let mut revs: Vec<NewRevision> = Vec::with_capacity(created.len() + rewritten.len());
            for &i in &created {
                let p = &batch[i];
                let k = &p.obs.key;
                let item_id = *id_of
                    .get(&(k.account.as_str(), k.region.as_str(), k.resource_type.as_str(), k.resource_id.as_str()))
                    .ok_or_else(|| StorageError::Corrupt(format!("no id returned for new item {k}")))?;
                revs.push(new_revision(p, item_id, 1, ChangeKind::Created, (cause, origin, actor, actor_arn), now, sweep_id));
            }
            for &(i, item_id, version, revived) in &rewritten {
                let p = &batch[i];
                diesel::update(items::table.find(item_id))
                    .set((
                        items::arn.eq(p.obs.arn.as_deref()),
                        items::name.eq(p.obs.name.as_deref()),
                        items::tags.eq(&p.canonical.tags),
                        items::active.eq(true),
                        items::version.eq(version),
                        items::config_hash.eq(&p.canonical.hash),
                        items::observed_at.eq(naive(p.obs.observed_at)),
                        items::ephemeral.eq(&p.canonical.ephemeral),
                        items::ephemeral_hash.eq(&p.canonical.ephemeral_hash),
                    ))
                    .execute(conn)?;
                let change = if revived { ChangeKind::Created } else { ChangeKind::Modified };
                revs.push(new_revision(p, item_id, version, change, (cause, origin, actor, actor_arn), now, sweep_id));
            }
            if !revs.is_empty() {
                for chunk in revs.chunks(ROWS_PER_STATEMENT) {
                    diesel::insert_into(revisions::table).values(chunk).execute(conn)?;
                }
            }
            let eph: Vec<(i64, &str, &str)> = ephemeral
                .iter()
                .map(|&(i, item_id)| (item_id, batch[i].canonical.ephemeral.as_str(), batch[i].canonical.ephemeral_hash.as_str()))
                .collect();
            UpdateEphemeral::update_ephemeral(conn, &eph)?;
            Ok(ids)
        })?;

        // The transaction committed: bring the index up to date.
        let mut id_of: HashMap<(String, String, String, String), i64> = new_ids
            .into_iter()
            .map(|(id, a, r, t, rid)| ((a, r, t, rid), id))
            .collect();
        for &i in &created {
            let p = &batch[i];
            let k = &p.obs.key;
            let key = (
                k.account.clone(),
                k.region.clone(),
                k.resource_type.clone(),
                k.resource_id.clone(),
            );
            let Some(item_id) = id_of.remove(&key) else {
                continue;
            };
            let entry = IndexEntry {
                item_id,
                version: 1,
                hash: digest(&p.canonical.hash),
                eph_hash: digest(&p.canonical.ephemeral_hash),
                active: true,
                observed_at: naive(p.obs.observed_at),
                seen_in: listing_no,
            };
            if let Some(m) = self.index.get_mut(&k.scope()) {
                m.insert(k.resource_id.clone(), entry);
            }
            self.summary.created += 1;
        }
        for &(i, _, version, revived) in &rewritten {
            let p = &batch[i];
            if let Some(e) = self
                .index
                .get_mut(&p.obs.key.scope())
                .and_then(|m| m.get_mut(&p.obs.key.resource_id))
            {
                e.version = version;
                e.hash = digest(&p.canonical.hash);
                e.eph_hash = digest(&p.canonical.ephemeral_hash);
                e.active = true;
                e.observed_at = naive(p.obs.observed_at);
            }
            if revived {
                self.summary.created += 1;
            } else {
                self.summary.modified += 1;
            }
        }
        for &(i, _) in &ephemeral {
            let p = &batch[i];
            if let Some(e) = self
                .index
                .get_mut(&p.obs.key.scope())
                .and_then(|m| m.get_mut(&p.obs.key.resource_id))
            {
                e.eph_hash = digest(&p.canonical.ephemeral_hash);
            }
            self.summary.unchanged += 1;
            self.summary.ephemeral_updates += 1;
        }
        Ok(())
    }

    /// Marks the given items deleted at `at`, one revision each, in one transaction.
    fn delete_items(
        &mut self,
        victims: Vec<(Scope, String)>,
        at: NaiveDateTime,
    ) -> Result<(), StorageError> {
        if victims.is_empty() {
            return Ok(());
        }
        let (cause, origin) = match &self.listing {
            Some(l) => (l.listing.cause.as_str(), l.listing.origin.clone()),
            None => ("sweep", String::new()),
        };
        let (actor, actor_arn) = self.listing_actor();
        let (actor, actor_arn) = (actor.as_deref(), actor_arn.as_deref());
        let mut plan = Vec::with_capacity(victims.len()); // (item id, new version)
        for (scope, rid) in &victims {
            if let Some(e) = self.index.get(scope).and_then(|m| m.get(rid)) {
                plan.push((e.item_id, e.version + 1));
            }
        }
        let deleted_hash = content_hash(DELETED_DOCUMENT);
        let now = naive(Utc::now());
        let sweep_id = Some(self.sweep_id);
        let origin = origin.as_str();
        write_tx!(self.store, conn => {
            for chunk in plan.chunks(ROWS_PER_STATEMENT) {
                let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
                diesel::update(items::table.filter(items::id.eq_any(&ids)))
                    .set((
                        items::active.eq(false),
                        items::version.eq(items::version + 1),
                        items::config_hash.eq(&deleted_hash),
                        items::observed_at.eq(at),
                    ))
                    .execute(conn)?;
                let revs: Vec<NewRevision> = chunk
                    .iter()
                    .map(|&(item_id, version)| NewRevision {
                        item_id,
                        version,
                        change: ChangeKind::Deleted.as_str(),
                        cause,
                        hash: &deleted_hash,
                        document: DELETED_DOCUMENT,
                        ephemeral: "null",
                        observed_at: at,
                        recorded_at: now,
                        sweep_id,
                        origin,
                        actor,
                        actor_arn,
                    })
                    .collect();
                for chunk in revs.chunks(ROWS_PER_STATEMENT) {
                    diesel::insert_into(revisions::table).values(chunk).execute(conn)?;
                }
            }
            Ok(())
        })?;
        let gone = digest(&deleted_hash);
        for (scope, rid) in &victims {
            if let Some(e) = self.index.get_mut(scope).and_then(|m| m.get_mut(rid)) {
                e.active = false;
                e.version += 1;
                e.hash = gone;
                e.observed_at = at;
                self.summary.deleted += 1;
            }
        }
        Ok(())
    }

    fn write_errors(&mut self) -> Result<(), StorageError> {
        let new = &self.summary.error_details[self.errors_written..];
        if new.is_empty() {
            return Ok(());
        }
        let now = naive(Utc::now());
        let sweep_id = self.sweep_id;
        let rows: Vec<NewSweepError> = new
            .iter()
            .map(|e| NewSweepError {
                sweep_id,
                account: e.scope.as_ref().map(|s| s.account.as_str()),
                region: e.scope.as_ref().map(|s| s.region.as_str()),
                resource_type: e.scope.as_ref().map(|s| s.resource_type.as_str()),
                origin: &e.origin,
                item: e.item.as_deref(),
                message: &e.message,
                at: now,
            })
            .collect();
        write_tx!(self.store, conn => {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                diesel::insert_into(sweep_errors::table).values(chunk).execute(conn)?;
            }
            Ok(())
        })?;
        self.errors_written = self.summary.error_details.len();
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
/// Why and by whom: the listing's cause, origin, actor JSON and actor ARN.
type Provenance<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

fn new_revision<'a>(
    p: &'a Prepared,
    item_id: i64,
    version: i64,
    change: ChangeKind,
    (cause, origin, actor, actor_arn): Provenance<'a>,
    now: NaiveDateTime,
    sweep_id: Option<i64>,
) -> NewRevision<'a> {
    NewRevision {
        item_id,
        version,
        change: change.as_str(),
        cause,
        hash: &p.canonical.hash,
        document: &p.canonical.document,
        ephemeral: &p.canonical.ephemeral,
        observed_at: naive(p.obs.observed_at),
        recorded_at: now,
        sweep_id,
        origin,
        actor,
        actor_arn,
    }
}

impl Ingestor {
    /// The open listing's actor as stored: its JSON and its principal ARN.
    fn listing_actor(&self) -> (Option<String>, Option<String>) {
        let Some(a) = self.listing.as_ref().and_then(|l| l.listing.actor.as_ref()) else {
            return (None, None);
        };
        (serde_json::to_string(a).ok(), a.principal.clone())
    }

    /// [`Collector::observe`], with the canonical forms when the caller has them.
    fn observe_with(
        &mut self,
        obs: Observation,
        canonical: Option<Canonical>,
    ) -> Result<(), CollectError> {
        let Some(open) = self.listing.as_mut() else {
            return Err("observation outside a listing (begin_listing was not called)".into());
        };
        open.scopes_seen.insert(obs.key.scope());
        self.summary.items_seen += 1;
        open.observed += 1;
        let position = open.observed;
        // An item without an id would merge with every other one; an id listed twice
        // in one listing means two different resources collapsed into one item. Both
        // are errors that taint the scope (no deletion inferred there), never stored.
        let rejected = if obs.key.resource_id.trim().is_empty() {
            Some(format!(
                "item #{position} ({} in {}/{}, name {:?}, ARN {:?}) has an empty resource id; not stored (the source must give each item an id)",
                obs.key.resource_type,
                obs.key.account,
                obs.key.region,
                obs.name.as_deref().unwrap_or(""),
                obs.arn.as_deref().unwrap_or("")
            ))
        } else if let Some(positions) = open.positions.as_mut() {
            let digest = key_digest(&obs.key);
            match positions.get(&digest) {
                Some(&first) => Some(format!(
                    "{} is listed twice in this listing (items #{first} and #{position}); the second is not stored: two resources reported one identity",
                    obs.key
                )),
                None => {
                    positions.insert(digest, position);
                    None
                }
            }
        } else {
            None
        };
        if let Some(message) = rejected {
            let origin = open.listing.origin.clone();
            let scope = obs.key.scope();
            self.error(SourceError {
                origin,
                item: Some(obs.key.to_string()),
                scope: Some(scope),
                message,
            });
            return Ok(());
        }
        // A field the source could not read: an item seen before keeps its last
        // (readable) revision, so rules never judge a raw field as if the setting were
        // gone; an item never seen is stored with the field raw and marked, so it is
        // not missing from inventory and audit. Either way the error is visible.
        if !obs.unreadable.is_empty() {
            let origin = open.listing.origin.clone();
            let scope = obs.key.scope();
            let what = obs.unreadable.join("; ");
            self.ensure_scope(&scope)?;
            let known = self
                .index
                .get_mut(&scope)
                .and_then(|m| m.get_mut(&obs.key.resource_id))
                .filter(|e| e.active);
            let number = self.listing.as_ref().map_or(0, |l| l.number);
            let keep_last = known.is_some();
            let message = match known {
                Some(e) => {
                    e.seen_in = number; // present: never inferred deleted
                    format!("unreadable field(s): {what}; the last stored revision (version {}) is kept until the source is fixed", e.version)
                }
                None => format!("unreadable field(s): {what}; first seen, so stored with the field(s) raw and marked unreadable"),
            };
            self.error(SourceError {
                origin,
                item: Some(obs.key.to_string()),
                scope: Some(scope),
                message,
            });
            if keep_last {
                return Ok(());
            }
            let mut obs = obs;
            if let serde_json::Value::Object(m) = &mut obs.ephemeral {
                m.insert("unreadable".into(), serde_json::json!(obs.unreadable));
            }
            // The ephemeral part changed: its canonical form is computed afresh.
            return self.stage(obs, None);
        }
        self.stage(obs, canonical)
    }

    /// Queues one readable observation for the next batch.
    fn stage(
        &mut self,
        obs: Observation,
        canonical: Option<Canonical>,
    ) -> Result<(), CollectError> {
        // A second observation of the same item in one batch must see the first one's
        // write (history files carry several states of one item).
        if self.pending_keys.contains(&obs.key) {
            self.flush()?;
        }
        let prepared = Prepared {
            canonical: canonical.unwrap_or_else(|| obs.canonical()),
            obs,
        };
        self.pending_keys.insert(prepared.obs.key.clone());
        self.pending.push(prepared);
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }
}

impl Collector for Ingestor {
    fn begin_listing(&mut self, listing: Listing) -> Result<(), CollectError> {
        // History files and events carry several states of one item; a periodic
        // listing (snapshot, API) lists each item once.
        let one_state_per_item = matches!(listing.cause, guardrail_model::Cause::Sweep);
        if let Some(open) = self.listing.take() {
            warn!(origin = %open.listing.origin, "listing not ended before the next began; no deletions inferred from it");
            self.flush()?;
        }
        self.listings_started += 1;
        self.summary.listings += 1;
        self.listing = Some(OpenListing {
            listing,
            number: self.listings_started,
            scopes_seen: HashSet::new(),
            tainted: HashSet::new(),
            tainted_all: false,
            first_error: self.summary.error_details.len(),
            positions: one_state_per_item.then(HashMap::new),
            observed: 0,
        });
        Ok(())
    }

    fn observe(&mut self, obs: Observation) -> Result<(), CollectError> {
        self.observe_with(obs, None)
    }

    fn observe_canonical(
        &mut self,
        obs: Observation,
        canonical: Canonical,
    ) -> Result<(), CollectError> {
        self.observe_with(obs, Some(canonical))
    }

    fn deleted(&mut self, key: ItemKey, at: DateTime<Utc>) -> Result<(), CollectError> {
        self.flush()?;
        if let Some(open) = self.listing.as_mut() {
            open.scopes_seen.insert(key.scope());
        }
        let scope = key.scope();
        self.ensure_scope(&scope)?;
        let at = naive(at);
        let current = self
            .index
            .get(&scope)
            .and_then(|m| m.get(&key.resource_id))
            .map(|e| e.active && e.observed_at <= at);
        match current {
            Some(true) => self.delete_items(vec![(scope, key.resource_id)], at)?,
            Some(false) => self.summary.stale += 1,
            None => debug!(item = %key, "deletion of an item never stored"),
        }
        Ok(())
    }

    fn present(&mut self, key: ItemKey) -> Result<(), CollectError> {
        let scope = key.scope();
        self.ensure_scope(&scope)?;
        let Some(open) = self.listing.as_mut() else {
            return Err("present() outside a listing (begin_listing was not called)".into());
        };
        open.scopes_seen.insert(scope.clone());
        if let Some(e) = self
            .index
            .get_mut(&scope)
            .and_then(|m| m.get_mut(&key.resource_id))
        {
            e.seen_in = open.number;
        }
        Ok(())
    }

    fn error(&mut self, error: SourceError) {
        warn!(%error, "source error");
        if let Some(open) = self.listing.as_mut() {
            match &error.scope {
                Some(scope) => {
                    open.tainted.insert(scope.clone());
                }
                None => open.tainted_all = true,
            }
        }
        self.summary.errors += 1;
        self.summary.error_details.push(error);
    }

    fn end_listing(&mut self, coverage: Coverage) -> Result<(), CollectError> {
        self.flush()?;
        let Some(open) = self.listing.take() else {
            return Err("end_listing without begin_listing".into());
        };
        let mut scopes: Vec<Scope> = match coverage {
            Coverage::Nothing => Vec::new(),
            Coverage::Scopes(s) => s,
            Coverage::Recorded { account, region } => {
                let mut all: HashSet<Scope> = open.scopes_seen.clone();
                all.extend(self.stored_scopes(&account, &region)?);
                all.into_iter().collect()
            }
            Coverage::EveryRegion {
                account,
                resource_type,
            } => {
                let mut all: HashSet<Scope> = open
                    .scopes_seen
                    .iter()
                    .filter(|s| s.account == account && s.resource_type == resource_type)
                    .cloned()
                    .collect();
                all.extend(self.stored_regions(&account, &resource_type)?);
                all.into_iter().collect()
            }
        };
        if open.tainted_all {
            scopes.clear();
        }
        scopes.retain(|s| !open.tainted.contains(s));
        scopes.sort();
        scopes.dedup();
        if !scopes.is_empty() {
            self.summary.complete_listings += 1;
        }
        let at = naive(open.listing.observed_at);
        let mut victims = Vec::new();
        for scope in &scopes {
            self.ensure_scope(scope)?;
            if let Some(m) = self.index.get(scope) {
                for (rid, e) in m {
                    // An item whose latest revision is newer than the listing was
                    // (re)created after it: the listing cannot vouch for its absence.
                    if e.active && e.seen_in != open.number && e.observed_at <= at {
                        victims.push((scope.clone(), rid.clone()));
                    }
                }
            }
        }
        victims.sort();
        // Keep the listing's cause and origin on the deletion revisions.
        let first_error = open.first_error;
        self.listing = Some(open);
        let result = self.delete_items(victims, at);
        self.listing = None;
        result?;
        if self.summary.error_details.len() > first_error {
            self.write_errors()?;
        }
        Ok(())
    }
}
