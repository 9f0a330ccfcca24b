//! One AWS Config configuration item → an observation, a deletion, or a presence.
//!
//! Items come in several spellings (the API/snapshot shape with `accountId` and `arn`,
//! the change-notification shape with `awsAccountId` and `ARN`, older samples with
//! numbers where others have strings); all are read here and nowhere else.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use guardrail_model::{ItemKey, Observation, Scope};
use serde_json::{Map, Value};

use crate::normalize::{normalize_lenient, parse_embedded_json};

/// What one configuration item says.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemState {
    Present(Observation),
    Deleted {
        key: ItemKey,
        at: DateTime<Utc>,
    },
    /// Exists, but AWS Config holds no configuration for it.
    NotRecorded(ItemKey),
}

/// Why an item could not be read, and which scope that leaves unsure.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemError {
    pub item: String,
    pub scope: Option<Scope>,
    pub message: String,
}

/// Fields that describe the recording, not the resource: ephemeral for every type.
const RECORDING_FIELDS: &[&str] = &[
    "configurationItemCaptureTime",
    "configurationItemStatus",
    "configurationStateId",
    "configurationItemMD5Hash",
    "configurationStateMd5Hash",
    "configurationItemVersion",
    "version",
    "relatedEvents",
    "configurationItemDeliveryTime",
];

/// Durable top-level fields besides `configuration` and `supplementaryConfiguration`.
const DURABLE_FIELDS: &[&str] = &["availabilityZone", "resourceCreationTime", "relationships"];

fn text(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match map.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Reads AWS Config timestamps: RFC 3339, the space-separated form some tools write,
/// or epoch seconds (milliseconds when the number is that large).
pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                    .map(|n| n.and_utc())
            }),
        Value::Number(n) => {
            let x = n.as_f64()?;
            let secs = if x > 1e11 { x / 1000.0 } else { x };
            Utc.timestamp_millis_opt((secs * 1000.0) as i64).single()
        }
        _ => None,
    }
}

fn tags(v: Option<&Value>) -> BTreeMap<String, String> {
    let as_string = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), as_string(v))).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|t| {
                let m = t.as_object()?;
                let k = m.get("key").or_else(|| m.get("Key"))?.as_str()?;
                let v = m.get("value").or_else(|| m.get("Value")).map(as_string);
                Some((k.to_owned(), v.unwrap_or_default()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Reads one configuration item. `default_time` is when the listing saw the world
/// (a snapshot's time); history items carry their own capture time instead.
pub fn read_item(
    raw: Value,
    position: usize,
    default_time: DateTime<Utc>,
    use_capture_time: bool,
) -> Result<ItemState, ItemError> {
    read_item_from(raw, position, default_time, use_capture_time, None)
}

/// The region of an AWS Config delivery from its S3 key or path
/// (`AWSLogs/<account>/Config/<region>/<yyyy>/...`).
pub fn delivery_region(location: &str) -> Option<String> {
    let mut parts = location.split('/');
    while let Some(p) = parts.next() {
        if p == "Config" {
            let region = parts.next()?;
            let looks_like_region = region.split('-').count() >= 3
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            return looks_like_region.then(|| region.to_owned());
        }
    }
    None
}

/// The region of an availability zone (`eu-west-1b` → `eu-west-1`); `Not Applicable`,
/// `Multiple Availability Zones` and the like give none.
fn zone_region(zone: &str) -> Option<String> {
    let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    let valid = region.len() < zone.len()
        && region.ends_with(|c: char| c.is_ascii_digit())
        && region.split('-').count() >= 3;
    valid.then(|| region.to_owned())
}

/// [`read_item`] for an item of a delivery whose path names its region: items of older
/// formats have no `awsRegion`, and then the region is inferred (from the item's
/// availability zone, else the delivery path) and the observation says so
/// (`regionInferredFrom`, kept with the item's ephemeral facts).
pub fn read_item_from(
    raw: Value,
    position: usize,
    default_time: DateTime<Utc>,
    use_capture_time: bool,
    path_region: Option<&str>,
) -> Result<ItemState, ItemError> {
    let Value::Object(mut map) = raw else {
        return Err(ItemError {
            item: format!("item #{position}"),
            scope: None,
            message: "configuration item is not a JSON object".into(),
        });
    };
    let resource_type = text(&map, &["resourceType"]);
    let resource_id = text(&map, &["resourceId"]);
    let account = text(&map, &["accountId", "awsAccountId"]);
    let mut inferred_from = None;
    let region = text(&map, &["awsRegion"]).or_else(|| {
        let zone = text(&map, &["availabilityZone"]).and_then(|z| zone_region(&z));
        let (region, from) = match (zone, path_region) {
            (Some(z), _) => (z, "availabilityZone"),
            (None, Some(p)) => (p.to_owned(), "delivery path"),
            (None, None) => return None,
        };
        inferred_from = Some(from);
        Some(region)
    });
    let label = format!(
        "item #{position} ({} {})",
        resource_type.as_deref().unwrap_or("unknown type"),
        resource_id.as_deref().unwrap_or("without resourceId")
    );
    let scope = match (&account, &region, &resource_type) {
        (Some(a), Some(r), Some(t)) => Some(Scope {
            account: a.clone(),
            region: r.clone(),
            resource_type: t.clone(),
        }),
        _ => None,
    };
    let fail = |message: String| ItemError {
        item: label.clone(),
        scope: scope.clone(),
        message,
    };
    let (Some(resource_type), Some(resource_id), Some(account), Some(region)) =
        (resource_type.clone(), resource_id, account, region)
    else {
        let missing: Vec<&str> = [
            ("resourceType", resource_type.is_none()),
            ("resourceId", text(&map, &["resourceId"]).is_none()),
            (
                "accountId",
                text(&map, &["accountId", "awsAccountId"]).is_none(),
            ),
            ("awsRegion", text(&map, &["awsRegion"]).is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
        return Err(fail(format!(
            "missing required field(s): {}",
            missing.join(", ")
        )));
    };
    let key = ItemKey {
        account,
        region,
        resource_type: resource_type.clone(),
        resource_id,
    };
    let capture = map.get("configurationItemCaptureTime").and_then(parse_time);
    let observed_at = match (use_capture_time, capture) {
        (true, Some(t)) => t,
        _ => default_time,
    };
    match text(&map, &["configurationItemStatus"]).as_deref() {
        Some("ResourceDeleted") | Some("ResourceDeletedNotRecorded") => {
            return Ok(ItemState::Deleted {
                key,
                at: capture.unwrap_or(default_time),
            })
        }
        Some("ResourceNotRecorded") => return Ok(ItemState::NotRecorded(key)),
        _ => {}
    }

    let arn = text(&map, &["arn", "ARN"]);
    let name = text(&map, &["resourceName"]);
    let tags = tags(map.get("tags"));

    let configuration = match map.remove("configuration") {
        Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
        Some(Value::String(s)) => serde_json::from_str(&s).map_err(|e| {
            fail(format!(
                "configuration is a string that is not valid JSON ({e}); expected an object or a JSON-encoded object"
            ))
        })?,
        Some(other) => other,
        None => Value::Null,
    };
    let supplementary = match map.remove("supplementaryConfiguration") {
        Some(Value::Object(mut m)) => {
            parse_embedded_json(&mut m);
            Value::Object(m)
        }
        Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Some(other) => other,
        None => Value::Object(Map::new()),
    };

    let mut doc = Map::new();
    doc.insert("configuration".into(), configuration);
    doc.insert("supplementaryConfiguration".into(), supplementary);
    for field in DURABLE_FIELDS {
        if let Some(v) = map.remove(*field) {
            doc.insert((*field).into(), v);
        }
    }
    let mut doc = Value::Object(doc);
    // A field that cannot be read (a broken policy document) stays raw; storage decides
    // whether the item is stored so or keeps its last readable revision.
    let (mut ephemeral, unreadable) = normalize_lenient(&resource_type, &mut doc);
    let unreadable: Vec<String> = unreadable.iter().map(|e| e.to_string()).collect();
    if let Some(from) = inferred_from {
        ephemeral.insert("regionInferredFrom".into(), Value::String(from.into()));
    }
    for field in RECORDING_FIELDS {
        if let Some(v) = map.remove(*field) {
            ephemeral.insert((*field).into(), v);
        }
    }
    Ok(ItemState::Present(Observation {
        key,
        arn,
        name,
        tags,
        config: doc,
        ephemeral: Value::Object(ephemeral),
        observed_at,
        unreadable,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap()
    }

    #[test]
    fn both_naming_schemes_read_the_same() {
        let api = json!({"accountId": "111111111111", "arn": "arn:x", "resourceType": "AWS::S3::Bucket",
            "resourceId": "b", "resourceName": "b", "awsRegion": "us-east-1",
            "configurationItemStatus": "OK", "configurationStateId": "17",
            "configuration": {"name": "b"}, "supplementaryConfiguration": {}, "tags": {"team": "x"}});
        let notification = json!({"awsAccountId": "111111111111", "ARN": "arn:x", "resourceType": "AWS::S3::Bucket",
            "resourceId": "b", "resourceName": "b", "awsRegion": "us-east-1",
            "configurationItemStatus": "OK", "configurationStateId": 18,
            "configuration": "{\"name\": \"b\"}", "tags": [{"key": "team", "value": "x"}]});
        let (ItemState::Present(a), ItemState::Present(b)) = (
            read_item(api, 0, t0(), false).unwrap(),
            read_item(notification, 0, t0(), false).unwrap(),
        ) else {
            panic!("expected observations");
        };
        assert_eq!(a.durable_document(), b.durable_document());
        assert_ne!(a.ephemeral, b.ephemeral);
    }

    #[test]
    fn s3_supplementary_strings_and_policy_are_parsed() {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        let item = json!({"accountId": "1", "resourceType": "AWS::S3::Bucket", "resourceId": "b", "awsRegion": "us-east-1",
        "configuration": {"name": "b"},
        "supplementaryConfiguration": {
            "BucketPolicy": serde_json::to_string(&json!({"policyText": policy})).unwrap(),
            "PublicAccessBlockConfiguration": {"blockPublicAcls": false},
            "IsRequesterPaysEnabled": false
        }});
        let ItemState::Present(o) = read_item(item, 0, t0(), false).unwrap() else {
            panic!()
        };
        let s = &o.config["supplementaryConfiguration"];
        assert_eq!(
            s["BucketPolicy"]["policyText"]["Statement"][0]["Principal"],
            "*"
        );
        assert_eq!(s["IsRequesterPaysEnabled"], false);
    }

    #[test]
    fn statuses_map_to_deletions_and_presence() {
        let base = json!({"accountId": "1", "resourceType": "AWS::IAM::Role", "resourceId": "AROA1", "awsRegion": "global",
            "configurationItemCaptureTime": "2026-11-21T10:00:00.000Z"});
        let mut d = base.clone();
        d["configurationItemStatus"] = json!("ResourceDeleted");
        match read_item(d, 0, t0(), false).unwrap() {
            ItemState::Deleted { at, .. } => {
                assert_eq!(at.to_rfc3339(), "2026-11-21T10:00:00+00:00")
            }
            other => panic!("{other:?}"),
        }
        let mut n = base;
        n["configurationItemStatus"] = json!("ResourceNotRecorded");
        assert!(matches!(
            read_item(n, 0, t0(), false).unwrap(),
            ItemState::NotRecorded(_)
        ));
    }

    #[test]
    fn errors_name_the_item_and_its_scope() {
        let e = read_item(json!({"accountId": "1", "awsRegion": "x"}), 4, t0(), false).unwrap_err();
        assert_eq!(e.item, "item #4 (unknown type without resourceId)");
        assert!(
            e.message.contains("resourceType, resourceId"),
            "{}",
            e.message
        );
        assert!(e.scope.is_none());
        let bad = json!({"accountId": "1", "resourceType": "AWS::IAM::User", "resourceId": "AIDA1", "awsRegion": "global",
            "configuration": {"userPolicyList": [{"policyName": "p", "policyDocument": "%7B%22Sta"}]}});
        // One unreadable field no longer drops the item: it stays raw and is named.
        let ItemState::Present(o) = read_item(bad, 2, t0(), false).unwrap() else {
            panic!("expected an observation");
        };
        assert_eq!(o.key.resource_type, "AWS::IAM::User");
        assert_eq!(o.unreadable.len(), 1);
        assert!(
            o.unreadable[0].contains("configuration.userPolicyList[0].policyDocument"),
            "{:?}",
            o.unreadable
        );
        assert_eq!(
            o.config["configuration"]["userPolicyList"][0]["policyDocument"],
            "%7B%22Sta"
        );
        let e = read_item(json!({"accountId": "1", "resourceType": "T", "resourceId": "i", "awsRegion": "r", "configuration": "{oops"}), 0, t0(), false).unwrap_err();
        assert!(e.message.contains("not valid JSON"));
    }

    #[test]
    fn a_missing_region_is_inferred_and_says_from_where() {
        let item = |zone: &str| {
            json!({"accountId": "1", "resourceType": "AWS::EC2::Volume", "resourceId": "vol-1",
                   "availabilityZone": zone, "configuration": {}})
        };
        let path = "AWSLogs/1/Config/eu-west-3/2019/1/1/ConfigSnapshot/x.json.gz";
        assert_eq!(delivery_region(path).as_deref(), Some("eu-west-3"));
        assert_eq!(delivery_region("local/dir/file.json"), None);
        let from =
            |zone: &str, path: Option<&str>| match read_item_from(item(zone), 0, t0(), false, path)
            {
                Ok(ItemState::Present(o)) => (
                    o.key.region.clone(),
                    o.ephemeral["regionInferredFrom"].clone(),
                ),
                other => panic!("{other:?}"),
            };
        assert_eq!(
            from("eu-central-1b", Some("eu-west-3")),
            ("eu-central-1".into(), json!("availabilityZone"))
        );
        assert_eq!(
            from("Not Applicable", Some("eu-west-3")),
            ("eu-west-3".into(), json!("delivery path"))
        );
        assert!(read_item_from(item("Not Applicable"), 0, t0(), false, None).is_err());
    }

    #[test]
    fn times_in_every_spelling() {
        let want = "2026-11-20T01:02:03+00:00";
        for v in [
            json!("2026-11-20T01:02:03Z"),
            json!("2026-11-20 01:02:03.000000"),
            json!(1795136523),
            json!(1795136523000u64),
        ] {
            assert_eq!(parse_time(&v).unwrap().to_rfc3339(), want, "{v}");
        }
        assert!(parse_time(&json!("yesterday")).is_none());
    }
}
