//! Which parts of `item` and `ctx` a rule reads, found from its AST.
//!
//! Every rule gets its own copy of its inputs (a rule must not change what the next one
//! sees), and that copy was most of the cost of judging: an item carries its config
//! twice (`config`, `live`) and often its previous config and diff. Most rules read
//! `item.config`, `item.facts` and a few names. A rule whose every use of a parameter
//! is `param.key…` or `param["key"]…` gets a copy of only those keys; any other use
//! (passing it to a function, `let x = item`, a method on it, `"k" in item`, a computed
//! index) means the whole value is copied, as before. The analysis can only add keys,
//! never hide one a rule reads: a key it misses would be a use it does not recognise,
//! and those copy everything.
//!
//! Below the top level, a chain of plain property steps narrows further:
//! `item.config.configuration.groupName` copies only that name of the configuration,
//! where the whole config (a bucket's is a few kilobytes) was copied for each rule. A
//! chain is followed only while each step is `.name`; it stops at the first index,
//! method call or anything else, and the value there is copied whole. A value that is
//! not a map where the path expects one is copied whole too, so the rule sees exactly
//! what it would have seen in the full input.

use std::collections::{BTreeMap, BTreeSet};

use rhai::{ASTNode, Dynamic, Expr, Map, AST};

/// What of one parameter a rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// The whole value (a use the analysis does not narrow).
    All,
    /// Only these keys, each whole or only some of its own keys.
    Keys(BTreeMap<String, Part>),
}

/// What is read of the value under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Whole,
    Keys(BTreeMap<String, Part>),
}

impl Reads {
    /// The rule's copy of `value`: the whole of it, or a map of only the parts read.
    pub fn copy(&self, value: &Dynamic) -> Dynamic {
        match self {
            Reads::All => value.clone(),
            Reads::Keys(keys) => narrowed(value, keys),
        }
    }

    /// The top-level keys read; `None` when the whole value is.
    pub fn top_keys(&self) -> Option<BTreeSet<String>> {
        match self {
            Reads::All => None,
            Reads::Keys(keys) => Some(keys.keys().cloned().collect()),
        }
    }

    /// Everything read by `self` or `other` (what the inputs of an item must hold for
    /// all the rules of its type).
    pub fn union(&mut self, other: &Reads) {
        match (&mut *self, other) {
            (Reads::All, _) => {}
            (_, Reads::All) => *self = Reads::All,
            (Reads::Keys(mine), Reads::Keys(theirs)) => merge(mine, theirs),
        }
    }

    /// What is read under the top-level key `key`: `None` when nothing is.
    pub fn part(&self, key: &str) -> Option<&Part> {
        match self {
            Reads::All => Some(&Part::Whole),
            Reads::Keys(keys) => keys.get(key),
        }
    }

    /// Adds a read of the whole value at `path` (non-empty).
    fn add(&mut self, path: &[String]) {
        if let Reads::Keys(keys) = self {
            add_path(keys, path);
        }
    }
}

fn add_path(keys: &mut BTreeMap<String, Part>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        keys.insert(first.clone(), Part::Whole);
        return;
    }
    match keys
        .entry(first.clone())
        .or_insert_with(|| Part::Keys(BTreeMap::new()))
    {
        Part::Whole => {}
        Part::Keys(inner) => add_path(inner, rest),
    }
}

fn merge(mine: &mut BTreeMap<String, Part>, theirs: &BTreeMap<String, Part>) {
    for (k, part) in theirs {
        match (mine.get_mut(k), part) {
            (None, _) => {
                mine.insert(k.clone(), part.clone());
            }
            (Some(Part::Whole), _) => {}
            (Some(slot), Part::Whole) => *slot = Part::Whole,
            (Some(Part::Keys(a)), Part::Keys(b)) => merge(a, b),
        }
    }
}

/// A copy of `value` with only `keys` (a value that is not a map is copied whole).
fn narrowed(value: &Dynamic, keys: &BTreeMap<String, Part>) -> Dynamic {
    let Some(map) = value.read_lock::<Map>() else {
        return value.clone();
    };
    let copy: Map = keys
        .iter()
        .filter_map(|(k, part)| {
            let v = map.get(k.as_str())?;
            let v = match part {
                Part::Whole => v.clone(),
                Part::Keys(inner) => narrowed(v, inner),
            };
            Some((k.as_str().into(), v))
        })
        .collect();
    copy.into()
}

/// What a rule reads of the parameters of its `fn check(item, ctx)`: one [`Reads`] per
/// parameter, in order. Parameters the function does not have read nothing.
pub fn of_check(ast: &AST, params: &[&str]) -> Vec<Reads> {
    let mut found: Vec<Reads> = params
        .iter()
        .map(|_| Reads::Keys(BTreeMap::new()))
        .collect();
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(var @ Expr::Variable(v, ..))) = path.last() else {
            return true;
        };
        let Some(at) = params.iter().position(|p| *p == v.1.as_str()) else {
            return true;
        };
        let read = match path.len().checked_sub(2).map(|i| &path[i]) {
            Some(ASTNode::Expr(Expr::Dot(chain, ..))) if std::ptr::eq(&chain.lhs, *var) => {
                let mut steps = Vec::new();
                property_steps(&chain.rhs, &mut steps);
                (!steps.is_empty()).then_some(steps)
            }
            Some(ASTNode::Expr(Expr::Index(chain, ..))) if std::ptr::eq(&chain.lhs, *var) => {
                match leftmost(&chain.rhs) {
                    Expr::StringConstant(s, _) => Some(vec![s.to_string()]),
                    _ => None,
                }
            }
            _ => None,
        };
        match read {
            Some(steps) => found[at].add(&steps),
            None => found[at] = Reads::All,
        }
        true
    });
    found
}

/// The property names of a chain's leading plain steps (`b`, `c` of `.b.c[0].d`, and
/// `d` of `.d.len()`): the value at the end of them is read whole.
fn property_steps(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Property(p, _) => out.push(p.2.to_string()),
        Expr::Dot(chain, ..) => {
            if let Expr::Property(p, _) = &chain.lhs {
                out.push(p.2.to_string());
                property_steps(&chain.rhs, out);
            } else if let Expr::Property(..) = leftmost(&chain.lhs) {
                // A method call or index right after: only its first name is known.
                property_steps(leftmost(&chain.lhs), out);
            }
        }
        Expr::Index(chain, ..) => {
            // `.b[…]`: the whole of `b` is read.
            if let Expr::Property(p, _) = &chain.lhs {
                out.push(p.2.to_string());
            }
        }
        _ => {}
    }
}

/// The first step of a chain (`a` of `a.b[c].d`): what is taken of the value itself.
fn leftmost(e: &Expr) -> &Expr {
    match e {
        Expr::Dot(chain, ..) | Expr::Index(chain, ..) => leftmost(&chain.lhs),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(body: &str) -> Vec<Reads> {
        let engine = rhai::Engine::new();
        let ast = engine
            .compile(format!("fn check(item, ctx) {{ {body} }}"))
            .unwrap();
        of_check(&ast, &["item", "ctx"])
    }

    /// Reads of whole values at these dotted paths.
    fn keys(list: &[&str]) -> Reads {
        let mut r = Reads::Keys(BTreeMap::new());
        for p in list {
            let steps: Vec<String> = p.split('.').map(str::to_owned).collect();
            r.add(&steps);
        }
        r
    }

    #[test]
    fn property_chains_narrow_to_their_plain_steps() {
        assert_eq!(
            reads(
                r#"let c = item.config.configuration; if item["facts"].policies.len() > 0 && ctx.now != "" { item.config?.x[0].y } else { item.name }"#
            ),
            vec![
                keys(&["config.configuration", "facts", "name", "config.x"]),
                keys(&["now"])
            ]
        );
        assert_eq!(reads("[]"), vec![keys(&[]), keys(&[])]);
        // A method call reads the whole value it is called on; a longer path under a
        // shorter one read whole adds nothing.
        assert_eq!(
            reads("item.facts.ingress.len() + item.config.a.b.c + item.config.a.len() + ctx.accounts[item.account].x"),
            vec![
                keys(&["facts.ingress", "config.a", "account"]),
                keys(&["accounts"])
            ]
        );
        assert_eq!(
            reads("item.config.supplementaryConfiguration?.BucketPolicy?.policyText"),
            vec![
                keys(&["config.supplementaryConfiguration.BucketPolicy.policyText"]),
                keys(&[])
            ]
        );
    }

    #[test]
    fn any_other_use_reads_everything() {
        for body in [
            "let x = item; x.config",
            "helper(item)",
            "item.keys()",
            r#""config" in item"#,
            r#"let k = "config"; item[k]"#,
            "item == ()",
            "for k in item { }",
            "[item.config, ctx]",
        ] {
            let r = reads(body);
            assert!(
                r.contains(&Reads::All),
                "{body}: should copy a whole input, got {r:?}"
            );
        }
        // A closure reading a key of a captured parameter narrows to it or copies
        // everything; it must never read nothing.
        let r = reads("item.facts.ingress.filter(|g| g.port == item.config.port)");
        assert!(
            r[0] == Reads::All || r[0] == keys(&["config.port", "facts.ingress"]),
            "{r:?}"
        );
    }

    #[test]
    fn a_narrowed_copy_holds_only_the_keys_read() {
        let mut m = Map::new();
        m.insert("config".into(), Dynamic::from(1_i64));
        m.insert("live".into(), Dynamic::from(2_i64));
        let value: Dynamic = m.into();
        let copy = keys(&["config", "absent"]).copy(&value);
        let copy = copy.read_lock::<Map>().unwrap();
        assert_eq!(copy.len(), 1);
        assert_eq!(copy["config"].as_int().unwrap(), 1);
        let all = Reads::All.copy(&value);
        assert_eq!(all.read_lock::<Map>().unwrap().len(), 2);
    }

    /// Below the top level only the paths read are copied; a value that is not a map
    /// where the path expects one is copied whole, so the rule sees what it would have.
    #[test]
    fn a_narrowed_copy_follows_the_paths_read() {
        let value = crate::audit::to_rhai(&serde_json::json!({
            "config": {"configuration": {"groupName": "default", "vpcId": "vpc-1", "big": [1, 2, 3]},
                       "supplementaryConfiguration": "not a map"},
            "name": "x"
        }));
        let copy = keys(&[
            "config.configuration.groupName",
            "config.configuration.absent",
            "config.supplementaryConfiguration.BucketPolicy",
        ])
        .copy(&value);
        let json: serde_json::Value = rhai::serde::from_dynamic(&copy).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"config": {"configuration": {"groupName": "default"},
                                          "supplementaryConfiguration": "not a map"}})
        );
    }
}
