//! IAM policy documents as AWS hands them out: URL-encoded JSON almost everywhere,
//! raw JSON in a few places (and in emulators), sometimes a JSON string inside a JSON
//! string. [`decode_policy_document`] accepts all of them and returns the parsed
//! document in a normal form.

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::canonical::canonical_json;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error("policy document is empty")]
    Empty,
    #[error("policy document is not valid UTF-8 after URL-decoding")]
    NotUtf8,
    #[error("policy document is not JSON ({0}); expected a JSON object, raw or URL-encoded")]
    NotJson(String),
    #[error("policy document is JSON but not an object (found {0})")]
    NotObject(&'static str),
}

/// Parses a policy document given as a JSON value: a string (raw or URL-encoded
/// JSON) or an already parsed object. `null` stays `null` (no policy).
pub fn decode_policy_value(value: &Value) -> Result<Value, PolicyError> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::String(s) => decode_policy_document(s),
        Value::Object(_) => Ok(normalise_policy(value.clone())),
        // Some writers wrap the document in a one-element list.
        Value::Array(list) if list.len() == 1 && (list[0].is_object() || list[0].is_string()) => {
            decode_policy_value(&list[0])
        }
        other => Err(PolicyError::NotObject(kind_name(other))),
    }
}

/// Parses a policy document string, URL-decoding it first when it is encoded.
pub fn decode_policy_document(text: &str) -> Result<Value, PolicyError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(PolicyError::Empty);
    }
    if trimmed.starts_with('[') {
        // A document wrapped in a one-element list, as text.
        if let Ok(Value::Array(list)) = serde_json::from_str::<Value>(trimmed) {
            if list.len() == 1 && (list[0].is_object() || list[0].is_string()) {
                return decode_policy_value(&list[0]);
            }
        }
    }
    let parsed = if trimmed.starts_with('{') {
        parse_object(trimmed)?
    } else {
        let decoded = url_decode(trimmed)?;
        if decoded.trim_start().starts_with('[') && decoded != trimmed {
            return decode_policy_document(&decoded);
        }
        match parse_object(decoded.trim()) {
            Ok(v) => v,
            // Form-style encoders write spaces as '+'; only try that reading when the
            // plain one fails, because '+' is a legal literal in a policy.
            Err(first) if trimmed.contains('+') => {
                let spaced = url_decode(&trimmed.replace('+', "%20"))?;
                parse_object(spaced.trim()).map_err(|_| first)?
            }
            Err(e) => return Err(e),
        }
    };
    Ok(normalise_policy(parsed))
}

fn url_decode(s: &str) -> Result<String, PolicyError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| PolicyError::NotUtf8)
}

fn parse_object(s: &str) -> Result<Value, PolicyError> {
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => Ok(v),
        // A document that was JSON-encoded twice arrives as a JSON string.
        Ok(Value::String(inner)) => decode_policy_document(&inner),
        Ok(other) => Err(PolicyError::NotObject(kind_name(&other))),
        Err(e) => Err(PolicyError::NotJson(e.to_string())),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Sorts the lists inside statements whose order means nothing (actions,
/// resources, principals, condition values), so re-ordering is not a change.
/// Statement order and the scalar-versus-list spelling are left as written: both
/// are visible to the policy's author and cheap for the analyser to accept.
pub fn normalise_policy(mut doc: Value) -> Value {
    match doc.get_mut("Statement") {
        Some(Value::Array(statements)) => statements.iter_mut().for_each(normalise_statement),
        Some(statement @ Value::Object(_)) => normalise_statement(statement),
        _ => {}
    }
    doc
}

fn normalise_statement(statement: &mut Value) {
    let Some(map) = statement.as_object_mut() else {
        return;
    };
    for key in ["Action", "NotAction", "Resource", "NotResource"] {
        if let Some(Value::Array(list)) = map.get_mut(key) {
            sort_dedup(list);
        }
    }
    for key in ["Principal", "NotPrincipal"] {
        if let Some(Value::Object(principals)) = map.get_mut(key) {
            principals.values_mut().for_each(|v| {
                if let Value::Array(list) = v {
                    sort_dedup(list);
                }
            });
        }
    }
    if let Some(Value::Object(operators)) = map.get_mut("Condition") {
        for keys in operators.values_mut() {
            if let Value::Object(keys) = keys {
                for values in keys.values_mut() {
                    if let Value::Array(list) = values {
                        sort_dedup(list);
                    }
                }
            }
        }
    }
}

fn sort_dedup(list: &mut Vec<Value>) {
    list.sort_by_cached_key(canonical_json);
    list.dedup();
}

#[cfg(test)]
mod wrapped_tests {
    use super::*;

    #[test]
    fn documents_wrapped_in_a_list_are_read() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        let plain = decode_policy_document(doc).unwrap();
        assert_eq!(decode_policy_document(&format!("[{doc}]")).unwrap(), plain);
        let encoded: String = percent_encoding::utf8_percent_encode(
            &format!("[{doc}]"),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert_eq!(decode_policy_document(&encoded).unwrap(), plain);
        let value: Value = serde_json::from_str(&format!("[{doc}]")).unwrap();
        assert_eq!(decode_policy_value(&value).unwrap(), plain);
        // Two documents in a list are not one policy.
        assert!(decode_policy_document(&format!("[{doc},{doc}]")).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RAW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"*"}]}"#;

    #[test]
    fn raw_and_url_encoded_documents_decode_to_the_same_value() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3APutObject%22%2C%22s3%3AGetObject%22%5D%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let a = decode_policy_document(RAW).unwrap();
        let b = decode_policy_document(encoded).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a["Statement"][0]["Action"],
            json!(["s3:GetObject", "s3:PutObject"])
        );
    }

    #[test]
    fn pretty_printed_encoded_document_with_plus_spaces() {
        let encoded =
            "%7B%0A++%22Version%22%3A+%222012-10-17%22%2C%0A++%22Statement%22%3A+%5B%5D%0A%7D";
        let v = decode_policy_document(encoded).unwrap();
        assert_eq!(v["Version"], "2012-10-17");
    }

    #[test]
    fn literal_plus_in_a_policy_survives() {
        let encoded =
            "%7B%22Statement%22%3A%5B%7B%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Aa+b%22%7D%5D%7D";
        let v = decode_policy_document(encoded).unwrap();
        assert_eq!(v["Statement"][0]["Resource"], "arn:aws:s3:::a+b");
    }

    #[test]
    fn double_encoded_string_is_unwrapped() {
        let twice = serde_json::to_string(RAW).unwrap();
        assert_eq!(
            decode_policy_document(&twice).unwrap(),
            decode_policy_document(RAW).unwrap()
        );
    }

    #[test]
    fn broken_documents_are_errors_not_panics() {
        assert_eq!(decode_policy_document("  "), Err(PolicyError::Empty));
        assert!(matches!(
            decode_policy_document("%7B%22Version%22"),
            Err(PolicyError::NotJson(_))
        ));
        assert!(matches!(
            decode_policy_document("%FF%FE"),
            Err(PolicyError::NotUtf8)
        ));
        assert_eq!(
            decode_policy_document("[1]"),
            Err(PolicyError::NotObject("an array"))
        );
        assert!(decode_policy_value(&json!(3)).is_err());
        assert_eq!(decode_policy_value(&Value::Null), Ok(Value::Null));
    }

    #[test]
    fn principals_and_condition_values_are_sorted() {
        let v = normalise_policy(json!({"Statement": {
            "Principal": {"AWS": ["arn:b", "arn:a", "arn:a"]},
            "Condition": {"StringEquals": {"aws:SourceVpce": ["vpce-2", "vpce-1"]}}
        }}));
        assert_eq!(
            v["Statement"]["Principal"]["AWS"],
            json!(["arn:a", "arn:b"])
        );
        assert_eq!(
            v["Statement"]["Condition"]["StringEquals"]["aws:SourceVpce"],
            json!(["vpce-1", "vpce-2"])
        );
    }
}
