//! Canonical JSON: one byte sequence per meaning, so that a hash comparison is a
//! change test. Keys are sorted explicitly (never relying on serde_json's map
//! ordering, which a `preserve_order` feature anywhere in the build would flip).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialises `value` with object keys sorted by byte order and no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Numbers, booleans and null have a single serde_json spelling already.
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is deterministic; reuse it rather than re-implement.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

/// SHA-256 of the canonical bytes, hex encoded.
pub fn content_hash(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Fields that name an element of a list, in the order they are tried. Sorting by a
/// name first keeps lists readable ("policy a, policy b") and diffs stable.
const NAME_FIELDS: &[&str] = &[
    "policyName",
    "policyArn",
    "groupName",
    "roleName",
    "instanceProfileName",
    "versionId",
    "key",
    "Key",
    "ruleNumber",
];

/// Sorts an array for lists whose order carries no meaning (security group rules,
/// grants, tag lists): by the element's name field when it has one, then by its
/// canonical form.
pub fn sort_unordered(items: &mut [Value]) {
    items.sort_by_cached_key(|v| {
        let name = v.as_object().and_then(|m| {
            NAME_FIELDS
                .iter()
                .find_map(|f| m.get(*f).map(canonical_json))
        });
        (name, canonical_json(v))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let v = json!({"b": 1, "a": {"z": [3, {"y": 1, "x": 2}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"z":[3,{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn strings_are_escaped() {
        let v = json!({"k\"ey": "line\nbreak \u{1F600}"});
        let c = canonical_json(&v);
        let back: Value = serde_json::from_str(&c).expect("canonical output parses");
        assert_eq!(back, v);
    }

    #[test]
    fn hash_differs_on_any_change_and_not_on_key_order() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"b":[2,1],"a":1}"#).unwrap();
        assert_eq!(
            content_hash(&canonical_json(&a)),
            content_hash(&canonical_json(&b))
        );
        assert_ne!(
            content_hash(&canonical_json(&a)),
            content_hash(&canonical_json(&c))
        );
    }

    #[test]
    fn unordered_lists_sort_deterministically() {
        let mut a = vec![json!({"p": 443}), json!({"p": 22}), json!("x")];
        let mut b = vec![json!("x"), json!({"p": 22}), json!({"p": 443})];
        sort_unordered(&mut a);
        sort_unordered(&mut b);
        assert_eq!(a, b);
    }
}
