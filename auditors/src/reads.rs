//! Which top-level keys of `item` and `ctx` a rule reads, found from its AST.
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

use std::collections::BTreeSet;

use rhai::{ASTNode, Dynamic, Expr, Map, AST};

/// What of one parameter a rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// The whole value (a use the analysis does not narrow).
    All,
    /// Only these top-level keys.
    Keys(BTreeSet<String>),
}

impl Reads {
    /// The rule's copy of `value`: the whole of it, or a map of only the keys read.
    pub fn copy(&self, value: &Dynamic) -> Dynamic {
        let Reads::Keys(keys) = self else {
            return value.clone();
        };
        let Some(map) = value.read_lock::<Map>() else {
            return value.clone();
        };
        let narrowed: Map = keys
            .iter()
            .filter_map(|k| map.get(k.as_str()).map(|v| (k.as_str().into(), v.clone())))
            .collect();
        narrowed.into()
    }
}

/// What a rule reads of the parameters of its `fn check(item, ctx)`: one [`Reads`] per
/// parameter, in order. Parameters the function does not have read nothing.
pub fn of_check(ast: &AST, params: &[&str]) -> Vec<Reads> {
    let mut found: Vec<Reads> = params
        .iter()
        .map(|_| Reads::Keys(BTreeSet::new()))
        .collect();
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(var @ Expr::Variable(v, ..))) = path.last() else {
            return true;
        };
        let Some(at) = params.iter().position(|p| *p == v.1.as_str()) else {
            return true;
        };
        let key = match path.len().checked_sub(2).map(|i| &path[i]) {
            Some(ASTNode::Expr(Expr::Dot(chain, ..))) if std::ptr::eq(&chain.lhs, *var) => {
                match leftmost(&chain.rhs) {
                    Expr::Property(p, _) => Some(p.2.to_string()),
                    _ => None,
                }
            }
            Some(ASTNode::Expr(Expr::Index(chain, ..))) if std::ptr::eq(&chain.lhs, *var) => {
                match leftmost(&chain.rhs) {
                    Expr::StringConstant(s, _) => Some(s.to_string()),
                    _ => None,
                }
            }
            _ => None,
        };
        match (key, &mut found[at]) {
            (Some(k), Reads::Keys(keys)) => {
                keys.insert(k);
            }
            (Some(_), Reads::All) => {}
            (None, slot) => *slot = Reads::All,
        }
        true
    });
    found
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

    fn keys(list: &[&str]) -> Reads {
        Reads::Keys(list.iter().map(|k| (*k).to_owned()).collect())
    }

    #[test]
    fn property_and_literal_index_chains_narrow_to_their_first_key() {
        assert_eq!(
            reads(
                r#"let c = item.config.configuration; if item["facts"].policies.len() > 0 && ctx.now != "" { item.config?.x[0].y } else { item.name }"#
            ),
            vec![keys(&["config", "facts", "name"]), keys(&["now"])]
        );
        assert_eq!(reads("[]"), vec![keys(&[]), keys(&[])]);
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
            r[0] == Reads::All || r[0] == keys(&["config", "facts"]),
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
}
