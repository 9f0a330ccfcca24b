//! Findings end to end: the bundled examples through the real binary and the real rule
//! pack, justifications, overrides, expiry, exports, and hostile rules during a sweep.

mod common;

use common::{examples, Db};
use serde_json::Value;

fn findings(db: &Db, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["findings", "--format", "json"];
    a.extend_from_slice(args);
    let r = db.run(&a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json().as_array().cloned().unwrap_or_default()
}

fn has(list: &[Value], rule: &str, name: &str) -> bool {
    list.iter()
        .any(|f| f["rule_id"] == rule && f["resource"]["name"] == name)
}

fn two_days_of_findings(db: &Db) {
    db.sweep(&examples("day1"));
    let open = findings(db, &[]);
    // Every planted misconfiguration (examples/aws-config/README.md) is open.
    for (rule, name) in [
        ("iam/policy_full_admin", "FullAdmin"),
        ("iam/policy_full_admin", "ci-deployer"),
        ("iam/policy_full_admin", "Admins"),
        ("iam/policy_service_wildcard", "Developers"),
        ("iam/policy_iam_wildcard", "bob"),
        ("iam/policy_privilege_escalation", "bob"),
        ("iam/role_trust_cross_account", "vendor-audit"),
        ("iam/role_trust_anyone", "break-glass"),
        ("s3/bucket_policy_public", "prod-111111111111-public-assets"),
        ("s3/bucket_policy_public", "dev-222222222222-public-assets"),
        (
            "s3/bucket_public_access_block",
            "prod-111111111111-public-assets",
        ),
        ("s3/bucket_encryption", "prod-111111111111-customer-data"),
        ("s3/bucket_versioning", "prod-111111111111-customer-data"),
        ("s3/bucket_logging", "prod-111111111111-customer-data"),
        ("s3/bucket_acl_public", "dev-222222222222-shared"),
        ("ec2/sg_default_has_rules", "default"),
        ("ec2/sg_admin_ports_open", "bastion"),
        ("ec2/sg_internet_ingress", "web"),
        ("ec2/instance_imdsv1", "admin-jump"),
        ("ec2/instance_imdsv1", "bastion-1"),
        // Public IP, public subnet, default ACL, SSH (or web) open: a complete path.
        ("ec2/instance_reachable_from_internet", "bastion-1"),
        ("ec2/instance_reachable_from_internet", "web-1"),
    ] {
        assert!(has(&open, rule, name), "no open {rule} finding on {name}");
    }
    // The deliberate non-problems stay quiet.
    assert!(!open.iter().any(|f| f["resource"]["name"]
        .as_str()
        .is_some_and(|n| n.contains("internal-artifacts"))
        && f["rule_id"] == "s3/bucket_policy_public"));
    assert!(!open
        .iter()
        .any(|f| f["resource"]["name"] == "outbound-only" || f["resource"]["name"] == "database"));
    for f in &open {
        for k in ["id", "rule_id", "state", "score", "severity", "title"] {
            assert!(!f[k].is_null(), "{k} missing in {f}");
        }
        for k in ["type", "id", "arn", "name", "account", "region"] {
            assert!(
                f["resource"].get(k).is_some(),
                "resource.{k} missing in {f}"
            );
        }
    }

    let (_, day2) = db.sweep(&examples("day2"));
    // admin-access opening RDP makes admin-jump reachable: that path is new too.
    assert_eq!(day2["audit"]["opened"], 9, "{day2}");
    // Bob's deletion fixes his iam:* and privilege escalation findings; the narrowed
    // bastion group closes bastion-1's path.
    assert_eq!(day2["audit"]["fixed"], 12, "{day2}");
    let fixed = findings(db, &["--state", "fixed"]);
    for (rule, name) in [
        ("ec2/instance_reachable_from_internet", "bastion-1"),
        ("iam/role_trust_cross_account", "vendor-audit"),
        ("s3/bucket_encryption", "prod-111111111111-customer-data"),
        ("s3/bucket_versioning", "prod-111111111111-customer-data"),
        ("s3/bucket_logging", "prod-111111111111-customer-data"),
        ("ec2/sg_admin_ports_open", "bastion"),
        ("iam/policy_iam_wildcard", "bob"),
        ("iam/policy_privilege_escalation", "bob"),
    ] {
        assert!(has(&fixed, rule, name), "{rule} on {name} should be fixed");
    }
    let open = findings(db, &[]);
    for (rule, name) in [
        ("iam/policy_full_admin", "dave"),
        ("ec2/sg_internet_ingress", "analytics-db"),
        ("s3/bucket_policy_public", "dev-222222222222-eu-scratch"),
        ("ec2/sg_admin_ports_open", "admin-access"),
        ("ec2/sg_change_opens_to_internet", "admin-access"),
    ] {
        assert!(has(&open, rule, name), "day 2 should open {rule} on {name}");
    }
    // The opening change is shown with the finding.
    let rdp = open
        .iter()
        .find(|f| {
            f["rule_id"] == "ec2/sg_admin_ports_open" && f["resource"]["name"] == "admin-access"
        })
        .unwrap();
    let shown = db
        .run(&[
            "findings",
            "show",
            &rdp["id"].to_string(),
            "--format",
            "json",
        ])
        .json();
    assert_eq!(shown["opened_by"]["changes"][0]["new"]["fromPort"], 3389);
    let text = db.run(&["findings", "show", &rdp["id"].to_string()]).stdout;
    assert!(
        text.contains("opened by the change to v2") && text.contains("3389"),
        "{text}"
    );
    // A third sweep changes nothing.
    let before = findings(db, &["--state", "all"]).len();
    let (_, again) = db.sweep(&examples("day2"));
    assert_eq!(again["audit"]["items"], 0);
    assert_eq!(findings(db, &["--state", "all"]).len(), before);
}

#[test]
fn sqlite_findings_over_two_days() {
    two_days_of_findings(&common::sqlite());
}

#[test]
fn postgres_findings_over_two_days() {
    if let Some(db) = common::postgres() {
        two_days_of_findings(&db);
    }
}

#[test]
fn justification_survives_audit_and_override_and_lapses() {
    let db = common::sqlite();
    db.sweep(&examples("day1"));
    let open = findings(&db, &["--rule", "ec2/sg_admin_ports_open"]);
    let id_num = open[0]["id"].clone();
    let id = id_num.to_string();
    let r = db.run(&[
        "findings",
        "justify",
        &id,
        "--reason",
        "bastion behind a VPN soon",
        "--until",
        "2099-01-01",
        "--by",
        "alice",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["state"], "justified");
    // Re-audit, and re-audit with a score override: still justified, who/why kept.
    assert_eq!(db.run(&["audit"]).code, 0);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        "[[audit.overrides]]\nrule = \"ec2/sg_admin_ports_open\"\naccount = \"222*\"\nscore = 4\n",
    )
    .unwrap();
    let r = db.run(&[
        "--config",
        &cfg.display().to_string(),
        "audit",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let f = findings(&db, &["--state", "justified"]);
    let f = f
        .iter()
        .find(|f| f["id"] == id_num)
        .expect("still justified");
    assert_eq!(f["score"], 4);
    assert_eq!(f["justification"]["by"], "alice");
    assert_eq!(f["justification"]["reason"], "bastion behind a VPN soon");
    // An expired justification reopens the finding.
    let r = db.run(&[
        "findings",
        "justify",
        &id,
        "--reason",
        "short",
        "--until",
        "2000-01-01",
    ]);
    assert_ne!(r.code, 0, "expiry in the past is refused");
    db.run(&["findings", "unjustify", &id]);
    // Justify until a moment from now, then let it lapse.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    assert_eq!(
        db.run(&["findings", "justify", &id, "--reason", "brief", "--until", &soon])
            .code,
        0
    );
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let open = findings(&db, &["--rule", "ec2/sg_admin_ports_open"]);
    assert!(
        open.iter()
            .any(|f| f["id"] == id_num && f["justification"].is_null()),
        "lapsed back to open"
    );
    let shown = db.run(&["findings", "show", &id]).stdout;
    assert!(shown.contains("justification expired"), "{shown}");
}

#[test]
fn exports_and_suppressions() {
    let db = common::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        "[accounts.\"999999999999\"]\nname = \"vendor\"\nclassification = \"third_party\"\n\
         [[audit.suppressions]]\nrule = \"ec2/sg_internet_ingress\"\nresource = \"web\"\nreason = \"public web tier\"\n\
         [[audit.overrides]]\nrule = \"s3/bucket_logging\"\ndisabled = true\n",
    )
    .unwrap();
    let c = cfg.display().to_string();
    let r = db.run(&[
        "--config",
        &c,
        "sweep",
        "--source",
        &examples("day1").display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        findings(&db, &["--rule", "s3/bucket_logging", "--state", "all"]).is_empty(),
        "disabled check"
    );
    let suppressed = findings(&db, &["--state", "suppressed"]);
    assert_eq!(
        suppressed.len(),
        16,
        "80/443 over IPv4 and IPv6 on the web group of each account and region"
    );
    let vendor = findings(&db, &["--rule", "iam/role_trust_cross_account"]);
    assert_eq!(
        vendor[0]["score"], 8,
        "a classified third party scores 8, not 10"
    );
    let csv = db.run(&["findings", "--format", "csv", "--min-score", "10"]);
    let mut lines = csv.stdout.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("id,state,score,severity,rule_id,title,account"));
    assert!(lines.count() >= 10);
    let ocsf = db
        .run(&["findings", "--format", "ocsf", "--min-score", "10"])
        .json();
    let first = &ocsf[0];
    assert_eq!(first["class_uid"], 2003);
    assert_eq!(first["metadata"]["version"], "1.1.0");
    assert_eq!(first["severity_id"], 5);
    assert!(first["resource"]["uid"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:"));
    // NDJSON, what SIEM pipelines ingest: one record per line, the same records.
    let nd = db.run(&["findings", "--format", "ocsf-ndjson", "--min-score", "10"]);
    assert_eq!(nd.code, 0, "{}", nd.stderr);
    let lines: Vec<serde_json::Value> = nd
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), ocsf.as_array().unwrap().len());
    assert_eq!(lines[0], *first);
    let bad = db.run(&["items", "--format", "csv"]);
    assert!(bad.code != 0 && bad.stderr.contains("for `guardrail findings`"));
    let bad = db.run(&["--config", "/nonexistent.toml", "findings"]);
    assert!(
        bad.stderr
            .contains("cannot read config file /nonexistent.toml"),
        "{}",
        bad.stderr
    );
}

#[test]
fn hostile_rules_do_not_stop_a_sweep() {
    let db = common::sqlite();
    let rules = tempfile::tempdir().unwrap();
    common::copy_tree(&common::repo().join("rules"), rules.path());
    let meta =
        r#"fn meta() { #{ resource_types: ["AWS::EC2::SecurityGroup"], description: "hostile" } }"#;
    for (name, body) in [
        ("loop", "loop { }"),
        ("strings", r#"let s = "xx"; loop { s += s; }"#),
        ("arrays", "let a = [1]; loop { a += a; }"),
        ("throws", r#"throw "boom""#),
    ] {
        std::fs::write(
            rules.path().join(format!("ec2/zz_{name}.rhai")),
            format!("{meta}\nfn check(item, ctx) {{ {body} }}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        rules.path().join("ec2/zz_broken.rhai"),
        "fn check(item, ctx) { this is not rhai }",
    )
    .unwrap();
    let r = rules.path().display().to_string();
    let started = std::time::Instant::now();
    let out = db.run(&[
        "--rules",
        &r,
        "sweep",
        "--source",
        &examples("day1").display().to_string(),
        "--format",
        "json",
    ]);
    // The sweep finished, but rules did not all judge: scripts are told (exit 2).
    assert_eq!(out.code, 2, "{}", out.stderr);
    let s = out.json();
    assert_eq!(s["created"], 77, "the sweep completed");
    let sgs = 18u64; // 4 per account and region, plus admin-access and bastion
                     // `throws`, `strings` and `arrays` fail fast on every group (an error, a size
                     // limit); `loop` exhausts its operation budget and is suspended after its second
                     // exhaustion (a third may already be running on the other thread).
    let errors = s["audit"]["rule_errors"].as_u64().unwrap();
    assert!(
        (3 * sgs + 2..=3 * sgs + 3).contains(&errors),
        "{errors} rule errors"
    );
    let problems: Vec<String> = s["audit"]["rule_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    for (rule, what) in [
        ("ec2/zz_loop", "suspended"),
        ("ec2/zz_strings", "failed on 18 of 18"),
        ("ec2/zz_arrays", "failed on 18 of 18"),
        ("ec2/zz_throws", "failed on 18 of 18"),
        ("ec2/zz_broken", "does not load"),
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p.contains(rule) && p.contains(what)),
            "{rule} {what}: {problems:#?}"
        );
    }
    // `status` names them too, and says so in its exit code.
    let st = db.run(&["--rules", &r, "status"]);
    assert_eq!(st.code, 2, "{}", st.stdout);
    assert!(
        st.stdout.contains("ec2/zz_broken not_loaded")
            && st.stdout.contains("ec2/zz_loop suspended"),
        "{}",
        st.stdout
    );
    assert!(started.elapsed().as_secs() < 600);
    // Other rules still ran.
    assert!(!findings(&db, &["--rule", "ec2/sg_admin_ports_open"]).is_empty());
    let errors = db
        .run(&["rules", "errors", "--limit", "500", "--format", "json"])
        .json();
    let msgs: Vec<String> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["rule_id"], e["message"]))
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("zz_loop") && m.contains("operation budget")),
        "{:?}",
        &msgs[..3]
    );
    assert!(msgs
        .iter()
        .any(|m| m.contains("zz_broken") && m.contains("does not load")));
    // rules lint and rules test report them too.
    let lint = db.run(&["--rules", &r, "rules", "lint"]);
    assert_ne!(lint.code, 0);
    assert!(lint.stdout.contains("zz_broken.rhai:1"), "{}", lint.stdout);
}

#[test]
fn rules_test_runs_the_pack() {
    let db = common::sqlite();
    let r = db.run(&["rules", "test"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r
        .stdout
        .contains("ok   ec2/sg_admin_ports_open / ssh from anywhere"));
    let last = r.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("rules: ") && last.ends_with(" passed, 0 failed"),
        "{last}"
    );
    let one = db.run(&[
        "rules",
        "test",
        &common::repo()
            .join("rules/s3/bucket_logging.rhai")
            .display()
            .to_string(),
    ]);
    assert_eq!(
        one.stdout.lines().filter(|l| l.starts_with("ok")).count(),
        2,
        "{}",
        one.stdout
    );
}

#[test]
fn an_installed_binary_judges_with_its_built_in_pack() {
    // No --rules, no GUARDRAIL_RULES, no checkout nearby: the embedded pack is used,
    // written once under the cache directory.
    let cache = tempfile::tempdir().unwrap();
    let db = common::sqlite();
    let cache_dir = cache.path().display().to_string();
    let env = [("XDG_CACHE_HOME", cache_dir.as_str())];
    let r = db.run_env(
        &["sweep", "--source", &examples("day1").display().to_string()],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!findings(&db, &["--rule", "ec2/sg_admin_ports_open"]).is_empty());
    let packs: Vec<_> = std::fs::read_dir(cache.path().join("guardrail"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("rules-")
        })
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    assert!(packs[0].join("ec2/sg_admin_ports_open.rhai").exists());
    // `rules list` reads the same pack.
    let list = db.run_env(&["rules", "list"], &env);
    assert!(
        list.stdout.contains("ec2/sg_admin_ports_open"),
        "{}",
        list.stdout
    );
}

#[test]
fn policy_explain_reads_a_file_and_a_stored_item() {
    let db = common::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bucket-policy.json");
    std::fs::write(
        &file,
        r#"{"Statement": [{"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/*", "Condition": {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}}]}"#,
    )
    .unwrap();
    let r = db.run(&["policy", "explain", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("does not restrict (…IfExists passes when the key is absent")
            && r.stdout
                .contains("Open to anyone, on the internet included: Statement[0] (Sid Public)"),
        "{}",
        r.stdout
    );
    db.sweep(&examples("day1"));
    let r = db.run(&["policy", "explain", "bob", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let verdicts = r.json()[0]["explanation"]["verdicts"].clone();
    assert!(
        verdicts.as_array().unwrap().iter().any(|v| v
            .as_str()
            .unwrap()
            .starts_with("Privilege escalation iam-create-access-key")),
        "{verdicts}"
    );
    let missing = db.run(&["policy", "explain", "no-such-item"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("file holding a policy document"),
        "{}",
        missing.stderr
    );
}

/// `rules coverage` lists every type: read from where, judged by which rules, how many
/// stored, and the stored types no rule judges.
#[test]
fn rules_coverage_shows_judged_and_unjudged_types() {
    let db = common::sqlite();
    db.sweep(&examples("day1"));
    let r = db.run(&["rules", "coverage", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = r.json();
    let row = |t: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource_type"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {t} in {rows}"))
    };
    let sg = row("AWS::EC2::SecurityGroup");
    assert!(sg["rules"]
        .as_array()
        .unwrap()
        .contains(&Value::from("ec2/sg_admin_ports_open")));
    assert_eq!(
        sg["sources"],
        serde_json::json!(["AWS Config", "API (ec2)"])
    );
    assert!(sg["stored"].as_i64().unwrap() > 0);
    let rt = row("AWS::EC2::RouteTable");
    assert_eq!(rt["rules"], serde_json::json!([]));
    assert_eq!(rt["stored"], 4);
    let text = db.run(&["rules", "coverage"]).stdout;
    assert!(
        text.contains("stored but judged by no rule") && text.contains("AWS::EC2::RouteTable"),
        "{text}"
    );
}

/// `findings --framework` shows each control of CIS AWS Foundations v3.0: failing
/// resources where a mapped rule has open findings, passing counts, and "not covered"
/// (never "pass") where no rule implements the control.
#[test]
fn a_framework_report_says_fail_pass_and_not_covered() {
    let db = common::sqlite();
    db.sweep(&examples("day1"));
    let r = db.run(&["findings", "--framework", "cis-aws-3.0", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    let control = |id: &str| {
        report["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no control {id}"))
    };
    assert_eq!(report["controls"].as_array().unwrap().len(), 62);
    // bastion: SSH from 0.0.0.0/0 (5.2) and all traffic from ::/0 (5.3).
    for id in ["5.2", "5.3"] {
        let c = control(id);
        assert_eq!(c["status"], "fail", "{c}");
        assert!(c["failing_resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap_or_default().contains("bastion")));
        assert!(c["passing"].as_i64().unwrap() > 0);
    }
    // Only bastion opens admin ports to ::/0; admin-access (IPv4 RDP) arrives on day 2.
    assert_eq!(control("5.3")["failing"], 1);
    assert_eq!(control("1.10")["status"], "pass");
    // Contact details cannot be read from a configuration item: no rule, not covered.
    assert_eq!(control("1.1")["status"], "not covered");
    let text = db.run(&["findings", "--framework", "cis-aws-3.0"]).stdout;
    assert!(text.contains("not covered by any rule"), "{text}");
    // Each finding carries its rule's controls (and OCSF exports name them).
    let ssh = findings(&db, &["--rule", "ec2/sg_admin_ports_open"]);
    assert!(ssh[0]["controls"]
        .as_array()
        .unwrap()
        .contains(&Value::from("cis-aws-3.0:5.2")));
    let bad = db.run(&["findings", "--framework", "nist-800-53"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("unknown framework"), "{}", bad.stderr);
}

/// The audit pass reads, judges and records pages on separate threads. A storage
/// failure while recording must stop the pass loudly (the command fails, naming the
/// error), keep every page recorded before it, and leave the rest due, so the next
/// pass (here: the next sweep of the same data) opens exactly the findings an
/// uninterrupted run opens.
fn a_failure_recording_an_audit_stops_the_pass_and_loses_nothing(
    make_db: impl Fn() -> Db,
    break_findings: &str,
    repair: &str,
) {
    let data = tempfile::tempdir().unwrap();
    common::write_snapshot(data.path(), 3000);
    let source = data.path().display().to_string();
    let open_count = |db: &Db| findings(db, &["--limit", "100000"]).len();

    let reference = make_db();
    reference.sweep(data.path());
    let want = open_count(&reference);
    assert!(want > 1000, "the data should open many findings: {want}");

    let db = make_db();
    let r = db.run(&["sweep", "--source", &source, "--no-audit"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Fails inserts once half the findings are in: a few pages in, with more to come.
    let break_findings = break_findings.replace("{limit}", &(want / 2).to_string());
    guardrail_storage::testing::execute_sql(&db.url, &break_findings).unwrap();
    let r = db.run(&["audit"]);
    assert_ne!(r.code, 0, "the audit must fail: {}", r.stdout);
    assert!(
        r.stderr.contains("injected failure"),
        "the error names the cause: {}",
        r.stderr
    );
    let recorded = open_count(&db);
    assert!(
        recorded > 0 && recorded < want,
        "pages before the failure are kept, the rest not yet: {recorded} of {want}"
    );

    guardrail_storage::testing::execute_sql(&db.url, repair).unwrap();
    db.sweep(data.path());
    assert_eq!(
        open_count(&db),
        want,
        "the next pass judged what the failed one missed"
    );
}

#[test]
fn a_failure_recording_an_audit_loses_nothing_sqlite() {
    a_failure_recording_an_audit_stops_the_pass_and_loses_nothing(
        common::sqlite,
        "CREATE TRIGGER fail_findings BEFORE INSERT ON findings \
         WHEN (SELECT count(*) FROM findings) >= {limit} \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        "DROP TRIGGER fail_findings;",
    );
}

#[test]
fn a_failure_recording_an_audit_loses_nothing_postgres() {
    if common::postgres().is_none() {
        return;
    }
    a_failure_recording_an_audit_stops_the_pass_and_loses_nothing(
        || common::postgres().expect("PostgreSQL"),
        "CREATE FUNCTION fail_findings() RETURNS trigger AS $$ BEGIN \
           IF (SELECT count(*) FROM findings) >= {limit} THEN RAISE EXCEPTION 'injected failure'; END IF; \
           RETURN NEW; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER fail_findings BEFORE INSERT ON findings \
           FOR EACH ROW EXECUTE FUNCTION fail_findings();",
        "DROP TRIGGER fail_findings ON findings;",
    );
}
