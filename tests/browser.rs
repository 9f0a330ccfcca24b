//! The triage UI in a real browser: headless Chromium driven through chromedriver
//! (Debian packages, installed by scripts/setup-browser) against `guardrail serve`
//! on the bundled examples. Screenshots of the main pages are written to
//! `<target>/tmp/screenshots/` as test artefacts.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::webdriver::Browser;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

/// Sweeps day 1 and day 2 of the examples and starts `serve` on a free port.
fn serve(db: &common::Db) -> (common::Running, String) {
    for day in ["day1", "day2"] {
        let r = db.run(&[
            "sweep",
            "--source",
            &common::examples(day).display().to_string(),
        ]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("serve.toml");
    std::fs::write(&cfg, "").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args([
            "--database",
            &db.url,
            "--config",
            &cfg.display().to_string(),
        ])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("GUARDRAIL_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut url = None;
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.split("http://").nth(1) {
            url = Some(format!(
                "http://{}",
                rest.split(|c: char| c == '/' || c.is_whitespace())
                    .next()
                    .unwrap_or_default()
            ));
            break;
        }
        assert!(Instant::now() < deadline, "serve did not start");
    }
    // Keep reading: a closed pipe would end the server at its next line of output.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    std::mem::forget(dir);
    (common::Running(child), url.expect("serve printed no URL"))
}

fn token(db: &common::Db, name: &str, role: &str) -> String {
    let r = db.run(&["token", "create", "--name", name, "--role", role]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_owned()
}

fn log_in(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/"));
    assert!(
        b.url().ends_with("/login"),
        "not sent to log in: {}",
        b.url()
    );
    // The login page inlines the stylesheet under a CSP hash; a hash that does not
    // match would leave the page unstyled (the browser refuses the style block).
    assert_eq!(
        b.execute("return getComputedStyle(document.body).backgroundColor"),
        "rgb(247, 248, 250)",
        "the login page is not styled"
    );
    b.screenshot(&screenshots().join("login.png"));
    b.type_into("#token", token);
    b.click("#login");
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.url().ends_with("/login") {
        assert!(Instant::now() < deadline, "login failed: {}", b.page_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn triage_in_a_real_browser() {
    let db = common::sqlite();
    let (_serve, base) = serve(&db);
    let triager = token(&db, "alice", "triager");
    let viewer = token(&db, "victor", "viewer");
    let shots = screenshots();

    let b = Browser::start();
    log_in(&b, &base, &triager);
    let dashboard = b.page_text();
    assert!(
        dashboard.to_lowercase().contains("open"),
        "dashboard: {dashboard}"
    );
    b.screenshot(&shots.join("dashboard.png"));

    // Filter: open critical findings on S3 buckets.
    b.goto(&format!("{base}/findings"));
    b.type_into("#filter-state", "open");
    b.type_into("#filter-type", "AWS::S3::Bucket");
    b.type_into("#filter-rule", "s3/bucket_policy_public");
    b.click("#filter-submit");
    // The click returns before the filtered page replaces this one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.url().contains("rule=s3%2Fbucket_policy_public") {
        assert!(
            Instant::now() < deadline,
            "the filter form did not submit: {}",
            b.url()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rows = b.find_all("table.findings tr.finding");
    assert!(
        !rows.is_empty(),
        "no findings after filtering: {}",
        b.page_text()
    );
    for r in &rows {
        assert!(
            b.text(r).contains("s3/bucket_policy_public"),
            "{}",
            b.text(r)
        );
    }
    b.screenshot(&shots.join("findings.png"));

    // The scratch bucket was made public on day 2: its finding shows that change.
    let listing = b.page_text();
    assert!(listing.contains("eu-scratch"), "{listing}");
    let link = b
        .find_all("table.findings tr.finding td a")
        .into_iter()
        .find(|a| b.text(a).contains("eu-scratch"))
        .expect("a link to the eu-scratch finding");
    let finding_url = {
        b.click_element(&link);
        b.find("#finding-title");
        b.url()
    };
    let page = b.page_text();
    assert!(page.contains("Remediation"), "{page}");
    let diff_rows = b.find_all("table.diff tbody tr");
    assert!(!diff_rows.is_empty(), "no opening diff on {finding_url}");
    assert!(
        diff_rows.iter().any(|r| b.text(r).contains("BucketPolicy")),
        "the diff shows the policy change"
    );
    b.screenshot(&shots.join("finding.png"));

    // Justify it; it leaves the open list and the justification names who.
    b.type_into(
        "#justify-reason",
        "Public scratch data by design; reviewed.",
    );
    b.type_into("#justify-until", "2099-01-01");
    b.click("#justify-submit");
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.text_of("#finding-state").as_deref() != Some("justified") {
        assert!(
            Instant::now() < deadline,
            "not justified: {}",
            b.page_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(b.text(&b.find("#justification")).contains("alice"));
    b.goto(&format!(
        "{base}/findings?state=open&rule=s3/bucket_policy_public"
    ));
    assert!(
        !b.page_text().contains("eu-scratch"),
        "a justified finding left the open list"
    );
    drop(b);

    // A viewer sees the finding but no justify form, and cannot post one.
    let v = Browser::start();
    log_in(&v, &base, &viewer);
    v.goto(&finding_url);
    v.find("#finding-title");
    assert!(
        v.find_all("#justify-form").is_empty(),
        "viewer sees the form"
    );
    assert!(v.find_all("#unjustify-form").is_empty());
    v.goto(&format!("{base}/items"));
    v.screenshot(&shots.join("items.png"));
    let item = v
        .find_all("a")
        .into_iter()
        .find(|a| b_text_is_item(&v, a))
        .expect("an item link");
    v.click_element(&item);
    v.find("body");
    v.screenshot(&shots.join("item.png"));
    assert!(
        std::fs::metadata(shots.join("dashboard.png"))
            .unwrap()
            .len()
            > 1000
    );
}

fn b_text_is_item(b: &Browser, a: &str) -> bool {
    b.attribute(a, "href")
        .is_some_and(|h| h.contains("/items/") && h.len() > "/items/".len())
}
