//! `guardrail bench`: ingest throughput on synthetic AWS Config snapshots.
//!
//! Three deliveries of N items are generated once (gzip, AWS's layout and item shape):
//! the first state, the same state a day later, and a third day with 1% of items
//! changed. Each backend then sweeps them in order into a fresh database. Peak RSS is
//! measured per phase by resetting the kernel's high-water mark before it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use guardrail_storage::testing::PgTestDb;
use guardrail_storage::Store;
use guardrail_watchers::config_deliveries::{ConfigDeliveries, LocalDirectory};
use guardrail_watchers::Quiet;
use serde::Serialize;
use serde_json::{json, Value};

use super::Context;
use crate::output::{self, Format, Table};
use crate::pipeline::sweep_into;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(clap::Args)]
pub struct Args {
    /// Items per delivery.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Which backends to measure. PostgreSQL uses a throw-away database on the server
    /// named by GUARDRAIL_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
    /// Keep the generated deliveries here instead of a temporary directory.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Skip the audit measurement (the full rule pack over the first delivery).
    #[arg(long)]
    no_audit: bool,
    /// Measure only the floor of the deliveries in DIR and print it as JSON (what a
    /// bench run asks of a child process of its own).
    #[arg(long, hide = true, value_name = "DIR")]
    floor_only: Option<PathBuf>,
}

#[derive(Serialize)]
struct Phase {
    phase: &'static str,
    items: u64,
    seconds: f64,
    items_per_second: f64,
    revisions_written: i64,
    created: u64,
    modified: u64,
    deleted: u64,
    peak_rss_mib: Option<f64>,
    /// Bytes this process handed to write calls during the phase (`wchar` of
    /// /proc/self/io): SQLite's WAL, checkpoints and temp files. Not known for
    /// PostgreSQL, whose server process writes.
    mib_written: Option<f64>,
}

#[derive(Serialize)]
struct BackendResult {
    backend: &'static str,
    phases: Vec<Phase>,
    database_mib: f64,
}

#[derive(Serialize)]
struct AuditResult {
    backend: &'static str,
    items: u64,
    rules: usize,
    threads: usize,
    seconds: f64,
    items_per_second: f64,
    findings_opened: u64,
    rule_errors: u64,
    /// Converting one stored document to a Rhai value, nanoseconds.
    dynamic_via_serde_ns: f64,
    dynamic_via_parse_json_ns: f64,
    peak_rss_mib: Option<f64>,
    /// The costliest rules of the pass (CPU seconds over both judging threads).
    costliest_rules: Vec<crate::audit::RuleCost>,
}

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &a.floor_only {
        println!("{}", serde_json::to_string(&measure_floor(dir)?)?);
        return Ok(ExitCode::SUCCESS);
    }
    let temp = tempfile::tempdir()?;
    let root = a.keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let started = Instant::now();
    let days = [
        ("first", 20, 0.0),
        ("quiet", 21, 0.0),
        ("changed-1pct", 22, 0.01),
    ];
    let mut item_bytes = 0;
    for (name, day, changed) in days {
        item_bytes = generate(&root.join(name), a.items, day, changed)?;
    }
    let average_item_bytes = item_bytes as f64 / a.items.max(1) as f64;
    eprintln!(
        "generated 3 deliveries of {} items ({:.0} bytes an item on average) in {:.1}s",
        a.items,
        average_item_bytes,
        started.elapsed().as_secs_f64()
    );
    // Measured first, while nothing else runs (a PostgreSQL server still writing
    // behind the last phase slowed the floor and flattered every ratio), and in a
    // child process, so the heap its whole-file parse leaves behind counts in no
    // phase's peak RSS.
    let floor = floor_in_child(&root.join("first"))?;
    let mut results = Vec::new();
    let mut audits = Vec::new();
    let mut hostile = None;
    if matches!(a.backend, BackendChoice::Sqlite | BackendChoice::Both) {
        let db = temp.path().join("bench.db");
        let store = Store::open(&format!("sqlite://{}", db.display()))?;
        results.push(measure("sqlite", &store, &root, &days)?);
        if !a.no_audit {
            audits.push(measure_audit(ctx, &store, "sqlite")?);
            hostile = Some(measure_hostile(ctx, &store)?);
        }
    }
    if matches!(a.backend, BackendChoice::Postgres | BackendChoice::Both) {
        let db = PgTestDb::create("gr_bench").map_err(|e| anyhow::anyhow!(e))?;
        let store = Store::open(&db.url)?;
        results.push(measure("postgres", &store, &root, &days)?);
        if !a.no_audit {
            audits.push(measure_audit(ctx, &store, "postgres")?);
        }
    }
    match ctx.format()? {
        Format::Json | Format::Csv | Format::Ocsf | Format::OcsfNdjson => output::json(
            &json!({"items": a.items, "average_item_bytes": average_item_bytes, "floor": floor, "results": results, "audits": audits, "hostile_rule": hostile}),
        )?,
        Format::Text => {
            let mut t = Table::new(&[
                "BACKEND",
                "PHASE",
                "ITEMS/S",
                "SECONDS",
                "x FLOOR",
                "REVISIONS",
                "PEAK RSS MiB",
                "WRITTEN MiB",
                "DB MiB",
            ]);
            for r in &results {
                for p in &r.phases {
                    t.row(vec![
                        r.backend.into(),
                        p.phase.into(),
                        format!("{:.0}", p.items_per_second),
                        format!("{:.2}", p.seconds),
                        format!("{:.1}", p.seconds / floor.single_thread_seconds.max(1e-9)),
                        p.revisions_written.to_string(),
                        p.peak_rss_mib.map_or("n/a".into(), |m| format!("{m:.0}")),
                        p.mib_written.map_or("n/a".into(), |m| {
                            format!("{m:.0} ({:.1}x DB)", m / r.database_mib.max(1e-9))
                        }),
                        format!("{:.0}", r.database_mib),
                    ]);
                }
            }
            println!(
                "{} items per delivery, {:.0} bytes an item on average (configuration item JSON)",
                a.items, average_item_bytes
            );
            println!(
                "floor (read, parse, canonicalise and SHA-256 every item; no storage, no rules): {:.2}s on one thread ({:.0} items/s), {:.2}s with {} threads hashing ({:.1}x the one-thread floor)",
                floor.single_thread_seconds,
                floor.items as f64 / floor.single_thread_seconds.max(1e-9),
                floor.all_cores_seconds,
                floor.threads,
                floor.all_cores_seconds / floor.single_thread_seconds.max(1e-9)
            );
            t.print()?;
            for r in &audits {
                println!(
                    "audit ({}): {} items, {} rules, {} threads: {:.0} items/s ({:.2}s), {} findings opened, {} rule errors, peak RSS {} MiB",
                    r.backend, r.items, r.rules, r.threads, r.items_per_second, r.seconds, r.findings_opened, r.rule_errors,
                    r.peak_rss_mib.map_or("n/a".into(), |m| format!("{m:.0}"))
                );
                println!(
                    "  {:.1}x the one-thread floor for as many items",
                    r.seconds
                        / (floor.single_thread_seconds * r.items as f64
                            / floor.items.max(1) as f64)
                            .max(1e-9)
                );
                println!(
                    "  document -> Rhai value: {:.1} µs via serde, {:.1} µs via parse_json",
                    r.dynamic_via_serde_ns / 1000.0,
                    r.dynamic_via_parse_json_ns / 1000.0
                );
                let costs: Vec<String> = r
                    .costliest_rules
                    .iter()
                    .take(5)
                    .map(|c| {
                        format!(
                            "{} {:.2}s ({:.0} µs an item)",
                            c.rule_id,
                            c.seconds,
                            c.seconds * 1e6 / c.evaluations.max(1) as f64
                        )
                    })
                    .collect();
                println!("  costliest rules (CPU): {}", costs.join(", "));
            }
            if let Some(h) = &hostile {
                println!(
                    "re-audit with a rule that exhausts its budget on every item: {:.2}s vs {:.2}s without it ({:.2}x); it was suspended after {} exhausted evaluations, {} skipped",
                    h.with_hostile_seconds, h.pack_seconds, h.ratio, h.exhausted, h.skipped
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(
    backend: &'static str,
    store: &Store,
    root: &Path,
    days: &[(&'static str, u32, f64)],
) -> anyhow::Result<BackendResult> {
    let mut phases = Vec::new();
    for (name, _, _) in days {
        let before = store.counts()?.2;
        let written_before = bytes_written();
        reset_peak_rss();
        let t = Instant::now();
        let mut watcher = ConfigDeliveries::new(LocalDirectory::new(root.join(name)));
        let s = sweep_into(store, &mut watcher, &Quiet)?;
        let seconds = t.elapsed().as_secs_f64();
        let peak = peak_rss_mib();
        let mib_written = match (backend, written_before, bytes_written()) {
            ("sqlite", Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1_048_576.0),
            _ => None,
        };
        anyhow::ensure!(
            s.errors == 0,
            "benchmark sweep reported errors: {:?}",
            s.error_details
        );
        phases.push(Phase {
            phase: name,
            items: s.items_seen,
            seconds,
            items_per_second: s.items_seen as f64 / seconds.max(1e-9),
            revisions_written: store.counts()?.2 - before,
            created: s.created,
            modified: s.modified,
            deleted: s.deleted,
            peak_rss_mib: peak,
            mib_written,
        });
        eprintln!("{backend} {name}: {:.1}s", seconds);
    }
    Ok(BackendResult {
        backend,
        phases,
        database_mib: store.database_size()? as f64 / 1_048_576.0,
    })
}

/// The full rule pack over every stored item (`guardrail audit`), both cores.
fn measure_audit(
    ctx: &Context,
    store: &Store,
    backend: &'static str,
) -> anyhow::Result<AuditResult> {
    let auditor = ctx.auditor()?;
    let sample: Vec<String> = store
        .latest_page(0, 2000)?
        .into_iter()
        .map(|(_, r)| r.document)
        .collect();
    let (serde_ns, parse_ns) = auditor.engine.conversion_costs(&sample);
    drop(sample);
    reset_peak_rss();
    let t = Instant::now();
    let s = auditor.audit_all(store)?;
    let seconds = t.elapsed().as_secs_f64();
    let peak_rss_mib = peak_rss_mib();
    eprintln!("audit ({backend}): {seconds:.1}s");
    Ok(AuditResult {
        backend,
        items: s.items,
        rules: auditor.rules.rules().len(),
        threads: 2,
        seconds,
        items_per_second: s.items as f64 / seconds.max(1e-9),
        findings_opened: s.opened,
        rule_errors: s.rule_errors,
        dynamic_via_serde_ns: serde_ns,
        dynamic_via_parse_json_ns: parse_ns,
        peak_rss_mib,
        costliest_rules: auditor.last_rule_costs(),
    })
}

/// The physical floor of ingest on the same delivery: read, decompress and parse it,
/// then canonicalise and SHA-256 every item; no storage, no rules. Every figure is
/// also printed as a ratio to the single-thread floor.
#[derive(Serialize, serde::Deserialize)]
struct Floor {
    items: u64,
    single_thread_seconds: f64,
    all_cores_seconds: f64,
    /// Threads canonicalising and hashing in the all-cores run (parsing a delivery
    /// file is one thread's work in both).
    threads: usize,
}

/// [`measure_floor`] in a child process (`guardrail bench --floor-only DIR`).
fn floor_in_child(delivery: &Path) -> anyhow::Result<Floor> {
    let exe = std::env::current_exe().context("finding this program to measure the floor")?;
    let out = std::process::Command::new(exe)
        .args(["bench", "--floor-only"])
        .arg(delivery)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the floor measurement")?;
    anyhow::ensure!(
        out.status.success(),
        "the floor measurement failed ({})",
        out.status
    );
    serde_json::from_slice(&out.stdout).context("reading the floor measurement")
}

fn measure_floor(delivery: &Path) -> anyhow::Result<Floor> {
    let mut files = Vec::new();
    delivery_files(delivery, &mut files)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Best of three passes each: the first pass over freshly generated files also pays
    // for page-cache misses and heap growth, which would flatter every ratio.
    let mut items = 0;
    let mut single_thread_seconds = f64::INFINITY;
    let mut all_cores_seconds = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        items = floor_pass(&files, 1)?;
        single_thread_seconds = single_thread_seconds.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        floor_pass(&files, threads)?;
        all_cores_seconds = all_cores_seconds.min(t.elapsed().as_secs_f64());
        eprintln!("floor pass: {single_thread_seconds:.2}s one thread, {all_cores_seconds:.2}s {threads} threads (best so far)");
    }
    eprintln!(
        "floor: {single_thread_seconds:.1}s on one thread, {all_cores_seconds:.1}s on {threads}"
    );
    Ok(Floor {
        items,
        single_thread_seconds,
        all_cores_seconds,
        threads,
    })
}

fn delivery_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            delivery_files(&path, out)?;
        } else if path.to_string_lossy().ends_with(".json.gz") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// One floor pass over `files`; the number of items.
fn floor_pass(files: &[PathBuf], threads: usize) -> anyhow::Result<u64> {
    use std::io::Read;
    let mut n = 0u64;
    for f in files {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::io::BufReader::new(
            File::open(f).with_context(|| format!("opening {}", f.display()))?,
        ))
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", f.display()))?;
        let doc: Value = serde_json::from_str(&text)?;
        let items = doc["configurationItems"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let chunk = items.len().div_ceil(threads.max(1)).max(1);
        let hashed: usize = std::thread::scope(|s| {
            let workers: Vec<_> = items
                .chunks(chunk)
                .map(|c| {
                    s.spawn(move || {
                        let mut buf = Vec::with_capacity(4096);
                        for item in c {
                            buf.clear();
                            guardrail_model::canonical::write_canonical(item, &mut buf);
                            // As the store does: canonical text, then its SHA-256 in hex.
                            let text =
                                guardrail_model::canonical::into_string(std::mem::take(&mut buf));
                            std::hint::black_box(guardrail_model::content_hash(&text));
                            buf = text.into_bytes();
                        }
                        c.len()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        n += hashed as u64;
    }
    Ok(n)
}

#[derive(Serialize)]
struct HostileResult {
    items: u64,
    pack_seconds: f64,
    with_hostile_seconds: f64,
    ratio: f64,
    exhausted: i64,
    skipped: i64,
}

/// The cost of a rule that runs out of its budget on every item: a re-audit of every
/// item with the pack alone, then with the pack plus that rule (suspended after its
/// budget is exhausted `audit.rule_budget_exhaustions` times), as a ratio.
fn measure_hostile(ctx: &Context, store: &Store) -> anyhow::Result<HostileResult> {
    let pack = ctx.auditor()?;
    let t = Instant::now();
    let s = pack.audit_all(store)?;
    let pack_seconds = t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir()?;
    copy_dir(&ctx.rules_dir, dir.path())?;
    std::fs::create_dir_all(dir.path().join("zz"))?;
    std::fs::write(
        dir.path().join("zz/hostile.rhai"),
        "fn meta() { #{ resource_types: [\"AWS::EC2::SecurityGroup\", \"AWS::EC2::Instance\", \"AWS::IAM::Role\", \"AWS::S3::Bucket\"], description: \"loops forever\" } }\n\
         fn check(item, ctx) { let n = 0; loop { n += 1; } }\n",
    )?;
    let hostile = crate::audit::Auditor::new(dir.path(), &ctx.config)?;
    let t = Instant::now();
    hostile.audit_all(store)?;
    let with_hostile_seconds = t.elapsed().as_secs_f64();
    let health = store
        .rule_health()?
        .into_iter()
        .find(|r| r.rule_id == "zz/hostile");
    eprintln!(
        "audit with a hostile rule: {with_hostile_seconds:.1}s (pack alone {pack_seconds:.1}s)"
    );
    Ok(HostileResult {
        items: s.items,
        pack_seconds,
        with_hostile_seconds,
        ratio: with_hostile_seconds / pack_seconds.max(1e-9),
        exhausted: health.as_ref().map_or(0, |h| h.exhausted),
        skipped: health.as_ref().map_or(0, |h| h.skipped),
    })
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Bytes written through write calls by this process so far (Linux).
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Resets VmHWM (Linux ≥ 4.0); elsewhere the figure covers the whole run.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Writes one snapshot delivery of `n` items; a fraction `changed` of them differ
/// from the base state (every 1/changed-th item).
/// Returns the bytes of JSON written for the items (uncompressed).
fn generate(dir: &Path, n: usize, day: u32, changed: f64) -> anyhow::Result<u64> {
    let stamp = format!("202611{day:02}T060000Z");
    let folder = dir.join(format!(
        "AWSLogs/{ACCOUNT}/Config/{REGION}/2026/11/{day}/ConfigSnapshot"
    ));
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let path = folder.join(format!(
        "{ACCOUNT}_Config_{REGION}_ConfigSnapshot_{stamp}_00000000-0000-4000-8000-0000000000{day:02}.json.gz"
    ));
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    // The buffer in front of the encoder matters: serde_json writes in tiny pieces.
    let mut out = BufWriter::with_capacity(
        256 * 1024,
        GzEncoder::new(BufWriter::new(file), Compression::fast()),
    );
    write!(
        out,
        "{{\"fileVersion\":\"1.0\",\"configSnapshotId\":\"bench-{day}\",\"configurationItems\":["
    )?;
    let mut bytes = 0u64;
    let every = if changed > 0.0 {
        (1.0 / changed).round() as usize
    } else {
        0
    };
    for i in 0..n {
        if i > 0 {
            out.write_all(b",")?;
        }
        let is_changed = every > 0 && i.is_multiple_of(every);
        let item = serde_json::to_vec(&synthetic_item(i, day, is_changed))?;
        bytes += item.len() as u64;
        out.write_all(&item)?;
    }
    out.write_all(b"]}")?;
    out.into_inner()
        .map_err(|e| e.into_error())?
        .finish()?
        .flush()?;
    Ok(bytes)
}

/// What AWS Config relates an item to, as it would for the type.
fn relationships(rtype: &str, i: usize) -> Value {
    let rel = |t: &str, id: String, name: &str| json!({"resourceType": t, "resourceId": id, "relationshipName": name});
    match rtype {
        "AWS::EC2::SecurityGroup" => json!([rel(
            "AWS::EC2::VPC",
            "vpc-0123456789abcdef0".into(),
            "Is contained in Vpc"
        )]),
        "AWS::EC2::Instance" => json!([
            rel(
                "AWS::EC2::NetworkInterface",
                format!("eni-{i:017x}"),
                "Contains NetworkInterface"
            ),
            rel(
                "AWS::EC2::SecurityGroup",
                format!("sg-{:017x}", i - 2),
                "Is associated with SecurityGroup"
            ),
            rel(
                "AWS::EC2::Subnet",
                "subnet-0123456789abcdef0".into(),
                "Is contained in Subnet"
            ),
            rel(
                "AWS::EC2::Volume",
                format!("vol-{i:017x}"),
                "Is attached to Volume"
            ),
            rel(
                "AWS::EC2::VPC",
                "vpc-0123456789abcdef0".into(),
                "Is contained in Vpc"
            ),
        ]),
        "AWS::IAM::Role" => json!([rel(
            "AWS::IAM::Policy",
            format!("ANPA{:016}", i % 40),
            "Is attached to CustomerManagedPolicy"
        )]),
        _ => json!([]),
    }
}

fn synthetic_item(i: usize, day: u32, changed: bool) -> Value {
    let capture = format!(
        "2026-11-{:02}T05:00:00.000Z",
        if changed { day } else { 20 }
    );
    // Ephemeral fields move every day for some items: they must not cost a revision.
    let ephemeral_day = if i.is_multiple_of(7) { day } else { 20 };
    let extra_port = if changed { 8443 } else { 443 };
    let (rtype, id, name, arn, region, configuration, supplementary) = match i % 5 {
        0 | 1 => {
            let id = format!("sg-{i:017x}");
            let conf = json!({
                "groupId": id, "groupName": format!("sg-{i}"), "description": "synthetic",
                "vpcId": "vpc-0123456789abcdef0", "ownerId": ACCOUNT,
                "ipPermissions": [
                    {"fromPort": 22, "toPort": 22, "ipProtocol": "tcp", "ipRanges": [format!("10.{}.0.0/16", i % 250)], "ipv4Ranges": [{"cidrIp": format!("10.{}.0.0/16", i % 250)}], "ipv6Ranges": [], "prefixListIds": [], "userIdGroupPairs": []},
                    {"fromPort": extra_port, "toPort": extra_port, "ipProtocol": "tcp", "ipRanges": ["0.0.0.0/0"], "ipv4Ranges": [{"cidrIp": "0.0.0.0/0", "description": "public HTTPS"}], "ipv6Ranges": [{"cidrIpv6": "::/0", "description": "public HTTPS"}], "prefixListIds": [], "userIdGroupPairs": []},
                    {"fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp", "ipRanges": [], "ipv4Ranges": [], "ipv6Ranges": [], "prefixListIds": [{"prefixListId": "pl-0123456789abcdef0", "description": "corporate VPN"}], "userIdGroupPairs": [{"groupId": format!("sg-{:017x}", i ^ 1), "userId": ACCOUNT, "description": "application tier", "vpcId": "vpc-0123456789abcdef0"}]}
                ],
                "ipPermissionsEgress": [{"ipProtocol": "-1", "ipRanges": ["0.0.0.0/0"], "ipv4Ranges": [{"cidrIp": "0.0.0.0/0"}], "ipv6Ranges": [], "prefixListIds": [], "userIdGroupPairs": []}],
                "tags": [{"key": "owner", "value": format!("team-{}", i % 13)}, {"key": "Name", "value": format!("sg-{i}")}, {"key": "environment", "value": "production"}]
            });
            (
                "AWS::EC2::SecurityGroup",
                id.clone(),
                format!("sg-{i}"),
                format!("arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{id}"),
                REGION,
                conf,
                json!({}),
            )
        }
        2 => {
            let id = format!("i-{i:017x}");
            let conf = json!({
                "instanceId": id, "instanceType": if changed { "m5.large" } else { "t3.medium" },
                "imageId": "ami-0123456789abcdef0", "subnetId": "subnet-0123456789abcdef0",
                "state": {"name": "running", "code": 16},
                "launchTime": format!("2026-11-{ephemeral_day:02}T01:00:00.000Z"),
                "securityGroups": [{"groupId": format!("sg-{:017x}", i - 2), "groupName": format!("sg-{}", i - 2)}],
                "metadataOptions": {"httpTokens": "required", "httpEndpoint": "enabled", "httpPutResponseHopLimit": 2, "state": "applied", "instanceMetadataTags": "disabled"},
                "privateIpAddress": format!("10.0.{}.{}", (i / 250) % 250, i % 250),
                "privateDnsName": format!("ip-10-0-{}-{}.ec2.internal", (i / 250) % 250, i % 250),
                "vpcId": "vpc-0123456789abcdef0", "architecture": "x86_64", "hypervisor": "xen",
                "rootDeviceName": "/dev/xvda", "rootDeviceType": "ebs", "virtualizationType": "hvm",
                "ebsOptimized": true, "enaSupport": true, "sourceDestCheck": true,
                "placement": {"availabilityZone": "us-east-1a", "tenancy": "default", "groupName": ""},
                "monitoring": {"state": "disabled"},
                "iamInstanceProfile": {"arn": format!("arn:aws:iam::{ACCOUNT}:instance-profile/app-{}", i % 40), "id": format!("AIPA{i:016}")},
                "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
                "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeId": format!("vol-{i:017x}"), "status": "attached", "deleteOnTermination": true, "attachTime": "2026-01-01T00:00:00.000Z"}}],
                "networkInterfaces": [{
                    "networkInterfaceId": format!("eni-{i:017x}"), "subnetId": "subnet-0123456789abcdef0", "vpcId": "vpc-0123456789abcdef0",
                    "macAddress": format!("0a:{:02x}:{:02x}:00:00:01", i % 256, (i / 256) % 256), "status": "in-use", "sourceDestCheck": true,
                    "privateIpAddress": format!("10.0.{}.{}", (i / 250) % 250, i % 250),
                    "groups": [{"groupId": format!("sg-{:017x}", i - 2), "groupName": format!("sg-{}", i - 2)}],
                    "attachment": {"attachmentId": format!("eni-attach-{i:017x}"), "deviceIndex": 0, "status": "attached", "deleteOnTermination": true}
                }],
                "tags": [{"key": "owner", "value": format!("team-{}", i % 13)}, {"key": "Name", "value": format!("instance-{i}")}]
            });
            (
                "AWS::EC2::Instance",
                id.clone(),
                format!("instance-{i}"),
                format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}"),
                REGION,
                conf,
                json!({}),
            )
        }
        3 => {
            let name = format!("role-{i}");
            let action = if changed { "s3:*" } else { "s3:GetObject" };
            let policy = format!("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22{}%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D", action.replace(':', "%3A").replace('*', "%2A"));
            let trust = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
            let conf = json!({
                "roleName": name, "roleId": format!("AROA{i:016}"), "path": "/",
                "arn": format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
                "assumeRolePolicyDocument": trust,
                "rolePolicyList": [{"policyName": "inline", "policyDocument": policy}],
                "attachedManagedPolicies": [{"policyName": format!("app-{}", i % 40), "policyArn": format!("arn:aws:iam::{ACCOUNT}:policy/app-{}", i % 40)}],
                "instanceProfileList": [{"instanceProfileName": format!("app-{}", i % 40), "instanceProfileId": format!("AIPA{i:016}"), "path": "/", "arn": format!("arn:aws:iam::{ACCOUNT}:instance-profile/app-{}", i % 40), "createDate": "2026-01-01T00:00:00Z"}],
                "createDate": "2026-01-01T00:00:00Z", "maxSessionDuration": 3600, "description": "application role",
                "permissionsBoundary": null,
                "tags": [{"key": "owner", "value": format!("team-{}", i % 13)}],
                "roleLastUsed": {"lastUsedDate": format!("2026-11-{ephemeral_day:02}T00:00:00Z"), "region": REGION}
            });
            (
                "AWS::IAM::Role",
                format!("AROA{i:016}"),
                name.clone(),
                format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
                "global",
                conf,
                json!({}),
            )
        }
        _ => {
            let name = format!("bucket-{i}");
            let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{name}/*")}]});
            let supp = json!({
                "BucketPolicy": serde_json::to_string(&json!({"policyText": policy.to_string()})).unwrap_or_default(),
                "PublicAccessBlockConfiguration": {"blockPublicAcls": !changed, "ignorePublicAcls": true, "blockPublicPolicy": true, "restrictPublicBuckets": true},
                "BucketVersioningConfiguration": {"status": "Enabled", "isMfaDeleteEnabled": false},
                "ServerSideEncryptionConfiguration": {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyID": format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{:08x}-0000-4000-8000-000000000000", i % 50)}, "bucketKeyEnabled": true}]},
                "BucketLoggingConfiguration": {"destinationBucketName": "org-access-logs", "logFilePrefix": format!("{name}/")},
                "BucketNotificationConfiguration": {"configurations": {}},
                "BucketTaggingConfiguration": {"tagSets": [{"tags": {"owner": format!("team-{}", i % 13), "data-class": "internal"}}]},
                "BucketLifecycleConfiguration": {"rules": [{"id": "expire-noncurrent", "status": "Enabled", "noncurrentVersionExpirationInDays": 90, "filter": {"predicate": {"type": "LifecyclePrefixPredicate", "prefix": ""}}}]},
                "IsRequesterPaysEnabled": false,
                "BucketAccelerateConfiguration": {"status": "Suspended"},
                "AccessControlList": serde_json::to_string(&json!({"owner": {"id": "abc", "displayName": format!("owner-{ephemeral_day}")}, "grantList": [{"grantee": {"id": "abc", "displayName": format!("owner-{ephemeral_day}")}, "permission": "FullControl"}]})).unwrap_or_default()
            });
            (
                "AWS::S3::Bucket",
                name.clone(),
                name.clone(),
                format!("arn:aws:s3:::{name}"),
                REGION,
                json!({"name": name, "creationDate": "2026-01-01T00:00:00.000Z"}),
                supp,
            )
        }
    };
    json!({
        "version": "1.3", "accountId": ACCOUNT, "configurationItemCaptureTime": capture,
        "configurationItemStatus": "OK", "configurationStateId": format!("{}", 1_700_000_000_000u64 + i as u64),
        "configurationItemMD5Hash": "", "arn": arn, "resourceType": rtype, "resourceId": id,
        "resourceName": name, "awsRegion": region, "availabilityZone": "Not Applicable",
        "resourceCreationTime": "2026-01-01T00:00:00.000Z", "tags": {"owner": format!("team-{}", i % 13)},
        "relatedEvents": [], "relationships": relationships(rtype, i),
        "configuration": configuration, "supplementaryConfiguration": supplementary
    })
}
