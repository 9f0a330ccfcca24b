//! Every route, in-process against a seeded SQLite database: unauthenticated → 401
//! (or the login redirect), a role too low → 403, the right role → data; CSRF on
//! browser-credential posts; proxy headers only from trusted peers; the OpenAPI file
//! matches the router.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{TimeZone, Utc};
use guardrail_model::{Actor, Cause, Collector, Coverage, ItemKey, Listing, Observation};
use guardrail_server::{route_table, AppState, Metrics, ServerSettings, Verb};
use guardrail_storage::{ItemAudit, NewFinding, Role, RuleResult, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    finding_id: i64,
    item_id: i64,
    sweep_id: i64,
    tokens: BTreeMap<Role, String>,
}

fn key(id: &str) -> ItemKey {
    ItemKey {
        account: "111111111111".into(),
        region: "us-east-1".into(),
        resource_type: "AWS::EC2::SecurityGroup".into(),
        resource_id: id.into(),
    }
}

fn sweep(store: &Store, day: u32, ports: &[i64]) {
    let at = Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap();
    let mut ing = store.begin_sweep("local:test").unwrap();
    // The second day's change has a known author (markup in the session name, which
    // every page must escape).
    let actor = (day == 2).then(|| Actor {
        principal: Some("arn:aws:sts::111111111111:assumed-role/deploy/<i>alice</i>".into()),
        session_issuer: Some("arn:aws:iam::111111111111:role/deploy".into()),
        source_ip: Some("203.0.113.7".into()),
        event_name: Some("ec2:AuthorizeSecurityGroupIngress".into()),
        ..Actor::default()
    });
    ing.begin_listing(Listing {
        origin: "test".into(),
        cause: Cause::Sweep,
        observed_at: at,
        actor,
    })
    .unwrap();
    for (n, id) in ["sg-web", "sg-db", "sg-ops"].iter().enumerate() {
        ing.observe(Observation {
            key: key(id),
            arn: Some(format!(
                "arn:aws:ec2:us-east-1:111111111111:security-group/{id}"
            )),
            name: Some(format!("{id}-<b>name</b>")),
            tags: BTreeMap::from([("owner".to_string(), format!("team{n}"))]),
            config: json!({ "ports": ports }),
            ephemeral: json!({}),
            observed_at: at,
            unreadable: Vec::new(),
        })
        .unwrap();
    }
    ing.end_listing(Coverage::Nothing).unwrap();
    ing.finish(None).unwrap();
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/g.db", dir.path().display())).unwrap();
    sweep(&store, 1, &[443]);
    sweep(&store, 2, &[22, 443]);
    let mut audits = Vec::new();
    for (n, id) in ["sg-web", "sg-db", "sg-ops"].iter().enumerate() {
        let item = store.resolve_item(id).unwrap();
        let rev = store
            .revision_by_version(item.id, item.version)
            .unwrap()
            .unwrap();
        audits.push(ItemAudit {
            item_id: item.id,
            key: key(id),
            revision_id: Some(rev.id),
            audited_as: None,
            results: vec![(
                "ec2/ssh_open".into(),
                RuleResult::Findings(vec![NewFinding {
                    key: "22".into(),
                    kind: "state".into(),
                    title: format!("SSH open to the world on {id}"),
                    score: 5 + n as i64,
                    rule_score: 5,
                    severity: "high".into(),
                    detail: "port 22 <script>alert(1)</script>".into(),
                    remediation: "close it".into(),
                    suppressed_by: None,
                    controls: String::new(),
                }]),
            )],
        });
    }
    store.record_audits(&audits, Utc::now()).unwrap();
    store
        .record_rule_error("ec2/broken", "does not compile", Utc::now())
        .unwrap();
    let item = store.resolve_item("sg-web").unwrap();
    let finding_id = store
        .findings_page(&Default::default())
        .unwrap()
        .rows
        .into_iter()
        .find(|(_, i)| i.id == item.id)
        .unwrap()
        .0
        .id;
    let mut tokens = BTreeMap::new();
    for role in Role::ALL {
        let (_, secret) = store
            .create_token(&format!("{role}-token"), role, Utc::now())
            .unwrap();
        tokens.insert(role, secret);
    }
    store
        .create_token("victim", Role::Viewer, Utc::now())
        .unwrap();
    let sweep_id = store.sweeps_page(None, 1).unwrap()[0].id;
    Fixture {
        _dir: dir,
        store,
        finding_id,
        item_id: item.id,
        sweep_id,
        tokens,
    }
}

fn app(fx: &Fixture, settings: ServerSettings) -> Router {
    let state = AppState::new(fx.store.clone(), settings, Arc::new(Metrics::default()))
        .unwrap()
        .with_compliance(Arc::new(|_store, framework| {
            if framework != "cis-aws-3.0" {
                return Err(format!("unknown framework {framework:?}"));
            }
            Ok(guardrail_server::ComplianceView {
                framework: framework.to_owned(),
                name: "CIS".into(),
                complete_catalogue: true,
                controls: vec![guardrail_server::ControlView {
                    id: "5.2".into(),
                    title: "SSH <closed>".into(),
                    status: "not covered".into(),
                    automated: true,
                    rules: Vec::new(),
                    judged: 0,
                    failing: 0,
                    passing: 0,
                    failing_resources: vec!["<script>".into()],
                }],
            })
        }));
    guardrail_server::router(state)
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn concrete(fx: &Fixture, path: &str) -> String {
    let id = if path.contains("/items/") {
        fx.item_id
    } else if path.contains("/sweeps/") {
        fx.sweep_id
    } else {
        fx.finding_id
    };
    path.replace("{id}", &id.to_string())
        .replace("{name}", "victim")
}

/// A request for a route, with the body a caller of that route would send.
fn request(fx: &Fixture, verb: Verb, path: &str, bearer: Option<&str>) -> Request<Body> {
    let uri = concrete(fx, path);
    let method = match verb {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
        Verb::Delete => Method::DELETE,
    };
    let mut b = Request::builder().method(method).uri(&uri);
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match (verb, path) {
        (Verb::Post, "/api/v1/findings/{id}/justify") => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            json!({"reason": "accepted: bastion", "until": "2099-01-01"}).to_string()
        }
        (Verb::Post, "/api/v1/tokens") => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            json!({"name": "made-by-test", "role": "viewer"}).to_string()
        }
        (Verb::Post, p) if !p.starts_with("/api/") => {
            b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            "reason=accepted+via+form".to_owned()
        }
        _ => String::new(),
    };
    b.body(Body::from(body)).unwrap()
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

fn below(role: Role) -> Option<Role> {
    match role {
        Role::Viewer => None,
        Role::Triager => Some(Role::Viewer),
        Role::Admin => Some(Role::Triager),
    }
}

#[tokio::test]
async fn openapi_documents_exactly_the_routes() {
    let spec: Value =
        serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json is JSON");
    let mut documented = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let role = op["x-role"].as_str().map(str::to_owned);
            documented.insert((method.to_uppercase(), path.clone(), role));
        }
    }
    let routed: BTreeSet<_> = route_table()
        .into_iter()
        .map(|r| {
            (
                r.verb.as_str().to_owned(),
                r.path.to_owned(),
                r.role.map(|x| x.to_string()),
            )
        })
        .collect();
    assert_eq!(
        documented, routed,
        "server/openapi.json and the router disagree (method, path, x-role)"
    );
}

#[tokio::test]
async fn every_route_refuses_the_unauthenticated() {
    let fx = fixture();
    let app = app(&fx, ServerSettings::default());
    for r in route_table() {
        let resp = send(&app, request(&fx, r.verb, r.path, None)).await;
        if r.role.is_none() {
            assert!(
                !matches!(
                    resp.status,
                    StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND
                ),
                "{:?} {} is public: {}",
                r.verb,
                r.path,
                resp.status
            );
            continue;
        }
        if is_api(r.path) {
            assert_eq!(
                resp.status,
                StatusCode::UNAUTHORIZED,
                "{:?} {}",
                r.verb,
                r.path
            );
        } else {
            assert_eq!(
                resp.status,
                StatusCode::SEE_OTHER,
                "{:?} {}",
                r.verb,
                r.path
            );
            assert_eq!(resp.location(), "/login", "{:?} {}", r.verb, r.path);
        }
        // A wrong token is refused too, never treated as anonymous-but-allowed.
        let resp = send(&app, request(&fx, r.verb, r.path, Some("grd_0000"))).await;
        assert_eq!(
            resp.status,
            StatusCode::UNAUTHORIZED,
            "bad token on {:?} {}",
            r.verb,
            r.path
        );
    }
    // Unknown paths are not a way around authentication.
    let resp = send(
        &app,
        Request::get("/api/v1/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    let resp = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((resp.status, resp.body.as_str()), (StatusCode::OK, "ok\n"));
}

#[tokio::test]
async fn each_route_needs_its_role_and_gives_data_to_it() {
    let fx = fixture();
    let app = app(&fx, ServerSettings::default());
    for r in route_table() {
        let Some(role) = r.role else { continue };
        if let Some(low) = below(role) {
            let resp = send(&app, request(&fx, r.verb, r.path, Some(&fx.tokens[&low]))).await;
            assert_eq!(
                resp.status,
                StatusCode::FORBIDDEN,
                "{low} on {:?} {}",
                r.verb,
                r.path
            );
        }
        let resp = send(&app, request(&fx, r.verb, r.path, Some(&fx.tokens[&role]))).await;
        let expected = match (r.verb, r.path) {
            (Verb::Post, "/api/v1/tokens") => StatusCode::CREATED,
            (Verb::Delete, _) => StatusCode::NO_CONTENT,
            (Verb::Post, p) if !p.starts_with("/api/") => StatusCode::SEE_OTHER,
            _ => StatusCode::OK,
        };
        assert_eq!(
            resp.status, expected,
            "{role} on {:?} {}: {}",
            r.verb, r.path, resp.body
        );
        if is_api(r.path) && r.path != "/metrics" && resp.status == StatusCode::OK {
            let v = resp.json();
            assert!(v.is_object() || v.is_array(), "{}", r.path);
        }
    }
    // The justifications above were recorded under the caller's name.
    let events = fx.store.finding_events(fx.finding_id).unwrap();
    let actors: Vec<_> = events.iter().filter_map(|e| e.actor.clone()).collect();
    assert!(actors.iter().all(|a| a == "triager-token"), "{actors:?}");
    assert_eq!(
        actors.len(),
        4,
        "justify, unjustify by API and by form: {actors:?}"
    );
    assert!(fx
        .store
        .verify_token(&fx.tokens[&Role::Admin], Utc::now())
        .unwrap()
        .is_some());
    assert!(fx
        .store
        .tokens()
        .unwrap()
        .iter()
        .any(|t| t.name == "victim" && t.revoked_at.is_some()));
}

#[tokio::test]
async fn api_data_is_right() {
    let fx = fixture();
    let app = app(&fx, ServerSettings::default());
    let viewer = fx.tokens[&Role::Viewer].clone();
    let get = |uri: String| {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {viewer}"))
            .body(Body::empty())
            .unwrap()
    };
    // Pages of one follow the cursor through all three findings, highest score first.
    let mut scores = Vec::new();
    let mut uri = "/api/v1/findings?limit=1".to_owned();
    loop {
        let v = send(&app, get(uri.clone())).await.json();
        scores.extend(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["score"].as_i64().unwrap()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/findings?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(scores, vec![7, 6, 5]);
    let v = send(&app, get("/api/v1/findings?owner=team1".into()))
        .await
        .json();
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
    let bad = send(&app, get("/api/v1/findings?cursor=zz".into())).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].as_str().unwrap().contains("cursor"));

    let v = send(&app, get(format!("/api/v1/findings/{}", fx.finding_id)))
        .await
        .json();
    let changes = v["opening_diff"]["changes"].as_array().unwrap();
    assert!(!changes.is_empty(), "{v}");
    assert_eq!(v["opening_diff"]["to"], 2);
    assert_eq!(v["item"]["tags"]["owner"], "team0");

    let v = send(&app, get("/api/v1/summary".into())).await.json();
    assert_eq!(v["open"], 3);
    assert_eq!(v["by_owner"].as_array().unwrap().len(), 3);

    let v = send(&app, get("/api/v1/items?tag=owner%3Dteam2".into()))
        .await
        .json();
    assert_eq!(v["items"][0]["resource_id"], "sg-ops");
    let v = send(
        &app,
        get(format!("/api/v1/items/{}/revisions?limit=1", fx.item_id)),
    )
    .await
    .json();
    assert_eq!(v["revisions"][0]["version"], 2);
    assert_eq!(v["next_before"], 2);
    let v = send(
        &app,
        get(format!("/api/v1/items/{}/diff?from=1&to=2", fx.item_id)),
    )
    .await
    .json();
    assert_eq!(v["changes"].as_array().unwrap().len(), 1, "{v}");
    let bad = send(
        &app,
        get(format!("/api/v1/items/{}/diff?from=2&to=1", fx.item_id)),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let missing = send(&app, get("/api/v1/findings/999999".into())).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let csv = send(&app, get("/api/v1/export?format=csv".into())).await;
    assert_eq!(csv.body.lines().count(), 4, "{}", csv.body);
    assert!(csv.body.starts_with("id,state,score"));
    let ocsf: Value = serde_json::from_str(
        &send(&app, get("/api/v1/export?format=ocsf".into()))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(ocsf.as_array().unwrap().len(), 3);
    assert_eq!(ocsf[0]["class_uid"], 2003);
    let nd = send(&app, get("/api/v1/export?format=ocsf-ndjson".into())).await;
    assert_eq!(nd.status, StatusCode::OK);
    let lines: Vec<Value> = nd
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        ocsf.as_array().unwrap().clone(),
        "same records, one per line"
    );
    let all: Value = serde_json::from_str(
        &send(&app, get("/api/v1/export?state=all".into()))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);

    let m = send(&app, get("/metrics".into())).await.body;
    assert!(
        m.contains("guardrail_findings{state=\"open\",severity=\"high\"} 3"),
        "{m}"
    );
    assert!(m.contains("guardrail_rule_errors 1"), "{m}");
    assert!(
        m.contains("guardrail_sweep_last_items{source=\"local:test\""),
        "{m}"
    );

    // The viewer cannot justify, whatever it sends.
    let r = send(
        &app,
        Request::post(format!("/api/v1/findings/{}/justify", fx.finding_id))
            .header(header::AUTHORIZATION, format!("Bearer {viewer}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"reason":"x"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn browser_login_session_csrf_and_logout() {
    let fx = fixture();
    let app = app(&fx, ServerSettings::default());
    let login = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("id=\"token\"") && login.body.contains("id=\"login\""));
    let pre = login.cookie("guardrail_login").expect("pre-session cookie");
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let pre_value = pre.split(';').next().unwrap().to_owned();
    let csrf = csrf_in(&login.body);
    let token = fx.tokens[&Role::Triager].clone();
    let post = |cookie: &str, body: String| {
        Request::post("/login")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    // Without the double-submit value, and with a wrong one: refused.
    let r = send(&app, post(&pre_value, format!("token={token}"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, post(&pre_value, format!("token={token}&csrf=beef"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, post("", format!("token={token}&csrf={csrf}"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        post(&pre_value, format!("token=grd_wrong&csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("login-error"));
    let r = send(&app, post(&pre_value, format!("token={token}&csrf={csrf}"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let session = r.cookie("guardrail_session").expect("session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Path=/"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain http by default");
    let cookie = session.split(';').next().unwrap().to_owned();

    let page = |uri: String| {
        Request::get(uri)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };
    let dash = send(&app, page("/".into())).await;
    assert_eq!(dash.status, StatusCode::OK, "{}", dash.body);
    assert!(dash.body.contains("SSH open to the world on sg-ops"));
    assert!(dash.body.contains("id=\"sweep-health\""));
    for h in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
    ] {
        assert!(dash.headers.contains_key(h), "{h}");
    }
    assert_eq!(dash.headers[header::CACHE_CONTROL], "no-store");
    let list = send(&app, page("/findings?state=all&sort=first_seen".into())).await;
    assert!(
        list.body.contains("<table class=\"findings\">")
            && list.body.contains("tr class=\"finding")
    );
    let item = send(&app, page(format!("/items/{}?from=1&to=2", fx.item_id))).await;
    assert!(item.body.contains("id=\"side-by-side\""), "{}", item.body);
    // Everything is escaped: the item's name and the finding's detail carry markup.
    assert!(
        item.body.contains("&#60;b&#62;name&#60;/b&#62;") && !item.body.contains("<b>name</b>"),
        "{}",
        item.body
    );
    // Who made each change, escaped.
    assert!(
        item.body.contains("assumed-role/deploy/&#60;i&#62;alice&#60;/i&#62; (session of arn:aws:iam::111111111111:role/deploy) from 203.0.113.7"),
        "{}",
        item.body
    );
    let detail = send(&app, page(format!("/findings/{}", fx.finding_id))).await;
    assert!(detail.body.contains("&#60;script&#62;") && !detail.body.contains("<script>"));
    assert!(
        detail.body.contains("Changed by <strong>arn:aws:sts::111111111111:assumed-role/deploy/&#60;i&#62;alice&#60;/i&#62;")
            && detail.body.contains("(ec2:AuthorizeSecurityGroupIngress)"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("id=\"justify-reason\""));
    let csrf = csrf_in(&detail.body);

    let justify = |body: String| {
        Request::post(format!("/findings/{}/justify", fx.finding_id))
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let r = send(&app, justify("reason=no+token".into())).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a CSRF-less form post is refused"
    );
    let r = send(&app, justify("reason=wrong+token&csrf=00ff".into())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        fx.store.finding(fx.finding_id).unwrap().unwrap().state,
        "open"
    );
    // A form the server refuses comes back with why and with what was typed.
    let r = send(
        &app,
        justify(format!(
            "reason=bastion+%3Cb%3Ehost%3C%2Fb%3E&until=next+tuesday&csrf={csrf}"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("id=\"justify-error\""), "{}", r.body);
    assert!(
        r.body
            .contains("bastion &#60;b&#62;host&#60;/b&#62;</textarea>"),
        "the typed reason is kept (escaped): {}",
        r.body
    );
    assert!(r.body.contains("value=\"next tuesday\""), "{}", r.body);
    assert_eq!(
        fx.store.finding(fx.finding_id).unwrap().unwrap().state,
        "open"
    );
    let r = send(
        &app,
        justify(format!("reason=bastion+host&until=2099-01-01&csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let f = fx.store.finding(fx.finding_id).unwrap().unwrap();
    assert_eq!(f.state, "justified");
    assert_eq!(f.justified_by.as_deref(), Some("triager-token"));
    // A JSON post with the session cookie needs the CSRF header.
    let r = send(
        &app,
        Request::post(format!("/api/v1/findings/{}/unjustify", fx.finding_id))
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        Request::post(format!("/api/v1/findings/{}/unjustify", fx.finding_id))
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Logging out needs the token too; afterwards the cookie is worthless.
    let logout = |body: String| {
        Request::post("/logout")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    assert_eq!(
        send(&app, logout(String::new())).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, logout(format!("csrf={csrf}"))).await.status,
        StatusCode::SEE_OTHER
    );
    let after = send(&app, page("/".into())).await;
    assert_eq!(
        (after.status, after.location()),
        (StatusCode::SEE_OTHER, "/login")
    );

    // Revoking the token ends sessions made from it.
    let r = send(
        &app,
        post(
            &pre_value,
            format!("token={token}&csrf={}", csrf_in(&login.body)),
        ),
    )
    .await;
    let cookie2 = r
        .cookie("guardrail_session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    fx.store.revoke_token("triager-token", Utc::now()).unwrap();
    let r = send(
        &app,
        Request::get("/")
            .header(header::COOKIE, cookie2)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn proxy_headers_count_only_from_trusted_peers() {
    let fx = fixture();
    let settings = ServerSettings {
        trusted_proxies: vec!["10.0.0.1".into()],
        proxy_user_header: Some("X-Forwarded-User".into()),
        proxy_role_header: Some("X-Forwarded-Role".into()),
        public_url: Some("https://guardrail.example".into()),
        ..Default::default()
    };
    let app = app(&fx, settings);
    let from = |peer: &str, uri: &str, role: Option<&str>| {
        let mut b = Request::get(uri).header("X-Forwarded-User", "carol@example.com");
        if let Some(r) = role {
            b = b.header("X-Forwarded-Role", r);
        }
        let mut req = b.body(Body::empty()).unwrap();
        let addr: SocketAddr = format!("{peer}:443").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        req
    };
    let r = send(&app, from("10.0.0.2", "/", None)).await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/login"),
        "untrusted peer"
    );
    let r = send(&app, from("10.0.0.2", "/api/v1/me", Some("admin"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, from("10.0.0.1", "/", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("carol@example.com (viewer)"));
    let cookie = r
        .cookie("guardrail_session")
        .expect("proxy users get a session for CSRF");
    assert!(
        cookie.contains("Secure"),
        "https public_url makes cookies Secure: {cookie}"
    );
    let r = send(&app, from("10.0.0.1", "/api/v1/tokens", None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "default role is viewer");
    let r = send(&app, from("10.0.0.1", "/api/v1/tokens", Some("admin"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.cookie("guardrail_session").is_none(),
        "API calls through the proxy make no sessions"
    );
    let r = send(&app, from("10.0.0.1", "/", Some("root"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A proxy user's form post still needs the CSRF token.
    let mut req = Request::post(format!("/findings/{}/justify", fx.finding_id))
        .header("X-Forwarded-User", "carol@example.com")
        .header("X-Forwarded-Role", "triager")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("reason=x"))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo("10.0.0.1:443".parse::<SocketAddr>().unwrap()));
    assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);
}

/// The dashboard's counts are kept briefly, but a justification through this server
/// or an audit finished in this process shows in the next answer; a change by
/// another worker waits for the TTL (or this process's next audit).
#[tokio::test]
async fn summary_counts_follow_justifications_and_audits() {
    let fx = fixture();
    let metrics = Arc::new(Metrics::default());
    let state =
        AppState::new(fx.store.clone(), ServerSettings::default(), metrics.clone()).unwrap();
    let app = guardrail_server::router(state);
    let bearer = |role: Role| format!("Bearer {}", fx.tokens[&role]);
    let summary = || {
        Request::get("/api/v1/summary")
            .header(header::AUTHORIZATION, bearer(Role::Viewer))
            .body(Body::empty())
            .unwrap()
    };
    let v = send(&app, summary()).await.json();
    assert_eq!(v["open"], 3);
    assert!(
        v["counts_as_of"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );

    let r = send(
        &app,
        Request::post(format!("/api/v1/findings/{}/justify", fx.finding_id))
            .header(header::AUTHORIZATION, bearer(Role::Triager))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"reason":"accepted"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(send(&app, summary()).await.json()["open"], 2);

    // Another worker justifies one: not seen until something says findings changed.
    let other = guardrail_storage::FindingQuery {
        states: vec![guardrail_model::FindingState::Open],
        ..Default::default()
    };
    let other = fx.store.findings_page(&other).unwrap().rows[0].0.id;
    fx.store
        .justify(other, "elsewhere", "accepted", None, Utc::now())
        .unwrap();
    assert_eq!(send(&app, summary()).await.json()["open"], 2);
    // An audit of this process: counted again before the next answer.
    metrics.record_audit();
    assert_eq!(send(&app, summary()).await.json()["open"], 1);
}

#[tokio::test]
async fn failed_logins_from_one_address_are_rate_limited() {
    let fx = fixture();
    let app = app(&fx, ServerSettings::default());
    let login = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let pre = login.cookie("guardrail_login").unwrap();
    let pre = pre.split(';').next().unwrap().to_owned();
    let csrf = csrf_in(&login.body);
    let from = |ip: [u8; 4], token: &str| {
        let mut r = Request::post("/login")
            .header(header::COOKIE, &pre)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}&csrf={csrf}")))
            .unwrap();
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 40000,
            ))));
        r
    };
    for _ in 0..10 {
        let r = send(&app, from([192, 0, 2, 1], "grd_wrong")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The eleventh try from that address is refused, even with a good token.
    let good = fx.tokens[&Role::Viewer].clone();
    let r = send(&app, from([192, 0, 2, 1], &good)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("too many failed logins"), "{}", r.body);
    // Another address is not affected.
    let r = send(&app, from([192, 0, 2, 2], &good)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_nul_in_a_filter_is_a_bad_request_not_a_server_error() {
    let fx = fixture();
    let app = app(&fx, ServerSettings::default());
    let token = fx.tokens[&Role::Viewer].clone();
    for path in [
        "/api/v1/findings?tag=%00",
        "/findings?owner=a%00b",
        "/api/v1/items?q=%00",
    ] {
        let r = send(
            &app,
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert!(r.body.contains("NUL"), "{path}: {}", r.body);
    }
}
