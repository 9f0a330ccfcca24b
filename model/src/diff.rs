//! Path-level diff between two JSON documents: what a person triaging a change wants
//! to read ("ipPermissions[1].ipRanges[0] added: 0.0.0.0/0"), not a line diff.
//!
//! Arrays are aligned with a longest-common-subsequence pass so that inserting one
//! rule at the front of a list reports one addition instead of every element
//! "changed"; unmatched neighbours that are both objects are then diffed field by field.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffOp {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffEntry {
    pub path: String,
    pub op: DiffOp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// Above this many element comparisons an array is compared index by index: the
/// alignment is quadratic and huge lists are rare enough to take the cruder output.
const LCS_LIMIT: usize = 250_000;

pub fn diff(old: &Value, new: &Value) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<DiffEntry>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let p = join_key(path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(removed(p, x)),
                    (None, Some(y)) => out.push(added(p, y)),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => walk_array(path, a, b, out),
        _ if old == new => {}
        _ => out.push(DiffEntry {
            path: display_path(path),
            op: DiffOp::Changed,
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

fn walk_array(path: &str, a: &[Value], b: &[Value], out: &mut Vec<DiffEntry>) {
    if a == b {
        return;
    }
    if a.len().saturating_mul(b.len()) > LCS_LIMIT {
        for i in 0..a.len().max(b.len()) {
            let p = join_index(path, i);
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) => walk(&p, x, y, out),
                (Some(x), None) => out.push(removed(p, x)),
                (None, Some(y)) => out.push(added(p, y)),
                (None, None) => {}
            }
        }
        return;
    }
    // lcs[i][j] = length of the LCS of a[i..] and b[j..]
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut gone: Vec<usize> = Vec::new();
    let mut came: Vec<usize> = Vec::new();
    let flush = |gone: &mut Vec<usize>, came: &mut Vec<usize>, out: &mut Vec<DiffEntry>| {
        // Pair unmatched old/new elements in order; objects paired this way are
        // most often the same element edited, so show their field changes.
        let paired = gone.len().min(came.len());
        for k in 0..paired {
            let (x, y) = (&a[gone[k]], &b[came[k]]);
            if x.is_object() && y.is_object() {
                walk(&join_index(path, came[k]), x, y, out);
            } else {
                out.push(removed(join_index(path, gone[k]), x));
                out.push(added(join_index(path, came[k]), y));
            }
        }
        for &k in &gone[paired..] {
            out.push(removed(join_index(path, k), &a[k]));
        }
        for &k in &came[paired..] {
            out.push(added(join_index(path, k), &b[k]));
        }
        gone.clear();
        came.clear();
    };
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            flush(&mut gone, &mut came, out);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            came.push(j);
            j += 1;
        } else {
            gone.push(i);
            i += 1;
        }
    }
    flush(&mut gone, &mut came, out);
}

fn added(path: String, v: &Value) -> DiffEntry {
    DiffEntry {
        path: display_path(&path),
        op: DiffOp::Added,
        old: None,
        new: Some(v.clone()),
    }
}

fn removed(path: String, v: &Value) -> DiffEntry {
    DiffEntry {
        path: display_path(&path),
        op: DiffOp::Removed,
        old: Some(v.clone()),
        new: None,
    }
}

fn display_path(p: &str) -> String {
    if p.is_empty() {
        "$".to_owned()
    } else {
        p.to_owned()
    }
}

fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_owned())),
    }
}

fn join_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identical_documents_have_no_diff() {
        let v = json!({"a": [1, {"b": 2}], "c": null});
        assert!(diff(&v, &v).is_empty());
    }

    #[test]
    fn scalar_changes_additions_and_removals_by_path() {
        let old = json!({"a": {"port": 22, "gone": true}, "name": "x"});
        let new = json!({"a": {"port": 3389, "new": "y"}, "name": "x"});
        let d = diff(&old, &new);
        assert_eq!(
            d,
            vec![
                removed("a.gone".into(), &json!(true)),
                added("a.new".into(), &json!("y")),
                DiffEntry {
                    path: "a.port".into(),
                    op: DiffOp::Changed,
                    old: Some(json!(22)),
                    new: Some(json!(3389))
                },
            ]
        );
    }

    #[test]
    fn insertion_at_the_front_of_a_list_is_one_addition() {
        let old = json!({"r": ["10.0.0.0/8", "192.168.0.0/16"]});
        let new = json!({"r": ["0.0.0.0/0", "10.0.0.0/8", "192.168.0.0/16"]});
        assert_eq!(
            diff(&old, &new),
            vec![added("r[0]".into(), &json!("0.0.0.0/0"))]
        );
    }

    #[test]
    fn edited_object_in_a_list_shows_field_changes() {
        let old = json!([{"from": 22, "to": 22}, {"from": 443, "to": 443}]);
        let new = json!([{"from": 22, "to": 22}, {"from": 443, "to": 444}]);
        let d = diff(&old, &new);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "[1].to");
    }

    #[test]
    fn odd_keys_are_quoted_and_root_is_dollar() {
        let d = diff(&json!({"Bucket.Policy": 1}), &json!({"Bucket.Policy": 2}));
        assert_eq!(d[0].path, r#"["Bucket.Policy"]"#);
        let d = diff(&json!(1), &json!(null));
        assert_eq!(d[0].path, "$");
    }

    #[test]
    fn huge_arrays_fall_back_to_index_comparison() {
        let a: Vec<Value> = (0..1000).map(|i| json!(i)).collect();
        let mut b = a.clone();
        b[999] = json!("x");
        let d = diff(&Value::Array(a), &Value::Array(b));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "[999]");
    }
}
