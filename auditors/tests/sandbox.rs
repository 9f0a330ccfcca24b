//! Hostile and broken rules end in a rule error within their budget; other rules still
//! run; the same limits hold in debug and release builds because all are set.

use std::time::Instant;

use guardrail_auditors::{audit_item, AuditContext, AuditItem, Engine, Limits, RuleSet};

fn rules_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

const META: &str =
    r#"fn meta() { #{ resource_types: ["AWS::EC2::SecurityGroup"], description: "test" } }"#;

fn rule(body: &str) -> String {
    format!("{META}\nfn check(item, ctx) {{\n{body}\n}}\n")
}

fn item() -> AuditItem {
    AuditItem {
        resource_type: "AWS::EC2::SecurityGroup".into(),
        resource_id: "sg-1".into(),
        account: "111111111111".into(),
        region: "us-east-1".into(),
        config: serde_json::json!({"configuration": {"groupName": "x"}}),
        ..AuditItem::default()
    }
}

#[test]
fn hostile_rules_are_stopped_and_good_rules_still_run() {
    let dir = rules_dir(&[
        ("loop.rhai", &rule("loop { }")),
        ("strings.rhai", &rule(r#"let s = "xx"; loop { s += s; }"#)),
        (
            "recursion.rhai",
            &format!("{META}\nfn down(n) {{ down(n + 1) }}\nfn check(item, ctx) {{ down(0) }}\n"),
        ),
        ("arrays.rhai", &rule("let a = []; loop { a.push(1); }")),
        (
            "maps.rhai",
            &rule("let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }"),
        ),
        ("throws.rhai", &rule(r#"throw "boom";"#)),
        ("bad_return.rhai", &rule("42")),
        ("no_title.rhai", &rule("[#{ score: 5 }]")),
        ("bad_score.rhai", &rule(r#"[#{ title: "t", score: 11 }]"#)),
        ("eval.rhai", &rule(r#"eval("1 + 1")"#)),
        (
            "good.rhai",
            &rule(r#"[#{ key: "k", title: "fine", score: 3 }]"#),
        ),
    ]);
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, dir.path()).unwrap();
    // eval is disabled at parse time: that rule does not even load.
    assert_eq!(set.load_errors.len(), 1, "{:?}", set.load_errors);
    assert!(
        set.load_errors[0].message.contains("eval"),
        "{}",
        set.load_errors[0]
    );
    assert!(set.load_errors[0].path.ends_with("eval.rhai"));
    let started = Instant::now();
    let outcomes = audit_item(&engine, &set, &item(), &AuditContext::default());
    assert!(
        started.elapsed().as_secs() < 30,
        "budgets must end hostile rules quickly"
    );
    let get = |id: &str| {
        outcomes
            .iter()
            .find(|o| o.rule_id == id)
            .unwrap_or_else(|| panic!("{id} did not run"))
    };
    for (id, fragment) in [
        ("loop", "operation budget"),
        ("strings", "larger than allowed"),
        ("recursion", "recursed too deep"),
        ("arrays", "budget|larger than allowed"),
        ("maps", "budget|larger than allowed"),
        ("throws", "boom"),
        ("bad_return", "must return an array"),
        ("no_title", "no title"),
        ("bad_score", "scores are 0 to 10"),
    ] {
        let err = get(id).result.as_ref().expect_err(id);
        assert!(
            fragment.split('|').any(|f| err.message.contains(f)),
            "{id}: {}",
            err.message
        );
    }
    let good = get("good").result.as_ref().unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].severity, "low");
}

#[test]
fn wall_clock_budget_stops_slow_rules() {
    let dir = rules_dir(&[("slow.rhai", &rule("let x = 0; loop { x += 1; }"))]);
    let limits = Limits {
        max_operations: u64::MAX / 2,
        max_time: std::time::Duration::from_millis(200),
        ..Limits::default()
    };
    let engine = Engine::new(limits);
    let set = RuleSet::load(&engine, dir.path()).unwrap();
    let started = Instant::now();
    let out = audit_item(&engine, &set, &item(), &AuditContext::default());
    assert!(out[0]
        .result
        .as_ref()
        .unwrap_err()
        .message
        .contains("time budget"));
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn imports_and_bad_files_are_load_errors_with_lines() {
    let dir = rules_dir(&[
        (
            "imports.rhai",
            &format!("import \"x\" as x;\n{}", rule("[]")),
        ),
        (
            "syntax.rhai",
            "fn meta() { #{ resource_types: [\"T\"] } }\nfn check(item, ctx) {\n  let = 1;\n}\n",
        ),
        ("nometa.rhai", "fn check(item, ctx) { [] }"),
        (
            "notypes.rhai",
            "fn meta() { #{} }\nfn check(item, ctx) { [] }",
        ),
    ]);
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, dir.path()).unwrap();
    let msg = |name: &str| {
        set.load_errors
            .iter()
            .find(|e| e.path.ends_with(name))
            .map(|e| e.to_string())
            .unwrap_or_else(|| format!("{name} loaded"))
    };
    assert!(
        msg("syntax.rhai").contains("syntax.rhai:3:"),
        "{}",
        msg("syntax.rhai")
    );
    assert!(msg("nometa.rhai").contains("fn meta()"));
    assert!(msg("notypes.rhai").contains("no resource_types"));
    assert!(
        msg("imports.rhai").contains("imports.rhai:1:"),
        "{}",
        msg("imports.rhai")
    );
    assert!(set.get("imports").is_none());
}

#[test]
fn rules_cannot_change_what_the_next_rule_sees() {
    let dir = rules_dir(&[
        (
            "a_mutates.rhai",
            &rule(r#"item.config.configuration.groupName = "changed"; ctx.account.id = "x"; []"#),
        ),
        (
            "b_reads.rhai",
            &rule(
                r#"[#{ key: item.config.configuration.groupName + "/" + ctx.account.id, title: "t", score: 1 }]"#,
            ),
        ),
    ]);
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, dir.path()).unwrap();
    let out = audit_item(&engine, &set, &item(), &AuditContext::default());
    let b = out.iter().find(|o| o.rule_id == "b_reads").unwrap();
    assert_eq!(b.result.as_ref().unwrap()[0].key, "x/111111111111");
}

/// The parts of `ctx` shared by every item of a page (accounts, internal CIDRs) are one
/// value behind read-only handles: no rule, on any item, can change them for another.
#[test]
fn rules_cannot_change_the_shared_context_for_other_items() {
    let dir = rules_dir(&[
        (
            "a1.rhai",
            &rule(r#"ctx.accounts["222222222222"] = #{ name: "evil" }; []"#),
        ),
        (
            "a2.rhai",
            &rule(r#"let a = ctx.accounts; a["333333333333"] = 1; a.remove("111111111111"); []"#),
        ),
        (
            "a3.rhai",
            &rule(r#"ctx.internal_cidrs.push("0.0.0.0/0"); []"#),
        ),
        (
            "a4.rhai",
            &rule(
                r#"let c = ctx.internal_cidrs; c.clear(); c.push("0.0.0.0/0"); ctx.accounts["111111111111"].name = "evil"; []"#,
            ),
        ),
        (
            "b_reads.rhai",
            &rule(
                r#"[#{ key: `${ctx.accounts.len()} ${ctx.accounts.keys()} ${ctx.accounts["111111111111"].name} ${ctx.internal_cidrs}`, title: "t", score: 1 }]"#,
            ),
        ),
    ]);
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, dir.path()).unwrap();
    let ctx = AuditContext {
        accounts: [(
            "111111111111".to_owned(),
            guardrail_auditors::AccountInfo {
                name: "prod".into(),
                classification: "ours".into(),
            },
        )]
        .into(),
        internal_cidrs: vec!["10.0.0.0/8".into()],
        ..AuditContext::default()
    };
    let items: Vec<AuditItem> = (0..6).map(|_| item()).collect();
    let out = guardrail_auditors::audit_items(&engine, &set, &items, &ctx, 2);
    for outcomes in &out {
        let b = outcomes.iter().find(|o| o.rule_id == "b_reads").unwrap();
        assert_eq!(
            b.result.as_ref().unwrap()[0].key,
            r#"1 ["111111111111"] prod ["10.0.0.0/8"]"#
        );
    }
}

#[test]
fn hot_reload_keeps_the_last_good_version() {
    let dir = rules_dir(&[("r.rhai", &rule(r#"[#{ key: "v1", title: "t", score: 1 }]"#))]);
    let engine = Engine::new(Limits::default());
    let mut set = RuleSet::load(&engine, dir.path()).unwrap();
    let key = |set: &RuleSet| {
        audit_item(&engine, set, &item(), &AuditContext::default())[0]
            .result
            .as_ref()
            .unwrap()[0]
            .key
            .clone()
    };
    assert_eq!(key(&set), "v1");
    std::fs::write(
        dir.path().join("r.rhai"),
        rule(r#"[#{ key: "v2-longer", title: "t", score: 1 }]"#),
    )
    .unwrap();
    // A change is compiled once it has stayed the same for one poll.
    assert!(set.reload(&engine).unwrap().is_empty());
    assert_eq!(key(&set), "v1");
    assert_eq!(set.reload(&engine).unwrap(), vec!["r".to_string()]);
    assert_eq!(key(&set), "v2-longer");
    // An editor truncates, then writes: the empty file seen in between is not an error.
    std::fs::write(dir.path().join("r.rhai"), "").unwrap();
    set.reload(&engine).unwrap();
    assert!(set.load_errors.is_empty(), "{:?}", set.load_errors);
    std::fs::write(
        dir.path().join("r.rhai"),
        "fn check(item, ctx) { this is not rhai",
    )
    .unwrap();
    set.reload(&engine).unwrap();
    assert!(set.load_errors.is_empty(), "{:?}", set.load_errors);
    set.reload(&engine).unwrap();
    assert_eq!(set.load_errors.len(), 1);
    assert!(
        set.load_errors[0].message.contains("Expecting"),
        "{:?}",
        set.load_errors
    );
    assert_eq!(
        key(&set),
        "v2-longer",
        "a broken edit keeps the last good version"
    );
    std::fs::write(dir.path().join("new.rhai"), rule("[]")).unwrap();
    set.reload(&engine).unwrap();
    let changed = set.reload(&engine).unwrap();
    assert!(changed.contains(&"new".to_string()));
    assert_eq!(set.rules().len(), 2);
}

#[test]
fn lint_names_calls_to_unknown_functions_and_methods() {
    let dir = rules_dir(&[(
        "typo.rhai",
        &format!(
            "{META}\nfn helper(x) {{ x }}\nfn check(item, ctx) {{\n let a = [];\n a.pussh(1);\n let d = days_betwen(item.id, ctx.now);\n helper(sg_permissions(item.config, \"ingress\"));\n if \"x\" in a {{ print(\"y\"); }}\n [] \n}}\n"
        ),
    )]);
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, dir.path()).unwrap();
    assert!(set.load_errors.is_empty(), "{:?}", set.load_errors);
    let problems = engine.lint(&set.rules()[0]);
    let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 2, "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("method `pussh`") && m.contains(":5:")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("function `days_betwen`") && m.contains(":6:")),
        "{messages:#?}"
    );
}

#[test]
fn the_shipped_pack_lints_clean() {
    let engine = Engine::new(Limits::default());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let set = RuleSet::load(&engine, &dir).unwrap();
    assert!(set.load_errors.is_empty(), "{:?}", set.load_errors);
    let problems: Vec<String> = set
        .rules()
        .iter()
        .flat_map(|r| engine.lint(r))
        .map(|p| p.to_string())
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn controls_are_data_a_rule_declares_and_a_malformed_one_is_a_load_error() {
    let with = |controls: &str| {
        format!(
            "fn meta() {{ #{{ resource_types: [\"T\"], description: \"d\", controls: {controls} }} }}\nfn check(item, ctx) {{ [] }}\n"
        )
    };
    let dir = rules_dir(&[
        (
            "good.rhai",
            &with("[\"cis-aws-3.0:1.4\", \"aws-fsbp:IAM.4\"]"),
        ),
        ("unknown.rhai", &with("[\"nist:AC-2\"]")),
        ("bare.rhai", &with("[\"1.4\"]")),
        ("notalist.rhai", &with("\"cis-aws-3.0:1.4\"")),
        ("none.rhai", &rule("[]")),
    ]);
    let engine = Engine::new(Limits::default());
    let set = RuleSet::load(&engine, dir.path()).unwrap();
    assert_eq!(
        set.get("good").unwrap().controls,
        vec!["cis-aws-3.0:1.4", "aws-fsbp:IAM.4"]
    );
    assert!(set.get("none").unwrap().controls.is_empty());
    for bad in ["unknown", "bare", "notalist"] {
        let e = set
            .load_errors
            .iter()
            .find(|e| e.rule_id == bad)
            .unwrap_or_else(|| panic!("{bad} loaded"));
        assert!(e.to_string().contains("controls"), "{e}");
    }
}
