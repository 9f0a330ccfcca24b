//! The AWS API watchers against moto (a real AWS emulator in server mode on loopback),
//! through the real binary. moto is installed by scripts/moto.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Moto {
    child: Child,
    url: String,
    python: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    let out = Command::new(common::repo().join("scripts/moto"))
        .output()
        .expect("scripts/moto");
    assert!(
        out.status.success(),
        "installing moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let python = server.replace("moto_server", "python");
    let port = free_port();
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        python,
    }
}

/// AWS environment for both boto3 and guardrail: fake credentials, and no instance
/// metadata lookups (nothing may leave loopback).
fn aws_env(m: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_ENDPOINT_URL", m.url.clone()),
    ]
}

/// Fake credentials and no profile or instance-metadata lookups, for runs against a
/// closed port.
const OFFLINE: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sweep --aws` against `endpoint` with offline credentials.
fn sweep_offline(db: &common::Db, endpoint: &str) -> common::Run {
    db.run_env(
        &[
            "sweep",
            "--aws",
            "--format",
            "json",
            "--endpoint-url",
            endpoint,
        ],
        OFFLINE,
    )
}

fn boto(m: &Moto, script: &str) {
    let prelude = "import boto3, json\niam = boto3.client('iam')\nec2 = boto3.client('ec2')\n";
    let out = Command::new(&m.python)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .envs(aws_env(m))
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "seeding failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sweep(db: &common::Db, m: &Moto) -> Value {
    let env = aws_env(m);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = db.run_env(
        &[
            "sweep",
            "--aws",
            "--regions",
            "us-east-1",
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    r.json()
}

fn open(db: &common::Db, rule: &str) -> Vec<String> {
    db.run(&["findings", "--rule", rule, "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["resource"]["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn moto_account_is_swept_judged_and_its_changes_recorded() {
    let m = moto();
    boto(
        &m,
        r#"
iam.create_role(RoleName='open-role', AssumeRolePolicyDocument=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'AWS':'*'},'Action':'sts:AssumeRole'}]}))
iam.create_user(UserName='admin-user')
iam.put_user_policy(UserName='admin-user', PolicyName='everything', PolicyDocument=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Action':'*','Resource':'*'}]}))
iam.create_user(UserName='reader')
vpc = ec2.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']
sg = ec2.create_security_group(GroupName='ssh-open', Description='x', VpcId=vpc)['GroupId']
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{'IpProtocol':'tcp','FromPort':22,'ToPort':22,'IpRanges':[{'CidrIp':'0.0.0.0/0'}]}])
"#,
    );
    let db = common::sqlite();
    let s = sweep(&db, &m);
    assert_eq!(s["errors"], 0, "{s}");
    assert!(s["created"].as_u64().unwrap() >= 5, "{s}");
    // The same rules fire on API items as on AWS Config items.
    assert!(open(&db, "iam/role_trust_anyone").contains(&"open-role".to_owned()));
    assert!(open(&db, "iam/policy_full_admin").contains(&"admin-user".to_owned()));
    assert!(open(&db, "ec2/sg_admin_ports_open").contains(&"ssh-open".to_owned()));

    // Nothing changed: nothing recorded.
    let s = sweep(&db, &m);
    assert_eq!(
        (
            s["created"].as_u64(),
            s["modified"].as_u64(),
            s["deleted"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{s}"
    );

    boto(
        &m,
        r#"
sg = [g for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'] == 'ssh-open'][0]['GroupId']
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{'IpProtocol':'tcp','FromPort':3389,'ToPort':3389,'IpRanges':[{'CidrIp':'0.0.0.0/0'}]}])
iam.delete_user_policy(UserName='admin-user', PolicyName='everything')
iam.delete_user(UserName='admin-user')
"#,
    );
    let s = sweep(&db, &m);
    assert_eq!(
        (
            s["created"].as_u64(),
            s["modified"].as_u64(),
            s["deleted"].as_u64()
        ),
        (Some(0), Some(1), Some(1)),
        "exactly the two changes: {s}"
    );
    let diff = db.run(&["diff", "ssh-open", "--format", "json"]).json();
    let changes = diff["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["new"]["fromPort"] == 3389),
        "{changes:?}"
    );
    assert!(
        !open(&db, "iam/policy_full_admin").contains(&"admin-user".to_owned()),
        "deleted user's finding is fixed"
    );
    assert!(
        open(&db, "ec2/sg_admin_ports_open").len() >= 2,
        "RDP now open too"
    );
}

#[test]
fn an_unreachable_endpoint_deletes_nothing() {
    let m = moto();
    boto(&m, "iam.create_user(UserName='keeper')\n");
    let db = common::sqlite();
    sweep(&db, &m);
    let before = db
        .run(&["items", "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .len();
    // The endpoint goes away: the sweep fails to identify the account or to list, and
    // records that, but marks nothing deleted.
    let port = free_port();
    let r = sweep_offline(&db, &format!("http://127.0.0.1:{port}"));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let s = r.json();
    assert_eq!(s["deleted"], 0);
    assert!(
        s["error_details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--endpoint-url"),
        "{s}"
    );
    assert_eq!(
        db.run(&["items", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        before
    );
}

/// The binary links two rustls crypto providers (ring for notifications, aws-lc-rs in
/// the AWS SDK); without an explicit process default the first handshake panics
/// (DESIGN §6). Both TLS paths must fail cleanly against a closed loopback port.
#[test]
fn both_tls_stacks_fail_cleanly_instead_of_panicking() {
    let db = common::sqlite();
    let port = free_port();
    let r = sweep_offline(&db, &format!("https://127.0.0.1:{port}"));
    assert_eq!(r.code, 2, "AWS SDK over TLS: {}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, format!("[[notify.routes]]\nname = \"w\"\nchannel = \"webhook\"\nurl = \"https://127.0.0.1:{port}/x\"\nsecret = {{ env = \"S\" }}\n")).unwrap();
    let r = db.run_env(
        &[
            "--config",
            &cfg.display().to_string(),
            "notify",
            "test",
            "w",
        ],
        &[("S", "secret")],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("cannot reach 127.0.0.1") && !r.stderr.contains("panicked"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}
