//! Parsed policy documents, remembered per thread for the helpers' next calls.
//!
//! Rules hand the same document to several helpers (one rule asks `policy_allows`
//! nine times of one policy) and every rule of an IAM type reads the same
//! `facts.policies`, so without a memory each call converted the Rhai value to JSON,
//! decoded it and parsed it again. An entry is found by a hash of the value and then
//! compared with it in full, so a hash collision can only cost a parse, never return
//! another document's analysis. Values that are not plain data (function pointers,
//! custom types) are never remembered. Each judging thread has its own small table
//! (no locks); entries are replaced oldest first.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use rhai::{Array, Dynamic, ImmutableString, Map};

use crate::helpers::policy::Policy;

/// Entries per thread: an item's documents (trust, inline, attached, managed) under
/// one or two boundaries, with room to spare.
const CAPACITY: usize = 32;
/// Deeper values are not remembered (policies are a few levels deep).
const MAX_DEPTH: usize = 32;

struct Entry {
    hash: u64,
    doc: Dynamic,
    boundary: Dynamic,
    policy: Rc<Policy>,
}

#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    /// Where the next new entry goes once the table is full.
    next: usize,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

/// The policy parsed from `doc` (judged against `boundary`, a `ctx.boundary` value or
/// unit), from this thread's memory or by `parse`, which is remembered when it succeeds.
pub fn policy<E>(
    doc: &Dynamic,
    boundary: &Dynamic,
    parse: impl FnOnce() -> Result<Policy, E>,
) -> Result<Rc<Policy>, E> {
    let Some(hash) = fingerprint(doc, boundary) else {
        return parse().map(Rc::new);
    };
    let found = TABLE.with(|t| {
        t.borrow()
            .entries
            .iter()
            .find(|e| e.hash == hash && same(&e.doc, doc, 0) && same(&e.boundary, boundary, 0))
            .map(|e| Rc::clone(&e.policy))
    });
    if let Some(p) = found {
        return Ok(p);
    }
    let policy = Rc::new(parse()?);
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let entry = Entry {
            hash,
            doc: doc.clone(),
            boundary: boundary.clone(),
            policy: Rc::clone(&policy),
        };
        if t.entries.len() < CAPACITY {
            t.entries.push(entry);
        } else {
            let at = t.next;
            t.entries[at] = entry;
            t.next = (at + 1) % CAPACITY;
        }
    });
    Ok(policy)
}

fn fingerprint(doc: &Dynamic, boundary: &Dynamic) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    hash_value(doc, &mut h, 0)?;
    hash_value(boundary, &mut h, 0)?;
    Some(h.finish())
}

/// Hashes plain data (unit, bool, integer, float, character, string, array, map);
/// `None` for anything else or anything deeper than [`MAX_DEPTH`].
fn hash_value(d: &Dynamic, h: &mut impl Hasher, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    if d.is_unit() {
        0u8.hash(h);
    } else if let Ok(b) = d.as_bool() {
        1u8.hash(h);
        b.hash(h);
    } else if let Ok(i) = d.as_int() {
        2u8.hash(h);
        i.hash(h);
    } else if let Ok(f) = d.as_float() {
        3u8.hash(h);
        f.to_bits().hash(h);
    } else if let Ok(c) = d.as_char() {
        4u8.hash(h);
        c.hash(h);
    } else if let Some(s) = d.read_lock::<ImmutableString>() {
        5u8.hash(h);
        s.as_str().hash(h);
    } else if let Some(a) = d.read_lock::<Array>() {
        6u8.hash(h);
        a.len().hash(h);
        for v in a.iter() {
            hash_value(v, h, depth + 1)?;
        }
    } else if let Some(m) = d.read_lock::<Map>() {
        7u8.hash(h);
        m.len().hash(h);
        for (k, v) in m.iter() {
            k.as_str().hash(h);
            hash_value(v, h, depth + 1)?;
        }
    } else {
        return None;
    }
    Some(())
}

/// Whether two plain-data values are equal, type for type (an integer 1 is not a
/// float 1.0: the policy parser sees them differently).
fn same(a: &Dynamic, b: &Dynamic, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    if a.is_unit() || b.is_unit() {
        return a.is_unit() && b.is_unit();
    }
    if let (Ok(x), Ok(y)) = (a.as_bool(), b.as_bool()) {
        return x == y;
    }
    if let (Ok(x), Ok(y)) = (a.as_int(), b.as_int()) {
        return x == y;
    }
    if let (Ok(x), Ok(y)) = (a.as_float(), b.as_float()) {
        return x.to_bits() == y.to_bits();
    }
    if let (Ok(x), Ok(y)) = (a.as_char(), b.as_char()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (
        a.read_lock::<ImmutableString>(),
        b.read_lock::<ImmutableString>(),
    ) {
        return x.as_str() == y.as_str();
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Array>(), b.read_lock::<Array>()) {
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same(p, q, depth + 1));
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Map>(), b.read_lock::<Map>()) {
        return x.len() == y.len()
            && x.iter()
                .zip(y.iter())
                .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy, depth + 1));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(action: &str) -> Dynamic {
        let mut s = Map::new();
        s.insert("Effect".into(), "Allow".into());
        s.insert("Action".into(), action.into());
        s.insert("Resource".into(), "*".into());
        let mut d = Map::new();
        d.insert(
            "Statement".into(),
            Dynamic::from_array(vec![Dynamic::from_map(s)]),
        );
        Dynamic::from_map(d)
    }

    fn parse_counting(calls: &std::cell::Cell<u32>, action: &str) -> Result<Policy, String> {
        calls.set(calls.get() + 1);
        Policy::parse(
            &serde_json::json!({"Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}),
        )
    }

    #[test]
    fn the_same_document_is_parsed_once_and_another_one_again() {
        let calls = std::cell::Cell::new(0);
        let unit = Dynamic::UNIT;
        let a = policy(&doc("s3:GetObject"), &unit, || {
            parse_counting(&calls, "s3:GetObject")
        })
        .unwrap();
        let again = policy(&doc("s3:GetObject"), &unit, || {
            parse_counting(&calls, "s3:GetObject")
        })
        .unwrap();
        assert_eq!(calls.get(), 1);
        assert!(Rc::ptr_eq(&a, &again));
        let other = policy(&doc("s3:*"), &unit, || parse_counting(&calls, "s3:*")).unwrap();
        assert_eq!(calls.get(), 2);
        assert!(other.allows("s3:PutObject", "x") && !a.allows("s3:PutObject", "x"));
        // The same document under another boundary is another entry.
        let boundary: Dynamic = "o-1".into();
        policy(&doc("s3:*"), &boundary, || parse_counting(&calls, "s3:*")).unwrap();
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn failures_are_not_remembered_and_odd_values_are_not_cached() {
        let calls = std::cell::Cell::new(0);
        let unit = Dynamic::UNIT;
        let bad = doc("x");
        for _ in 0..2 {
            let r: Result<Rc<Policy>, String> = policy(&bad, &Dynamic::from(7_i64), || {
                calls.set(calls.get() + 1);
                Err("broken".into())
            });
            assert!(r.is_err());
        }
        assert_eq!(calls.get(), 2);
        // A value the memory cannot compare (a function pointer) is parsed every time.
        let f = Dynamic::from(rhai::FnPtr::new("f").unwrap());
        for _ in 0..2 {
            policy(&f, &unit, || parse_counting(&calls, "a:b")).unwrap();
        }
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn equal_hashes_still_compare_the_whole_value() {
        let x = doc("s3:GetObject");
        let y = doc("s3:GetObjecT");
        assert!(same(&x, &x.clone(), 0));
        assert!(!same(&x, &y, 0));
        assert!(!same(&Dynamic::from(1_i64), &Dynamic::from(1.0_f64), 0));
        assert!(!same(&Dynamic::UNIT, &Dynamic::from(false), 0));
    }

    #[test]
    fn the_table_keeps_a_bounded_number_of_entries() {
        let calls = std::cell::Cell::new(0);
        let unit = Dynamic::UNIT;
        for i in 0..(CAPACITY * 3) {
            let a = format!("s3:Get{i}");
            policy(&doc(&a), &unit, || parse_counting(&calls, &a)).unwrap();
        }
        TABLE.with(|t| assert_eq!(t.borrow().entries.len(), CAPACITY));
        // The newest are still there, the oldest were replaced.
        let last = format!("s3:Get{}", CAPACITY * 3 - 1);
        let before = calls.get();
        policy(&doc(&last), &unit, || parse_counting(&calls, &last)).unwrap();
        assert_eq!(calls.get(), before);
        policy(&doc("s3:Get0"), &unit, || parse_counting(&calls, "s3:Get0")).unwrap();
        assert_eq!(calls.get(), before + 1);
    }
}
