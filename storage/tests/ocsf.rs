//! Every exported finding is a valid OCSF 1.1.0 Compliance Finding (class 2003).
//!
//! `data/ocsf-1.1.0-compliance-finding.json` holds the facts of the public OCSF schema
//! at its v1.1.0 tag that this check needs, and nothing else: for the class and each
//! object it can contain, every attribute's type, whether it is an array, its
//! requirement level, the profile it comes from and its enum ids (inheritance,
//! includes and profiles already resolved). The validator below checks a record
//! against them: no attribute the class or object lacks, every required attribute
//! present, profile attributes only with their profile declared, types, arrays and
//! enum ids.

use chrono::{NaiveDate, NaiveDateTime};
use guardrail_storage::{to_ocsf, FindingRow, ItemRow};
use serde_json::Value;

fn schema() -> Value {
    let text = include_str!("data/ocsf-1.1.0-compliance-finding.json");
    serde_json::from_str(text).expect("the schema facts parse")
}

fn check_attrs(
    schema: &Value,
    attrs: &Value,
    value: &Value,
    at: &str,
    profiles: &[String],
    errors: &mut Vec<String>,
) {
    let Some(obj) = value.as_object() else {
        errors.push(format!("{at}: an object is expected, not {value}"));
        return;
    };
    let Some(defs) = attrs.as_object() else {
        return;
    };
    for (name, v) in obj {
        let path = format!("{at}.{name}");
        let Some(def) = defs.get(name) else {
            errors.push(format!("{path}: not an attribute here"));
            continue;
        };
        if let Some(p) = def["profile"].as_str() {
            if !profiles.iter().any(|x| x == p) {
                errors.push(format!(
                    "{path}: belongs to profile {p}, not in metadata.profiles"
                ));
            }
        }
        if v.is_null() {
            continue;
        }
        if def["array"].as_bool() == Some(true) {
            match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        check_value(schema, def, item, &format!("{path}[{i}]"), profiles, errors);
                    }
                }
                None => errors.push(format!("{path}: an array is expected, not {v}")),
            }
        } else {
            check_value(schema, def, v, &path, profiles, errors);
        }
    }
    for (name, def) in defs {
        let required = def["requirement"] == "required";
        let applies = def["profile"]
            .as_str()
            .is_none_or(|p| profiles.iter().any(|x| x == p));
        if required && applies && obj.get(name).is_none_or(Value::is_null) {
            errors.push(format!("{at}.{name}: required and missing"));
        }
    }
}

fn check_value(
    schema: &Value,
    def: &Value,
    v: &Value,
    path: &str,
    profiles: &[String],
    errors: &mut Vec<String>,
) {
    let ty = def["type"].as_str().unwrap_or_default();
    let ok = match ty {
        "string_t" | "datetime_t" | "email_t" | "hostname_t" | "ip_t" | "mac_t" | "url_t"
        | "file_name_t" | "path_t" | "subnet_t" | "uuid_t" | "username_t" | "process_name_t"
        | "resource_uid_t" | "file_hash_t" => v.is_string(),
        "integer_t" | "long_t" | "timestamp_t" | "port_t" => v.is_i64() || v.is_u64(),
        "float_t" => v.is_number(),
        "boolean_t" => v.is_boolean(),
        "json_t" => true,
        // `unmapped` and other free-form objects.
        "object" => v.is_object(),
        other => match schema["objects"].get(other) {
            Some(o) => {
                check_attrs(schema, &o["attributes"], v, path, profiles, errors);
                true
            }
            None => {
                errors.push(format!("{path}: type {other} is not in the schema facts"));
                true
            }
        },
    };
    if !ok {
        errors.push(format!("{path}: {v} is not a {ty}"));
    }
    if let (Some(ids), Some(n)) = (def["enum"].as_array(), v.as_i64()) {
        if !ids.iter().any(|i| i.as_i64() == Some(n)) {
            errors.push(format!("{path}: {n} is not one of its enum ids {ids:?}"));
        }
    }
}

/// The problems of one record against class 2003 of OCSF 1.1.0.
fn validate(record: &Value) -> Vec<String> {
    let schema = schema();
    let class = &schema["classes"]["compliance_finding"];
    let profiles: Vec<String> = record["metadata"]["profiles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut errors = Vec::new();
    check_attrs(
        &schema,
        &class["attributes"],
        record,
        "$",
        &profiles,
        &mut errors,
    );
    if record["class_uid"] != class["uid"] {
        errors.push(format!(
            "class_uid {} is not {}",
            record["class_uid"], class["uid"]
        ));
    }
    if record["category_uid"] != class["category_uid"] {
        errors.push("category_uid is not Findings (2)".into());
    }
    let type_uid = record["class_uid"].as_i64().unwrap_or(0) * 100
        + record["activity_id"].as_i64().unwrap_or(0);
    if record["type_uid"].as_i64() != Some(type_uid) {
        errors.push(format!(
            "type_uid {} is not class_uid * 100 + activity_id",
            record["type_uid"]
        ));
    }
    errors
}

fn at(day: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, day)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
}

fn finding(state: &str, severity: &str, reopened: i64) -> FindingRow {
    FindingRow {
        id: 7,
        fingerprint: "f".repeat(64),
        item_id: 3,
        rule_id: "ec2/sg_admin_ports_open".into(),
        finding_key: "22/0.0.0.0/0".into(),
        kind: "state".into(),
        state: state.parse().unwrap(),
        score: 9,
        rule_score: 10,
        severity: severity.into(),
        title: "SSH open to the internet".into(),
        detail: "tcp 22 from 0.0.0.0/0".into(),
        remediation: "Restrict the source".into(),
        first_seen_at: at(1),
        last_seen_at: at(if state == "open" && reopened == 0 {
            1
        } else {
            3
        }),
        opened_at: at(1),
        fixed_at: (state == "fixed").then(|| at(3)),
        first_revision_id: Some(1),
        last_revision_id: Some(2),
        reopen_count: reopened,
        justified_by: (state == "justified").then(|| "alice".into()),
        justification: (state == "justified").then(|| "bastion".into()),
        justified_at: (state == "justified").then(|| at(2)),
        justified_until: (state == "justified").then(|| at(20)),
        suppressed_by: (state == "suppressed").then(|| "ec2/*".into()),
        controls: "cis-aws-3.0:5.2 aws-fsbp:EC2.13".into(),
    }
}

fn item(arn: Option<&str>) -> ItemRow {
    ItemRow {
        id: 3,
        account: "111111111111".into(),
        region: "eu-west-1".into(),
        resource_type: "AWS::EC2::SecurityGroup".into(),
        resource_id: "sg-1".into(),
        arn: arn.map(str::to_owned),
        name: None,
        tags: "{}".into(),
        active: true,
        version: 2,
        config_hash: String::new(),
        observed_at: at(3),
        ephemeral: "{}".into(),
        ephemeral_hash: String::new(),
        first_seen_at: at(1),
    }
}

#[test]
fn every_exported_finding_is_valid_ocsf_1_1_0() {
    let arn = Some("arn:aws:ec2:eu-west-1:111111111111:security-group/sg-1");
    let mut checked = 0;
    for (state, reopened) in [
        ("open", 0),
        ("open", 2),
        ("fixed", 0),
        ("justified", 0),
        ("suppressed", 0),
    ] {
        for severity in ["info", "low", "medium", "high", "critical"] {
            for a in [arn, None] {
                let record = to_ocsf(&finding(state, severity, reopened), &item(a));
                let errors = validate(&record);
                assert!(
                    errors.is_empty(),
                    "{state}/{severity}: {errors:#?}\n{record:#}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 50);
}

#[test]
fn compliance_names_the_controls_the_rule_implements() {
    let mut f = finding("open", "high", 0);
    let record = to_ocsf(&f, &item(None));
    assert_eq!(
        record["compliance"]["standards"],
        serde_json::json!([
            "CIS AWS Foundations Benchmark v3.0.0",
            "AWS Foundational Security Best Practices"
        ])
    );
    assert_eq!(
        record["compliance"]["requirements"],
        serde_json::json!(["cis-aws-3.0:5.2", "aws-fsbp:EC2.13"])
    );
    assert_eq!(record["compliance"]["control"], "cis-aws-3.0:5.2");
    // A rule mapped to no control is judged by the rule pack itself.
    f.controls.clear();
    let record = to_ocsf(&f, &item(None));
    assert_eq!(
        record["compliance"]["standards"],
        serde_json::json!(["guardrail rule pack"])
    );
    assert_eq!(record["compliance"]["control"], f.rule_id);
    assert!(validate(&record).is_empty());
}

#[test]
fn the_validator_refuses_what_1_1_0_refuses() {
    let mut record = to_ocsf(&finding("open", "high", 0), &item(None));
    assert!(validate(&record).is_empty());
    // What guardrail used to write: `resources` and no compliance.standards.
    record["resources"] = serde_json::json!([record["resource"].clone()]);
    record["compliance"]
        .as_object_mut()
        .unwrap()
        .remove("standards");
    record["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("profiles");
    record["severity_id"] = serde_json::json!(42);
    let errors = validate(&record).join("\n");
    for want in [
        "$.resources: not an attribute here",
        "$.compliance.standards: required and missing",
        "$.cloud: belongs to profile cloud",
        "$.severity_id: 42 is not one of its enum ids",
    ] {
        assert!(errors.contains(want), "{want} missing in:\n{errors}");
    }
}
