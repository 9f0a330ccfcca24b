//! Helpers for end-to-end tests: run the real binary against a real database.
#![allow(dead_code)]

pub mod receiver;
pub mod smtp;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Command;

use guardrail_storage::testing::PgTestDb;
use serde_json::Value;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A database for one test: a temporary SQLite file or a throw-away PostgreSQL database.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgTestDb>,
}

pub fn sqlite() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/guardrail.db", dir.path().display());
    Db {
        url,
        _dir: Some(dir),
        _pg: None,
    }
}

pub fn postgres() -> Option<Db> {
    let pg = PgTestDb::create_or_skip("gr_e2e")?;
    Some(Db {
        url: pg.url.clone(),
        _dir: None,
        _pg: Some(pg),
    })
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn examples(day: &str) -> PathBuf {
    repo().join("examples/aws-config").join(day)
}

impl Db {
    /// A database at a URL the test manages itself.
    pub fn at(url: &str) -> Db {
        Db {
            url: url.to_owned(),
            _dir: None,
            _pg: None,
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_guardrail"))
            .arg("--database")
            .arg(&self.url)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("GUARDRAIL_DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
            .expect("run guardrail");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A development tool built from `examples/` (cargo test builds examples before
    /// running tests), beside the binary: `target/<profile>/examples/<name>`.
    pub fn run_example(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let bin = Path::new(env!("CARGO_BIN_EXE_guardrail"));
        let example = bin
            .parent()
            .expect("binary directory")
            .join("examples")
            .join(name);
        let out = Command::new(&example)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", example.display()));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `sweep --source PATH --format json`, returning the summary.
    pub fn sweep(&self, source: &Path) -> (i32, Value) {
        let r = self.run(&[
            "sweep",
            "--source",
            &source.display().to_string(),
            "--format",
            "json",
        ]);
        assert!(
            r.code == 0 || r.code == 2,
            "sweep failed ({}): {}",
            r.code,
            r.stderr
        );
        (r.code, r.json())
    }

    pub fn revisions(&self) -> i64 {
        self.run(&["status", "--format", "json"]).json()["revisions"]
            .as_i64()
            .expect("revisions")
    }
}

/// Copies a directory tree (the examples) so a test can break files in it.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir(from) {
        let rel = entry.strip_prefix(from).expect("prefix");
        let dest = to.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&entry, &dest).expect("copy");
        }
    }
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&out[i])
                .expect("read_dir")
                .map(|e| e.expect("entry").path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// The snapshot file of one account and region under `root`.
pub fn snapshot_file(root: &Path, account: &str, region: &str) -> PathBuf {
    walkdir(root)
        .into_iter()
        .find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&format!("{account}_Config_{region}_ConfigSnapshot_"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no snapshot for {account}/{region} under {}",
                root.display()
            )
        })
}

/// A child process killed when the test ends, however it ends.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first line from a process's output that contains `fragment`.
pub fn wait_for(
    lines: &std::sync::mpsc::Receiver<String>,
    fragment: &str,
    within: std::time::Duration,
) -> String {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(std::time::Duration::from_millis(200)) {
            if line.contains(fragment) {
                return line;
            }
        }
    }
    panic!("the process never printed {fragment:?}");
}

const ACCOUNT: &str = "111111111111";
const REGION: &str = "eu-west-1";

/// One snapshot of `n` items: security groups open to the world on SSH (every other
/// one), and buckets without encryption, so the audit opens thousands of findings.
pub fn write_snapshot(dir: &Path, n: usize) {
    let folder = dir.join(format!(
        "AWSLogs/{ACCOUNT}/Config/{REGION}/2026/11/20/ConfigSnapshot"
    ));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(format!(
        "{ACCOUNT}_Config_{REGION}_ConfigSnapshot_20261120T060000Z_00000000-0000-4000-8000-000000000001.json"
    ));
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    std::io::Write::write_fmt(
        &mut out,
        format_args!(
            "{{\"fileVersion\":\"1.0\",\"configSnapshotId\":\"crash\",\"configurationItems\":["
        ),
    )
    .unwrap();
    for i in 0..n {
        if i > 0 {
            out.write_all(b",").unwrap();
        }
        let (rtype, id, configuration, supplementary) = if i % 2 == 0 {
            let id = format!("sg-{i:017x}");
            let cidr = if i % 4 == 0 {
                "0.0.0.0/0"
            } else {
                "10.0.0.0/8"
            };
            (
                "AWS::EC2::SecurityGroup",
                id.clone(),
                serde_json::json!({
                    "groupId": id, "groupName": format!("sg-{i}"), "vpcId": "vpc-1",
                    "ipPermissions": [{"fromPort": 22, "toPort": 22, "ipProtocol": "tcp",
                        "ipv4Ranges": [{"cidrIp": cidr}], "ipv6Ranges": [], "prefixListIds": [], "userIdGroupPairs": []}],
                    "ipPermissionsEgress": []
                }),
                serde_json::json!({}),
            )
        } else {
            let name = format!("bucket-{i}");
            (
                "AWS::S3::Bucket",
                name.clone(),
                serde_json::json!({"name": name}),
                serde_json::json!({"BucketVersioningConfiguration": {"status": "Off"}}),
            )
        };
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "version": "1.3", "accountId": ACCOUNT,
                "configurationItemCaptureTime": "2026-11-20T05:00:00.000Z",
                "configurationItemStatus": "OK", "configurationStateId": format!("{}", 1_700_000_000_000u64 + i as u64),
                "arn": format!("arn:aws:test:::{id}"), "resourceType": rtype, "resourceId": id,
                "resourceName": id, "awsRegion": REGION, "tags": {}, "relationships": [],
                "configuration": configuration, "supplementaryConfiguration": supplementary
            }),
        )
        .unwrap();
    }
    out.write_all(b"]}").unwrap();
}
