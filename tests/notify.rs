//! Notifications end to end: the bundled examples swept by the real binary, routed
//! through the durable outbox to local Slack, PagerDuty, webhook and SMTP receivers.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::receiver::{Mode, Receiver};
use common::smtp::SmtpReceiver;
use common::{examples, Db};
use serde_json::Value;

const SLACK_OK: &str = r#"{"ok":true,"channel":"C0SECURITY","ts":"1700000000.000100","message":{"ts":"1700000000.000100","text":"x"}}"#;

struct Setup {
    config: tempfile::TempDir,
    path: String,
}

fn config(body: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pd.key"), "pd-routing-key-123\n").unwrap();
    let body = body.replace("{dir}", &dir.path().display().to_string());
    let path = dir.path().join("g.toml");
    std::fs::write(&path, body).unwrap();
    Setup {
        path: path.display().to_string(),
        config: dir,
    }
}

fn findings(db: &Db, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["findings", "--format", "json"];
    a.extend_from_slice(args);
    db.run(&a).json().as_array().cloned().unwrap_or_default()
}

const ENV: &[(&str, &str)] = &[
    ("SLACK_TOKEN_T", "xoxb-test-token"),
    ("HOOK_SECRET_T", "webhook-secret"),
];

/// A sweep that notifies each finding (these tests are about per-finding delivery;
/// the baseline summary of a first sweep has its own test).
fn sweep(db: &Db, cfg: &Setup, day: &str) {
    sweep_with(db, cfg, day, &["--no-baseline"]);
}

fn sweep_with(db: &Db, cfg: &Setup, day: &str, extra: &[&str]) {
    let source = examples(day).display().to_string();
    let mut args = vec!["--config", &cfg.path, "sweep", "--source", &source];
    args.extend_from_slice(extra);
    let r = db.run_env(&args, ENV);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

fn dispatch(db: &Db, cfg: &Setup) -> Value {
    let r = db.run_env(
        &[
            "--config", &cfg.path, "notify", "dispatch", "--format", "json",
        ],
        ENV,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()
}

#[test]
fn examples_notify_every_channel_once() {
    let slack = Receiver::start(Receiver::ok_json(SLACK_OK));
    let pd = Receiver::start(Mode::Up {
        status: 202,
        content_type: "application/json",
        body: r#"{"status":"success"}"#.into(),
    });
    let hook = Receiver::start(Receiver::ok_json("{}"));
    let digest = Receiver::start(Mode::Up {
        status: 200,
        content_type: "text/plain",
        body: "ok".into(),
    });
    let cfg = config(&format!(
        r##"
[notify]
ui_base_url = "http://guardrail.test:8080"

[[notify.routes]]
name = "security-slack"
channel = "slack"
min_score = 9
events = ["opened", "reopened"]
slack_channel = "#security"
owner_tag = "owner"
owner_channels = {{ platform = "#platform-alerts" }}
slack_token = {{ env = "SLACK_TOKEN_T" }}
slack_api_url = "{slack}/api"

[[notify.routes]]
name = "pager"
channel = "pagerduty"
min_score = 9
routing_key = {{ file = "{{dir}}/pd.key" }}
events_url = "{pd}/v2/enqueue"

[[notify.routes]]
name = "siem"
channel = "webhook"
url = "{hook}/guardrail"
secret = {{ env = "HOOK_SECRET_T" }}

[[notify.routes]]
name = "daily"
channel = "slack"
digest_seconds = 2
events = ["opened"]
slack_webhook_url = {{ file = "{{dir}}/hook.url" }}
"##,
        slack = slack.url,
        pd = pd.url,
        hook = hook.url
    ));
    std::fs::write(
        cfg.config.path().join("hook.url"),
        format!("{}/services/T0/B0/XYZ", digest.url),
    )
    .unwrap();
    let db = common::sqlite();

    sweep(&db, &cfg, "day1");
    assert!(
        slack.received().is_empty(),
        "a sweep only queues; it never sends"
    );
    let d = dispatch(&db, &cfg);
    assert_eq!(d["dispatch"]["failed"], 0, "{d}");
    let top = findings(&db, &["--min-score", "9"]);
    let all_open = findings(&db, &["--state", "open"]);

    // Slack Web API: one Block Kit message per opened finding scored 9 or more.
    let msgs = slack.received();
    assert_eq!(msgs.len(), top.len());
    for m in &msgs {
        assert_eq!(m.path, "/api/chat.postMessage");
        assert_eq!(
            m.headers.get("authorization").map(String::as_str),
            Some("Bearer xoxb-test-token")
        );
        let req: slack_morphism::prelude::SlackApiChatPostMessageRequest =
            serde_json::from_slice(&m.body)
                .expect("valid chat.postMessage as slack-morphism reads it");
        let blocks = req.content.blocks.clone().unwrap_or_default();
        let v = m.json();
        let kinds: Vec<&str> = v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"header"), "{kinds:?}");
        assert!(kinds.contains(&"actions") && blocks.len() == kinds.len());
        let body = String::from_utf8_lossy(&m.body);
        assert!(
            body.contains("http://guardrail.test:8080/findings/"),
            "UI link in {body}"
        );
    }
    // Owner routing: the platform team's resources go to its channel.
    let channels: HashSet<String> = msgs
        .iter()
        .map(|m| m.json()["channel"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        channels.contains("#security") && channels.contains("#platform-alerts"),
        "{channels:?}"
    );

    // PagerDuty: a trigger per finding, deduplicated by its fingerprint.
    let pd_events = pd.received();
    assert_eq!(pd_events.len(), top.len());
    let fingerprints: HashSet<String> = top
        .iter()
        .map(|f| f["fingerprint"].as_str().unwrap().to_owned())
        .collect();
    for e in &pd_events {
        let v = e.json();
        assert_eq!(v["routing_key"], "pd-routing-key-123");
        assert_eq!(v["event_action"], "trigger");
        assert!(fingerprints.contains(v["dedup_key"].as_str().unwrap()));
        assert_eq!(v["payload"]["severity"], "critical");
    }

    // Webhook: every opened finding, signed.
    let hooks = hook.received();
    assert_eq!(hooks.len(), all_open.len());
    for h in &hooks {
        let ts: i64 = h.headers["x-guardrail-timestamp"].parse().unwrap();
        assert_eq!(
            h.headers["x-guardrail-signature"],
            guardrail_notify::signature("webhook-secret", ts, &h.body)
        );
        let v = h.json();
        assert_eq!(v["ocsf"]["class_uid"], 2003);
        assert_eq!(v["event"], "opened");
    }

    // The digest route waits for its window to close, then sends one message for all
    // the events in it (the sweep may straddle two 2-second windows: then two).
    std::thread::sleep(Duration::from_millis(2200));
    dispatch(&db, &cfg);
    let digests = digest.received();
    assert!(
        (1..=2).contains(&digests.len()),
        "{} digest messages",
        digests.len()
    );
    let mut covered = 0;
    for d in &digests {
        assert_eq!(d.path, "/services/T0/B0/XYZ");
        let text = d.json()["text"].as_str().unwrap().to_owned();
        let n: usize = text
            .trim_start_matches("[guardrail] ")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        covered += n;
    }
    assert_eq!(
        covered,
        all_open.len(),
        "the digests cover every opened finding once"
    );

    // Day 2: PagerDuty resolves what was fixed; the new problems trigger.
    sweep(&db, &cfg, "day2");
    dispatch(&db, &cfg);
    let fixed_top: Vec<Value> = findings(&db, &["--state", "fixed", "--min-score", "9"]);
    let pd_events = pd.received();
    let resolves: Vec<Value> = pd_events
        .iter()
        .map(|e| e.json())
        .filter(|v| v["event_action"] == "resolve")
        .collect();
    assert_eq!(
        resolves.len(),
        fixed_top.len(),
        "one resolve per fixed finding"
    );
    for f in &fixed_top {
        assert!(resolves.iter().any(|r| r["dedup_key"] == f["fingerprint"]));
    }
    let (slack_before, pd_before, hook_before) = (
        slack.received().len(),
        pd.received().len(),
        hook.received().len(),
    );

    // Day 2 again: nothing changed, nobody is notified.
    sweep(&db, &cfg, "day2");
    std::thread::sleep(Duration::from_millis(2200));
    dispatch(&db, &cfg);
    assert_eq!(
        (
            slack.received().len(),
            pd.received().len(),
            hook.received().len()
        ),
        (slack_before, pd_before, hook_before)
    );
    let outbox = db
        .run(&["outbox", "--status", "failed", "--format", "json"])
        .json();
    assert!(outbox.as_array().unwrap().is_empty(), "{outbox}");
}

#[test]
fn a_receiver_that_is_down_loses_nothing_and_gets_no_duplicates() {
    let hook = Receiver::start(Mode::Down);
    let cfg = config(&format!(
        "[notify]\nretry_initial_seconds = 1\nretry_max_seconds = 2\n[[notify.routes]]\nname = \"siem\"\nchannel = \"webhook\"\nurl = \"{}/in\"\nsecret = {{ env = \"HOOK_SECRET_T\" }}\n",
        hook.url
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    let d = dispatch(&db, &cfg);
    assert_eq!(d["dispatch"]["delivered"], 0);
    let failed = db
        .run(&["outbox", "--status", "failed", "--format", "json"])
        .json();
    let failed = failed.as_array().unwrap();
    assert!(!failed.is_empty());
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("will retry"),
        "{}",
        failed[0]
    );
    // A second pass inside the backoff sends nothing.
    assert_eq!(dispatch(&db, &cfg)["dispatch"]["delivered"], 0);
    hook.set(Receiver::ok_json("{}"));
    std::thread::sleep(Duration::from_millis(1200));
    let d = dispatch(&db, &cfg);
    let total = findings(&db, &["--state", "open"]).len();
    assert_eq!(
        d["dispatch"]["delivered"].as_u64().unwrap() as usize,
        total,
        "{d}"
    );
    let ids: Vec<String> = hook
        .received()
        .iter()
        .map(|r| r.headers["x-guardrail-delivery"].clone())
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "no duplicates");
    assert_eq!(unique.len(), total);
    // Permanent refusals are given up at once and kept visible.
    let cfg2 = config(&format!(
        "[[notify.routes]]\nname = \"siem\"\nchannel = \"webhook\"\nurl = \"{}/in\"\nsecret = {{ env = \"HOOK_SECRET_T\" }}\n",
        hook.url
    ));
    hook.set(Mode::Up {
        status: 400,
        content_type: "text/plain",
        body: "bad".into(),
    });
    let r = db.run_env(&["--config", &cfg2.path, "notify", "test", "siem"], ENV);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout.contains("refused the request with HTTP 400"),
        "{}",
        r.stdout
    );
    let gave_up = db
        .run(&["outbox", "--status", "gave_up", "--format", "json"])
        .json();
    assert_eq!(gave_up.as_array().unwrap().len(), 1);
}

#[test]
fn a_killed_dispatcher_loses_nothing() {
    let hook = Receiver::start(Mode::Slow(Duration::from_millis(1500)));
    let cfg = config(&format!(
        "[notify]\nlease_seconds = 2\nretry_initial_seconds = 1\n[[notify.routes]]\nname = \"siem\"\nchannel = \"webhook\"\nmin_score = 10\nurl = \"{}/in\"\nsecret = {{ env = \"HOOK_SECRET_T\" }}\n",
        hook.url
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    let wanted = findings(&db, &["--min-score", "10"]).len();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args([
            "--database",
            &db.url,
            "--config",
            &cfg.path,
            "notify",
            "dispatch",
            "--watch",
            "--interval",
            "0.2",
        ])
        .envs(ENV.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while a delivery is in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while hook.received().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    hook.set(Receiver::ok_json("{}"));
    // A new dispatcher picks up everything, including the rows the dead one leased.
    std::thread::sleep(Duration::from_millis(2100));
    for _ in 0..10 {
        dispatch(&db, &cfg);
        let pending = db.run(&["outbox", "--format", "json"]).json();
        if pending
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "delivered")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    let rows = db.run(&["outbox", "--format", "json"]).json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), wanted);
    assert!(rows.iter().all(|r| r["status"] == "delivered"), "{rows:?}");
    let got: HashSet<String> = hook
        .received()
        .iter()
        .map(|r| r.headers["x-guardrail-delivery"].clone())
        .collect();
    assert_eq!(
        got.len(),
        wanted,
        "every notification delivered at least once"
    );
}

#[test]
fn bad_notify_configuration_is_a_clear_error() {
    let db = common::sqlite();
    let cfg = config("[[notify.routes]]\nname = \"pd\"\nchannel = \"pagerduty\"\n");
    let r = db.run(&["--config", &cfg.path, "notify", "dispatch"]);
    assert!(
        r.stderr
            .contains("notify.routes \"pd\": a pagerduty route needs routing_key"),
        "{}",
        r.stderr
    );
    let cfg = config("[[notify.routes]]\nname = \"w\"\nchannel = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\nsecret = { env = \"GUARDRAIL_UNSET_SECRET_VAR\" }\n");
    let r = db.run(&["--config", &cfg.path, "notify", "test", "w"]);
    assert!(
        r.stdout.contains("GUARDRAIL_UNSET_SECRET_VAR is not set"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stdout.contains("webhook-secret"));
    let r = db.run(&["notify", "dispatch"]);
    assert!(r.stderr.contains("no notification routes"), "{}", r.stderr);
}

#[test]
fn changed_items_reach_routes_that_ask_for_them() {
    let hook = Receiver::start(Receiver::ok_json("{}"));
    let cfg = config(&format!(
        "[[notify.routes]]\nname = \"sg-changes\"\nchannel = \"webhook\"\nevents = [\"changed\"]\nresource_types = [\"AWS::EC2::SecurityGroup\"]\nurl = \"{}/in\"\nsecret = {{ env = \"HOOK_SECRET_T\" }}\n",
        hook.url
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    dispatch(&db, &cfg);
    assert!(
        hook.received().is_empty(),
        "subscribing starts from now: day 1's creations are history"
    );
    sweep(&db, &cfg, "day2");
    dispatch(&db, &cfg);
    let got: Vec<Value> = hook.received().iter().map(|r| r.json()).collect();
    let mut names: Vec<String> = got
        .iter()
        .map(|v| v["guardrail"]["item"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["admin-access", "analytics-db", "bastion"]);
    assert!(got.iter().all(|v| v["event"] == "changed"));
    let admin = got
        .iter()
        .find(|v| v["guardrail"]["item"]["name"] == "admin-access")
        .unwrap();
    assert_eq!(
        admin["guardrail"]["what_changed"][0]["new"]["fromPort"],
        3389
    );
    // Findings are not sent to a changes-only route.
    assert!(got.iter().all(|v| v.get("ocsf").is_none()));
}

#[test]
fn undeliverable_notifications_are_given_up_after_their_age_and_kept() {
    let hook = Receiver::start(Mode::Up {
        status: 503,
        content_type: "text/plain",
        body: "busy".into(),
    });
    let cfg = config(&format!(
        "[notify]\nretry_initial_seconds = 1\ngive_up_after_seconds = 1\n[[notify.routes]]\nname = \"siem\"\nchannel = \"webhook\"\nmin_score = 10\nurl = \"{}/in\"\nsecret = {{ env = \"HOOK_SECRET_T\" }}\n",
        hook.url
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    let d = dispatch(&db, &cfg);
    assert!(d["dispatch"]["failed"].as_u64().unwrap() > 0, "{d}");
    std::thread::sleep(Duration::from_millis(1200));
    let d = dispatch(&db, &cfg);
    assert_eq!(d["dispatch"]["failed"], 0, "{d}");
    let gave_up = db
        .run(&["outbox", "--status", "gave_up", "--format", "json"])
        .json();
    let gave_up = gave_up.as_array().unwrap();
    assert_eq!(gave_up.len(), findings(&db, &["--min-score", "10"]).len());
    assert!(
        gave_up[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 1s undelivered"),
        "{}",
        gave_up[0]
    );
    assert_eq!(gave_up[0]["attempts"], 2);
    // Kept, visible, and never retried.
    let text = db.run(&["outbox", "--status", "gave_up"]).stdout;
    assert!(
        text.contains("gave_up") && text.contains("HTTP 503"),
        "{text}"
    );
}

#[test]
fn a_first_sweep_sends_one_baseline_summary_per_route_then_each_finding() {
    let hook = Receiver::start(Receiver::ok_json("{}"));
    let pd = Receiver::start(Mode::Up {
        status: 202,
        content_type: "application/json",
        body: r#"{"status":"success"}"#.into(),
    });
    let cfg = config(&format!(
        "[[notify.routes]]\nname = \"siem\"\nchannel = \"webhook\"\nurl = \"{}/in\"\nsecret = {{ env = \"HOOK_SECRET_T\" }}\n\
         [[notify.routes]]\nname = \"oncall\"\nchannel = \"pagerduty\"\nmin_score = 9\nevents_url = \"{}/v2/enqueue\"\nrouting_key = {{ file = \"{{dir}}/pd.key\" }}\n",
        hook.url, pd.url
    ));
    let db = common::sqlite();
    // One delivery directory, as in production: day 1 now, day 2 added later.
    let source = tempfile::tempdir().unwrap();
    let copy = |day: &str| {
        let r = std::process::Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", examples(day).display()))
            .arg(source.path())
            .status()
            .unwrap();
        assert!(r.success());
    };
    let sweep_source = || {
        let s = source.path().display().to_string();
        let r = db.run_env(&["--config", &cfg.path, "sweep", "--source", &s], ENV);
        assert_eq!(r.code, 0, "{}", r.stderr);
    };
    copy("day1");
    // First sweep of this source: a baseline, without any flag.
    sweep_source();
    dispatch(&db, &cfg);
    let open = findings(&db, &[]);
    assert!(open.len() > 10, "{}", open.len());
    let hooks = hook.received();
    assert_eq!(hooks.len(), 1, "one summary, not one per finding");
    let body = hooks[0].json();
    assert_eq!(body["event"], "baseline");
    assert_eq!(
        body["baseline"]["count"].as_u64().unwrap() as usize,
        open.len()
    );
    let pages = pd.received();
    assert_eq!(pages.len(), 1, "one PagerDuty event for the baseline");
    let page = pages[0].json();
    assert_eq!(page["payload"]["severity"], "info");
    assert!(page["payload"]["summary"]
        .as_str()
        .unwrap()
        .contains("baseline"));
    // Day 2 is not a first sweep of the source: each new finding is its own message.
    let before = open.len();
    copy("day2");
    sweep_source();
    dispatch(&db, &cfg);
    let later: Vec<Value> = hook.received()[1..].iter().map(|r| r.json()).collect();
    assert!(!later.is_empty());
    assert!(later.iter().all(|v| v["event"] != "baseline"), "{later:?}");
    assert!(findings(&db, &["--state", "all"]).len() >= before);
}

#[test]
fn a_proxy_404_is_retried_and_given_up_rows_can_be_requeued() {
    let hook = Receiver::start(Mode::Up {
        status: 404,
        content_type: "text/html",
        body: "<h1>Not Found</h1> (proxy)".into(),
    });
    let cfg = config(&format!(
        "[notify]\nretry_initial_seconds = 1\n[[notify.routes]]\nname = \"siem\"\nchannel = \"webhook\"\nmin_score = 10\nurl = \"{}/in\"\nsecret = {{ env = \"HOOK_SECRET_T\" }}\n",
        hook.url
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    let d = dispatch(&db, &cfg);
    assert!(d["dispatch"]["failed"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(
        d["dispatch"]["gave_up"], 0,
        "a 404 from a proxy is not permanent: {d}"
    );
    let gave_up = db
        .run(&["outbox", "--status", "gave_up", "--format", "json"])
        .json();
    assert!(gave_up.as_array().unwrap().is_empty(), "{gave_up}");

    // A permanent refusal gives up; requeue brings the rows back once it is fixed.
    hook.set(Mode::Up {
        status: 400,
        content_type: "text/plain",
        body: "bad".into(),
    });
    std::thread::sleep(Duration::from_millis(2100));
    let d = dispatch(&db, &cfg);
    let n = d["dispatch"]["gave_up"].as_u64().unwrap();
    assert!(n > 0, "{d}");
    hook.set(Receiver::ok_json("{}"));
    let r = db.run(&["outbox", "requeue", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["requeued"].as_u64().unwrap(), n);
    let d = dispatch(&db, &cfg);
    assert_eq!(d["dispatch"]["delivered"].as_u64().unwrap(), n, "{d}");
    let gave_up = db
        .run(&["outbox", "--status", "gave_up", "--format", "json"])
        .json();
    assert!(gave_up.as_array().unwrap().is_empty(), "{gave_up}");
}

fn email_route(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[notify.routes]]\nname = \"{name}\"\nchannel = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
         from = \"guardrail <guardrail@example.test>\"\nto = [\"security@example.test\"]\n{extra}\n"
    )
}

#[test]
fn email_sends_one_message_per_finding_or_one_digest_and_never_in_clear_unless_asked() {
    let relay = SmtpReceiver::start();
    let cfg = config(&format!(
        "[notify]\nui_base_url = \"http://guardrail.test:8080\"\n{}{}{}",
        email_route(
            "mail",
            relay.port,
            "tls = \"none\"\nmin_score = 9\nowner_tag = \"owner\"\nowner_recipients = { platform = [\"platform@example.test\", \"lead@example.test\"] }"
        ),
        email_route("mail-digest", relay.port, "tls = \"none\"\ndigest_seconds = 2\nevents = [\"opened\"]"),
        // The default, STARTTLS, against a relay that does not offer it.
        email_route("mail-strict", relay.port, "min_score = 9"),
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    let d = dispatch(&db, &cfg);
    let top = findings(&db, &["--min-score", "9"]);
    let all_open = findings(&db, &["--state", "open"]);
    assert!(!top.is_empty());

    // One message per finding scored 9 or more, addressed by owner. (A slow dispatch
    // can outlast the digest route's 2 s window and send its digest too: counted below.)
    let is_digest = |m: &common::smtp::Mail| {
        m.header("subject")
            .is_some_and(|s| s.contains("finding events for route mail-digest"))
    };
    let mails: Vec<_> = relay
        .received()
        .into_iter()
        .filter(|m| !is_digest(m))
        .collect();
    assert_eq!(mails.len(), top.len(), "{d}");
    let titles: HashSet<String> = top
        .iter()
        .map(|f| f["title"].as_str().unwrap().to_owned())
        .collect();
    for m in &mails {
        assert_eq!(m.from, "guardrail@example.test");
        let subject = m.header("subject").unwrap();
        assert!(subject.starts_with("[guardrail] CRITICAL"), "{subject}");
        assert!(
            titles.iter().any(|t| m.body().contains(t.as_str())),
            "a finding title of {titles:?} in {}",
            m.body()
        );
        assert!(m.body().contains("http://guardrail.test:8080/findings/"));
    }
    let recipients: HashSet<Vec<String>> = mails.iter().map(|m| m.to.clone()).collect();
    assert!(
        recipients.contains(&vec!["security@example.test".to_string()])
            && recipients.contains(&vec![
                "platform@example.test".to_string(),
                "lead@example.test".to_string()
            ]),
        "{recipients:?}"
    );

    // STARTTLS is required by default: nothing was sent in clear, and the outbox says why.
    let failed = db
        .run(&["outbox", "--status", "failed", "--format", "json"])
        .json();
    let strict: Vec<&Value> = failed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["route"] == "mail-strict")
        .collect();
    assert_eq!(strict.len(), top.len(), "{failed}");
    for r in &strict {
        let e = r["last_error"].as_str().unwrap();
        assert!(e.contains("127.0.0.1") && e.contains("will retry"), "{e}");
    }

    // The digest route: after its window, one message (or two, if the sweep
    // straddled two windows) listing every opened finding.
    std::thread::sleep(Duration::from_millis(2200));
    dispatch(&db, &cfg);
    let digests: Vec<_> = relay.received().into_iter().filter(is_digest).collect();
    assert!(
        (1..=2).contains(&digests.len()),
        "{} digests",
        digests.len()
    );
    let lines: usize = digests
        .iter()
        .map(|m| m.body().lines().filter(|l| l.starts_with("- ")).count())
        .sum();
    assert_eq!(lines, all_open.len());
    assert_eq!(
        relay.received().len(),
        mails.len() + digests.len(),
        "only per-finding messages and digests"
    );
}

#[test]
fn a_refused_recipient_is_given_up_loudly_and_a_bad_email_route_is_a_clear_error() {
    let relay = SmtpReceiver::start();
    *relay.refuse_rcpt.lock().unwrap() = Some("550 5.1.1 no such mailbox".into());
    let cfg = config(&email_route(
        "mail",
        relay.port,
        "tls = \"none\"\nmin_score = 9",
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    let d = dispatch(&db, &cfg);
    assert!(d["dispatch"]["gave_up"].as_u64().unwrap() > 0, "{d}");
    let gave_up = db
        .run(&["outbox", "--status", "gave_up", "--format", "json"])
        .json();
    let e = gave_up[0]["last_error"].as_str().unwrap();
    assert!(
        e.contains("no such mailbox") && e.contains("not retried"),
        "{e}"
    );
    assert!(relay.received().is_empty());

    let cfg = config("[[notify.routes]]\nname = \"m\"\nchannel = \"email\"\nsmtp_host = \"127.0.0.1\"\nfrom = \"not an address\"\nto = [\"a@example.test\"]\n");
    let r = db.run(&["--config", &cfg.path, "notify", "dispatch"]);
    assert!(
        r.stderr
            .contains("notify.routes \"m\": from \"not an address\" is not an e-mail address"),
        "{}",
        r.stderr
    );
    let cfg = config("[[notify.routes]]\nname = \"m\"\nchannel = \"email\"\nsmtp_hots = \"x\"\n");
    let r = db.run(&["--config", &cfg.path, "notify", "dispatch"]);
    assert!(
        r.stderr.contains("notify.routes \"m\"") && r.stderr.contains("smtp_hots"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_digest_for_several_owners_goes_to_each_owners_channel() {
    let slack = Receiver::start(Receiver::ok_json(SLACK_OK));
    let cfg = config(&format!(
        "[[notify.routes]]\nname = \"daily\"\nchannel = \"slack\"\ndigest_seconds = 2\nevents = [\"opened\"]\n\
         slack_channel = \"#security\"\nowner_tag = \"owner\"\nowner_channels = {{ platform = \"#platform-alerts\" }}\n\
         slack_token = {{ env = \"SLACK_TOKEN_T\" }}\nslack_api_url = \"{}/api\"\n",
        slack.url
    ));
    let db = common::sqlite();
    sweep(&db, &cfg, "day1");
    std::thread::sleep(Duration::from_millis(2200));
    dispatch(&db, &cfg);
    let channels: HashSet<String> = slack
        .received()
        .iter()
        .map(|m| m.json()["channel"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        channels.contains("#security") && channels.contains("#platform-alerts"),
        "one digest per owner's channel, not all in the first row's: {channels:?}"
    );
}
