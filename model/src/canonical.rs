//! Canonical JSON: one byte sequence per meaning, so that a hash comparison is a
//! change test. Keys are sorted explicitly (never relying on serde_json's map
//! ordering, which a `preserve_order` feature anywhere in the build would flip).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialises `value` with object keys sorted by byte order and no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    into_string(out)
}

/// Appends the canonical form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's default map is ordered already; only a build with
            // `preserve_order` pays for collecting and sorting the keys.
            let sorted = map
                .keys()
                .zip(map.keys().skip(1))
                .all(|(a, b)| a.as_bytes() < b.as_bytes());
            if sorted {
                for (i, (key, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(key, out);
                    out.push(b':');
                    write_canonical(v, out);
                }
            } else {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_unstable();
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(key, out);
                    out.push(b':');
                    write_canonical(&map[key], out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(s, out),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

/// Writes a JSON string literal. Strings needing no escapes (nearly all of them) are
/// copied as they are; the rest go through serde_json's escaper, so the spelling is
/// serde_json's either way.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing to a Vec cannot fail; keep the output well-formed regardless.
        out.extend_from_slice(b"\"\"");
    }
}

/// The buffers above only ever receive complete UTF-8 sequences.
pub fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
    items.sort_by_cached_key(sort_key);
}

/// [`sort_unordered`], comparing each element as `strip` leaves a copy of it: fields
/// that `strip` removes (ephemeral ones) cannot change the order of the rest.
pub fn sort_unordered_by(items: &mut [Value], strip: impl Fn(&mut Value)) {
    items.sort_by_cached_key(|v| {
        let mut stripped = v.clone();
        strip(&mut stripped);
        sort_key(&stripped)
    });
}

fn sort_key(v: &Value) -> (Option<String>, String) {
    let name = v.as_object().and_then(|m| {
        NAME_FIELDS
            .iter()
            .find_map(|f| m.get(*f).map(canonical_json))
    });
    (name, canonical_json(v))
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
        let v = json!({"k\"ey": "line\nbreak \u{1F600} back\\slash \u{7}"});
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
