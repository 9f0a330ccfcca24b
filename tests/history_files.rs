//! AWS Config history files (gzip, several states of one item, out of order, with a
//! deletion) and snapshot items AWS Config stopped recording.

mod common;

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

const ACCOUNT: &str = "111111111111";

fn sg_item(id: &str, captured: &str, ports: &[u16], status: &str) -> Value {
    json!({
        "configurationItemVersion": "1.3",
        "configurationItemCaptureTime": captured,
        "configurationStateId": 1700000000000u64,
        "awsAccountId": ACCOUNT,
        "configurationItemStatus": status,
        "resourceType": "AWS::EC2::SecurityGroup",
        "resourceId": id,
        "resourceName": id,
        "ARN": format!("arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{id}"),
        "awsRegion": "us-east-1",
        "availabilityZone": "Not Applicable",
        "tags": {},
        "relatedEvents": ["a1b2c3"],
        "relationships": [],
        "configuration": if status.starts_with("ResourceDeleted") { Value::Null } else { json!({
            "groupId": id,
            "ipPermissions": ports.iter().map(|p| json!({"fromPort": p, "toPort": p, "ipProtocol": "tcp", "ipRanges": ["0.0.0.0/0"]})).collect::<Vec<_>>()
        })},
        "supplementaryConfiguration": {}
    })
}

fn write_gz(path: &Path, body: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(serde_json::to_string(body).unwrap().as_bytes())
        .unwrap();
    gz.finish().unwrap();
}

#[test]
fn history_file_replays_states_in_capture_order_and_trusts_deletions() {
    let db = common::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let name = format!(
        "{ACCOUNT}_Config_us-east-1_ConfigHistory_AWS::EC2::SecurityGroup_20261120T000000Z_20261120T060000Z_1.json.gz"
    );
    // Deliberately out of order in the file.
    write_gz(
        &dir.path().join("AWSLogs").join(&name),
        &json!({"fileVersion": "1.0", "configurationItems": [
            sg_item("sg-1", "2026-11-20T03:00:00.000Z", &[22, 3389], "OK"),
            sg_item("sg-1", "2026-11-20T01:00:00.000Z", &[22], "ResourceDiscovered"),
            sg_item("sg-2", "2026-11-20T02:00:00.000Z", &[443], "ResourceDiscovered"),
            sg_item("sg-2", "2026-11-20T05:00:00.000Z", &[], "ResourceDeleted"),
        ]}),
    );
    let (code, s) = db.sweep(dir.path());
    assert_eq!(code, 0, "{s}");
    assert_eq!(
        (
            s["created"].as_u64(),
            s["modified"].as_u64(),
            s["deleted"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let h = db.run(&["history", "sg-1", "--format", "json"]).json();
    let revs = h["revisions"].as_array().unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!(revs[0]["cause"], "backfill");
    assert_eq!(revs[0]["observed_at"], "2026-11-20T03:00:00Z");
    assert_eq!(revs[1]["observed_at"], "2026-11-20T01:00:00Z");
    let h = db.run(&["history", "sg-2", "--format", "json"]).json();
    assert_eq!(h["revisions"][0]["change"], "deleted");
    assert_eq!(h["revisions"][0]["observed_at"], "2026-11-20T05:00:00Z");
    // Replaying the same history writes nothing: the latest state is unchanged, the
    // older states and the repeated deletion are stale.
    let (_, again) = db.sweep(dir.path());
    let got = ["created", "modified", "deleted", "unchanged", "stale"]
        .map(|k| again[k].as_u64().unwrap());
    assert_eq!(got, [0, 0, 0, 1, 3], "{again}");
}

#[test]
fn items_no_longer_recorded_are_not_deleted() {
    let db = common::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let snap = |stamp: &str, items: Vec<Value>| {
        let name = format!("{ACCOUNT}_Config_us-east-1_ConfigSnapshot_{stamp}_x.json");
        let path = dir.path().join(stamp).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            serde_json::to_string(&json!({"configurationItems": items})).unwrap(),
        )
        .unwrap();
        dir.path().join(stamp)
    };
    let day1 = snap(
        "20261120T000000Z",
        vec![
            sg_item("sg-1", "2026-11-19T00:00:00.000Z", &[22], "OK"),
            sg_item("sg-2", "2026-11-19T00:00:00.000Z", &[80], "OK"),
            sg_item("sg-3", "2026-11-19T00:00:00.000Z", &[443], "OK"),
        ],
    );
    let day2 = snap(
        "20261121T000000Z",
        vec![
            sg_item("sg-1", "2026-11-19T00:00:00.000Z", &[22], "OK"),
            sg_item(
                "sg-2",
                "2026-11-20T12:00:00.000Z",
                &[],
                "ResourceNotRecorded",
            ),
        ],
    );
    db.sweep(&day1);
    let (_, s) = db.sweep(&day2);
    assert_eq!(
        s["deleted"], 1,
        "only sg-3, which vanished, is deleted: {s}"
    );
    let items = db.run(&["items", "--format", "json"]).json();
    let ids: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["resource_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sg-1", "sg-2"]);
}
