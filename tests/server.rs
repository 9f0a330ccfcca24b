//! `guardrail serve` end to end: the real binary on a free loopback port, a token made
//! with the CLI, the scheduler sweeping the example deliveries, a config edit picked
//! up without a restart, and a graceful stop on SIGTERM. On both backends.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

struct Http {
    status: u16,
    head: String,
    body: String,
}

/// A minimal HTTP/1.1 client: the test talks to 127.0.0.1 only.
fn http(addr: &str, method: &str, path: &str, token: Option<&str>) -> Http {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Chunked bodies (the streamed export) are not needed by this test.
    Http {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn json(r: &Http) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

fn config(dir: &std::path::Path, days: &[&str]) -> String {
    let mut text = String::from("[server]\nsession_hours = 1\n");
    for day in days {
        text.push_str(&format!(
            "[[sources]]\nname = \"{day}\"\npath = \"{}\"\ninterval_seconds = 3600\n",
            common::examples(day).display()
        ));
    }
    let p = dir.join("guardrail.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn scenario(db: common::Db) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &["day1"]);
    let made = db.run(&["token", "create", "--name", "e2e", "--role", "admin"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let token = made.stdout.trim().to_owned();
    assert!(token.starts_with("grd_"), "{token}");
    let listed = db.run(&["token", "list", "--format", "json"]);
    assert!(
        !listed.stdout.contains(&token),
        "the secret is shown once, never listed"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(["--database", &db.url, "--config", &cfg, "serve"])
        .args(["--listen", "127.0.0.1:0", "--poll", "0.2"])
        .env_remove("GUARDRAIL_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start serve");
    let stdout = child.stdout.take().unwrap();
    let pid = child.id();
    let _running = common::Running(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = common::wait_for(
        &lines,
        "guardrail is serving http://",
        Duration::from_secs(90),
    );
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("address")
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    common::wait_for(&lines, "sweep 1:", Duration::from_secs(90));

    let health = http(&addr, "GET", "/healthz", None);
    assert_eq!(health.status, 200);
    for path in [
        "/api/v1/findings",
        "/api/v1/summary",
        "/metrics",
        "/api/v1/tokens",
    ] {
        assert_eq!(http(&addr, "GET", path, None).status, 401, "{path}");
    }
    let page = http(&addr, "GET", "/", None);
    assert_eq!(page.status, 303);
    assert!(
        page.head.to_lowercase().contains("location: /login"),
        "{}",
        page.head
    );
    assert_eq!(
        http(&addr, "GET", "/api/v1/findings", Some("grd_wrong")).status,
        401
    );

    // Compliance: the rules in use judge the stored items per control; a control no
    // rule implements is "not covered", never "pass".
    assert_eq!(http(&addr, "GET", "/api/v1/compliance", None).status, 401);
    let c = http(&addr, "GET", "/api/v1/compliance", Some(&token));
    assert_eq!(c.status, 200, "{}", c.body);
    let c = json(&c);
    let status = |id: &str| {
        c["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .map(|x| x["status"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(status("5.2"), "fail", "{c}");
    assert_eq!(status("1.1"), "not covered");
    let page = http(&addr, "GET", "/compliance", Some(&token));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"control-5.2\"") && page.body.contains("not covered by any rule")
    );
    let bad = http(
        &addr,
        "GET",
        "/api/v1/compliance?framework=nist",
        Some(&token),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("unknown framework"), "{}", bad.body);

    let findings = http(&addr, "GET", "/api/v1/findings?limit=5", Some(&token));
    assert_eq!(findings.status, 200, "{}", findings.body);
    let v = json(&findings);
    assert_eq!(v["findings"].as_array().unwrap().len(), 5);
    assert!(v["next_cursor"].is_string());
    let summary = json(&http(&addr, "GET", "/api/v1/summary", Some(&token)));
    let open = summary["open"].as_i64().unwrap();
    assert!(open > 10, "{summary}");
    let me = json(&http(&addr, "GET", "/api/v1/me", Some(&token)));
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("e2e"), Some("admin"))
    );
    let metrics = http(&addr, "GET", "/metrics", Some(&token));
    assert!(
        metrics.body.contains("guardrail_sweeps_run_total 1"),
        "{}",
        metrics.body
    );

    // The load client of scripts/load-server walks every page of its mix without an
    // error (ids 1..=40 exist as both items and findings after day 1).
    let load = common::Db::run_example(
        "loadtest",
        &[
            "--url",
            &format!("http://{addr}"),
            "--items",
            "40",
            "--clients",
            "3",
            "--seconds",
            "1",
            "--warmup",
            "0",
            "--format",
            "json",
        ],
        &[("GUARDRAIL_TOKEN", &token)],
    );
    assert_eq!(load.code, 0, "{}{}", load.stdout, load.stderr);
    let report: Value = serde_json::from_str(&load.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    let routes: Vec<&str> = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["requests"].as_u64() > Some(0))
        .filter_map(|r| r["route"].as_str())
        .collect();
    assert_eq!(
        routes.len(),
        7,
        "every route of the mix answered: {routes:?}"
    );
    let refused = common::Db::run_example(
        "loadtest",
        &["--url", "http://10.0.0.1:8080", "--items", "1"],
        &[("GUARDRAIL_TOKEN", &token)],
    );
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("loopback"), "{}", refused.stderr);

    // A new source in the config file is swept without a restart.
    config(dir.path(), &["day1", "day2"]);
    common::wait_for(&lines, "config reloaded", Duration::from_secs(90));
    let line = common::wait_for(&lines, "sweep 2:", Duration::from_secs(90));
    assert!(
        !line.contains(" 0 modified"),
        "day 2 changes things: {line}"
    );
    let sweeps = json(&http(&addr, "GET", "/api/v1/sweeps", Some(&token)));
    assert_eq!(sweeps["health"].as_array().unwrap().len(), 2, "{sweeps}");
    // The sweeps page says when each source is next due (an hour from its sweep).
    let page = http(&addr, "GET", "/sweeps", Some(&token)).body;
    assert!(
        page.contains("Scheduled sources")
            && page.matches("class=\"scheduled-source\"").count() == 2,
        "{page}"
    );

    // An edited source (same name, another path) is due at once, not in an hour.
    let p = dir.path().join("guardrail.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let edited = text.replacen(
        &common::examples("day2").display().to_string(),
        &common::examples("day1").display().to_string(),
        1,
    );
    assert_ne!(edited, text);
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    std::fs::write(&p, edited).unwrap();
    common::wait_for(&lines, "config reloaded", Duration::from_secs(90));
    common::wait_for(&lines, "sweep 3:", Duration::from_secs(90));

    // SIGTERM: a clean stop.
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    common::wait_for(&lines, "stopped", Duration::from_secs(90));
}

#[test]
fn serve_on_sqlite() {
    scenario(common::sqlite());
}

#[test]
fn serve_on_postgres() {
    if let Some(db) = common::postgres() {
        scenario(db);
    }
}
