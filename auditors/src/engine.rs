//! The sandboxed Rhai engine and the rule set it runs.
//!
//! One `rhai::Engine` for the process, with every limit set explicitly (Rhai's
//! defaults are unlimited, and its call-depth default differs between debug and
//! release builds), `eval` disabled, no module imports, no file or network access (Rhai
//! has none unless registered, and we register none). Rules are compiled once to an
//! `AST` and shared between threads. A rule that fails, loops, or outgrows a limit
//! produces a [`RuleError`]; it never stops the audit and never passes silently.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rhai::{CallFnOptions, Dynamic, EvalAltResult, Scope, AST};
use serde::Serialize;
use serde_json::Value;

use crate::functions;

/// Resource limits for one rule evaluation.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
    /// Wall-clock budget per evaluation, checked while the script runs.
    pub max_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 2_000_000,
            max_string_size: 1 << 20,
            // Rhai re-measures containers as they grow, so large limits make hostile
            // growth loops quadratic; real configs stay far below these.
            max_array_size: 20_000,
            max_map_size: 10_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 64,
            max_time: Duration::from_secs(2),
        }
    }
}

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The compliance frameworks rules may name in `controls`: CIS AWS Foundations
/// Benchmark v3.0.0 and AWS Foundational Security Best Practices.
pub const FRAMEWORKS: &[&str] = &["cis-aws-3.0", "aws-fsbp"];

/// A compiled rule.
pub struct Rule {
    /// Path below the rules directory without `.rhai`, e.g. `ec2/sg_ssh_open`.
    pub id: String,
    pub path: PathBuf,
    pub resource_types: Vec<String>,
    pub description: String,
    /// Whether exposure qualifiers (`[audit.exposure]`) apply to its findings: meta
    /// `exposure_qualifiers: false` for rules whose score already is about exposure.
    pub exposure_qualifiers: bool,
    /// Compliance controls the rule implements, `framework:control`
    /// (`cis-aws-3.0:1.4`, `aws-fsbp:IAM.4`), from meta `controls`.
    pub controls: Vec<String>,
    ast: AST,
    /// What `check` reads of `item` and of `ctx`: each evaluation copies only that.
    reads: [crate::reads::Reads; 2],
    modified: Option<SystemTime>,
    source_len: u64,
    /// SHA-256 of the source: part of the rule set's identity.
    source_hash: String,
}

impl Rule {
    /// What the rule's `check` reads of `item` (see `crate::reads`).
    pub fn reads_of_item(&self) -> &crate::reads::Reads {
        &self.reads[0]
    }
}

/// A rule file that could not be loaded, with the line when the parser knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadError {
    /// The rule's id (its path below the rules directory, without `.rhai`).
    pub rule_id: String,
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path, line, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// What a rule reported, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawFinding {
    pub key: String,
    pub title: String,
    pub score: i64,
    pub severity: String,
    pub detail: String,
    pub remediation: String,
    /// `state` findings describe the configuration and are fixed when it no longer
    /// triggers them; `change` findings describe a change and stay until triaged.
    pub kind: String,
}

/// Why a rule evaluation produced no usable result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleError {
    pub rule_id: String,
    pub message: String,
    pub kind: RuleErrorKind,
}

/// What kind of failure a [`RuleError`] is: the audit pass treats them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleErrorKind {
    /// The rule raised an error or returned something that is not findings.
    Failed,
    /// The evaluation ran out of its operation or time budget.
    Budget,
    /// A helper the rule called panicked (a bug in guardrail, reported per item).
    Panicked,
    /// The rule was not run: it exhausted its budget too often in this audit pass.
    Suspended,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rule {}: {}", self.rule_id, self.message)
    }
}

pub struct Engine {
    rhai: rhai::Engine,
    limits: Limits,
}

/// Maps a score to a severity word.
pub fn severity_for(score: i64) -> &'static str {
    match score {
        i64::MIN..=0 => "info",
        1..=3 => "low",
        4..=6 => "medium",
        7..=8 => "high",
        _ => "critical",
    }
}

impl Engine {
    pub fn new(limits: Limits) -> Engine {
        let mut e = rhai::Engine::new();
        e.set_max_operations(limits.max_operations);
        e.set_max_string_size(limits.max_string_size);
        e.set_max_array_size(limits.max_array_size);
        e.set_max_map_size(limits.max_map_size);
        e.set_max_call_levels(limits.max_call_levels);
        e.set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth);
        e.set_max_modules(0);
        // Rhai's string interner is one write-locked cache per engine, taken on every
        // property access and string result; with the audit's threads sharing the
        // engine, they queued on it (two threads judged slower than one). Off: each
        // evaluation allocates its own strings instead.
        e.set_max_strings_interned(0);
        e.disable_symbol("eval");
        // Rules are self-contained: the helpers are built in, nothing is imported.
        e.disable_symbol("import");
        e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
        e.on_print(|s| tracing::info!(target: "rule", "{s}"));
        e.on_debug(|s, _, pos| tracing::debug!(target: "rule", "{pos:?} {s}"));
        e.on_progress(|ops| {
            if ops % 4096 != 0 {
                return None;
            }
            let late = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() > t));
            late.then(|| Dynamic::from("wall-clock budget exceeded"))
        });
        functions::register(&mut e);
        Engine { rhai: e, limits }
    }

    #[cfg(test)]
    pub(crate) fn rhai_for_tests(&self) -> &rhai::Engine {
        &self.rhai
    }

    /// Lets a test register a misbehaving helper (one that panics).
    #[cfg(test)]
    pub(crate) fn rhai_mut_for_tests(&mut self) -> &mut rhai::Engine {
        &mut self.rhai
    }

    /// Measures the two ways of turning an item document into a `Dynamic`: through
    /// serde_json and `rhai::serde::to_dynamic`, or Rhai's own `parse_json` on the text.
    /// Returns (serde, parse_json) nanoseconds per document.
    pub fn conversion_costs(&self, documents: &[String]) -> (f64, f64) {
        let n = documents.len().max(1) as f64;
        let t = Instant::now();
        for d in documents {
            let v: Value = serde_json::from_str(d).unwrap_or(Value::Null);
            std::hint::black_box(rhai::serde::to_dynamic(&v).ok());
        }
        let serde = t.elapsed().as_nanos() as f64 / n;
        let t = Instant::now();
        for d in documents {
            std::hint::black_box(self.rhai.parse_json(d, true).ok());
        }
        (serde, t.elapsed().as_nanos() as f64 / n)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles one rule file. `id` is its path below the rules directory.
    pub fn compile(&self, id: &str, path: &Path) -> Result<Rule, LoadError> {
        let fail = |line: Option<usize>, message: String| LoadError {
            rule_id: id.to_owned(),
            path: path.display().to_string(),
            line,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(None, format!("cannot read: {e}")))?;
        let source =
            std::fs::read_to_string(path).map_err(|e| fail(None, format!("cannot read: {e}")))?;
        let source_hash = guardrail_model::content_hash(&source);
        let ast = self
            .rhai
            .compile(&source)
            .map_err(|e| fail(e.position().line(), e.to_string()))?;
        let has = |name: &str, arity: usize| {
            ast.iter_functions()
                .any(|f| f.name == name && f.params.len() == arity)
        };
        if !has("check", 2) {
            return Err(fail(
                None,
                "no `fn check(item, ctx)`: every rule defines it and returns its findings".into(),
            ));
        }
        if !has("meta", 0) {
            return Err(fail(None, "no `fn meta()`: every rule returns #{ resource_types: [...], description: \"...\" }".into()));
        }
        let meta_value = self
            .call(&ast, "meta", ())
            .map_err(|e| fail(e.position().line(), format!("meta() failed: {e}")))?;
        let meta_json: Value = rhai::serde::from_dynamic(&meta_value)
            .map_err(|e| fail(None, format!("meta() must return a map: {e}")))?;
        let resource_types: Vec<String> = meta_json
            .get("resource_types")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if resource_types.is_empty() {
            return Err(fail(
                None,
                "meta() has no resource_types (e.g. [\"AWS::EC2::SecurityGroup\"])".into(),
            ));
        }
        let description = meta_json
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let exposure_qualifiers = match meta_json.get("exposure_qualifiers") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(fail(
                    None,
                    format!("meta() exposure_qualifiers must be true or false, not {other}"),
                ))
            }
        };
        let controls = match meta_json.get("controls") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => {
                let mut out = Vec::new();
                for c in list {
                    let text = c.as_str().unwrap_or_default();
                    match text.split_once(':') {
                        Some((framework, control))
                            if FRAMEWORKS.contains(&framework) && !control.trim().is_empty() =>
                        {
                            out.push(text.to_owned())
                        }
                        _ => {
                            return Err(fail(
                                None,
                                format!(
                                    "meta() controls: {c} is not \"framework:control\" with a framework among {FRAMEWORKS:?} (e.g. \"cis-aws-3.0:1.4\")"
                                ),
                            ))
                        }
                    }
                }
                out
            }
            Some(other) => {
                return Err(fail(
                    None,
                    format!(
                        "meta() controls must be a list like [\"cis-aws-3.0:1.4\"], not {other}"
                    ),
                ))
            }
        };
        let params: Vec<String> = ast
            .iter_functions()
            .find(|f| f.name == "check" && f.params.len() == 2)
            .map(|f| f.params.iter().map(|p| (*p).to_owned()).collect())
            .unwrap_or_default();
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        let reads = match crate::reads::of_check(&ast, &params).as_slice() {
            [item, ctx] => [item.clone(), ctx.clone()],
            _ => [crate::reads::Reads::All, crate::reads::Reads::All],
        };
        Ok(Rule {
            id: id.to_owned(),
            path: path.to_path_buf(),
            resource_types,
            description,
            exposure_qualifiers,
            controls,
            ast,
            reads,
            modified: meta.modified().ok(),
            source_len: meta.len(),
            source_hash,
        })
    }

    /// Problems a rule compiles with but would fail on at run time: calls to functions
    /// (or methods) that neither the rule defines nor guardrail or Rhai provide. Rhai
    /// resolves calls only when they run, so a typo would otherwise surface as a rule
    /// error on every item.
    pub fn lint(&self, rule: &Rule) -> Vec<LoadError> {
        let known = self.known_functions();
        let own: std::collections::HashSet<String> = rule
            .ast
            .iter_functions()
            .map(|f| f.name.to_owned())
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut problems = Vec::new();
        rule.ast.walk(&mut |path: &[rhai::ASTNode]| {
            let call = match path.last() {
                Some(rhai::ASTNode::Expr(rhai::Expr::FnCall(f, pos))) if f.op_token.is_none() => {
                    Some((f, *pos, false))
                }
                Some(rhai::ASTNode::Expr(rhai::Expr::MethodCall(f, pos))) => Some((f, *pos, true)),
                _ => None,
            };
            if let Some((f, pos, method)) = call {
                let name = f.name.as_str();
                if !f.is_qualified()
                    && !known.contains(name)
                    && !own.contains(name)
                    && seen.insert((name.to_owned(), pos.line()))
                {
                    problems.push(LoadError {
                        rule_id: rule.id.clone(),
                        path: rule.path.display().to_string(),
                        line: pos.line(),
                        message: format!(
                            "calls unknown {} `{name}` (a typo? see rules/README.md for the helpers)",
                            if method { "method" } else { "function" }
                        ),
                    });
                }
            }
            true
        });
        problems
    }

    /// Every function name callable from a rule: the helpers, Rhai's packages and the
    /// keywords the evaluator handles itself.
    fn known_functions(&self) -> std::collections::HashSet<String> {
        let mut names: std::collections::HashSet<String> = self
            .rhai
            .gen_fn_signatures(true)
            .into_iter()
            .filter_map(|sig| {
                let name = sig.split('(').next()?.trim();
                // Signatures may carry a leading qualifier (`global::`, `get$prop`).
                Some(name.rsplit("::").next().unwrap_or(name).to_owned())
            })
            .collect();
        for keyword in [
            "print",
            "debug",
            "type_of",
            "Fn",
            "call",
            "curry",
            "is_shared",
            "is_def_fn",
            "is_def_var",
            "throw",
            "this",
        ] {
            names.insert(keyword.to_owned());
        }
        names
    }

    fn call(
        &self,
        ast: &AST,
        name: &str,
        args: impl rhai::FuncArgs,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        DEADLINE.with(|d| d.set(Some(Instant::now() + self.limits.max_time)));
        let mut scope = Scope::new();
        let result = self.rhai.call_fn_with_options::<Dynamic>(
            CallFnOptions::new().eval_ast(false).rewind_scope(true),
            &mut scope,
            ast,
            name,
            args,
        );
        DEADLINE.with(|d| d.set(None));
        result
    }

    /// Runs `rule` on one item. `item` and `ctx` are built once per item and deep-copied
    /// here, only the keys the rule reads (`crate::reads`; they must not be shared
    /// values): a rule cannot change what the next one sees.
    pub fn evaluate(
        &self,
        rule: &Rule,
        item: &Dynamic,
        ctx: &Dynamic,
    ) -> Result<Vec<RawFinding>, RuleError> {
        let fail = |message: String| RuleError {
            rule_id: rule.id.clone(),
            message,
            kind: RuleErrorKind::Failed,
        };
        let out = self
            .call(
                &rule.ast,
                "check",
                (rule.reads[0].copy(item), rule.reads[1].copy(ctx)),
            )
            .map_err(|e| RuleError {
                kind: if is_budget_error(&e) {
                    RuleErrorKind::Budget
                } else {
                    RuleErrorKind::Failed
                },
                ..fail(describe_eval_error(&e))
            })?;
        let list: Vec<Dynamic> = if out.is_unit() {
            Vec::new()
        } else if out.is_array() {
            out.into_array()
                .map_err(|t| fail(format!("check() returned {t}")))?
        } else if out.is_map() {
            vec![out]
        } else {
            return Err(fail(format!(
                "check() must return an array of findings (or one finding, or nothing), not {}",
                out.type_name()
            )));
        };
        let found = list
            .iter()
            .enumerate()
            .map(|(i, f)| validate_finding(i, f).map_err(fail))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(merge_same_keys(found))
    }
}

/// One finding per key: a rule that reports the same key twice for one item (real
/// data does this, e.g. a security group listing one permission twice) means one
/// finding. The highest score wins (the first of equals), so merging never hides the
/// worse of two verdicts.
fn merge_same_keys(found: Vec<RawFinding>) -> Vec<RawFinding> {
    if found.len() < 2 {
        return found;
    }
    let mut out: Vec<RawFinding> = Vec::with_capacity(found.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    for f in found {
        match at.get(&f.key) {
            Some(&i) => {
                if f.score > out[i].score {
                    out[i] = f;
                }
            }
            None => {
                at.insert(f.key.clone(), out.len());
                out.push(f);
            }
        }
    }
    out
}

fn is_budget_error(e: &EvalAltResult) -> bool {
    matches!(
        e,
        EvalAltResult::ErrorTooManyOperations(_) | EvalAltResult::ErrorTerminated(_, _)
    )
}

/// Longest text a finding field may carry; beyond it the text is cut (and says so).
const MAX_FIELD: usize = 16 * 1024;

/// Text a rule produced, made safe to store: PostgreSQL rejects NUL in text, and one
/// huge string must not bloat every page that lists the finding.
fn clean_text(s: String) -> String {
    let s = if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    };
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut at {MAX_FIELD} bytes)", &s[..end])
}

fn describe_eval_error(e: &EvalAltResult) -> String {
    let what = match e {
        EvalAltResult::ErrorTooManyOperations(_) => {
            "ran out of its operation budget (an endless loop?)".to_owned()
        }
        EvalAltResult::ErrorTerminated(_, _) => "ran out of its time budget".to_owned(),
        EvalAltResult::ErrorStackOverflow(_) => "recursed too deep".to_owned(),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!("built a {what} larger than allowed"),
        other => other.to_string(),
    };
    match e.position().line() {
        Some(line) => format!("{what} (line {line})"),
        None => what,
    }
}

fn validate_finding(i: usize, f: &Dynamic) -> Result<RawFinding, String> {
    let v: Value =
        rhai::serde::from_dynamic(f).map_err(|e| format!("finding #{i} is not a map: {e}"))?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(|t| clean_text(t.to_owned()))
    };
    let title = text("title")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| format!("finding #{i} has no title"))?;
    let score = v
        .get("score")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("finding #{i} ({title}) has no integer score"))?;
    if !(0..=10).contains(&score) {
        return Err(format!(
            "finding #{i} ({title}) has score {score}; scores are 0 to 10"
        ));
    }
    let kind = text("kind").unwrap_or_else(|| "state".into());
    if kind != "state" && kind != "change" {
        return Err(format!(
            "finding #{i} ({title}) has kind {kind:?}; use \"state\" or \"change\""
        ));
    }
    Ok(RawFinding {
        key: text("key").unwrap_or_default(),
        severity: text("severity").unwrap_or_else(|| severity_for(score).to_owned()),
        detail: text("detail").unwrap_or_default(),
        remediation: text("remediation").unwrap_or_default(),
        title,
        score,
        kind,
    })
}

/// Every compiled rule of a directory, dispatched by resource type.
pub struct RuleSet {
    pub dir: PathBuf,
    rules: Vec<Rule>,
    by_type: HashMap<String, Vec<usize>>,
    /// What the rules of each type read of `item`, together: what an item's input
    /// must hold. Rebuilt with `by_type`, so it always matches the rules.
    reads_by_type: HashMap<String, crate::reads::Reads>,
    pub load_errors: Vec<LoadError>,
    /// Files seen changed at the last reload, by (modification time, length): a change
    /// is compiled only once it has stayed the same for one poll, so a file caught
    /// half-written (an editor truncates, then writes) is never read as the new rule.
    settling: HashMap<String, (Option<SystemTime>, u64)>,
}

fn rule_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| format!("cannot read rules directory {}: {e}", d.display()))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rhai") {
                let rel = p.strip_prefix(dir).unwrap_or(&p).with_extension("");
                let id = rel.to_string_lossy().replace('\\', "/");
                out.push((id, p));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl RuleSet {
    /// Compiles every `.rhai` file under `dir`. Files that fail are reported in
    /// `load_errors`; the rest load. An unreadable directory is an error.
    pub fn load(engine: &Engine, dir: &Path) -> Result<RuleSet, String> {
        let mut set = RuleSet {
            dir: dir.to_path_buf(),
            rules: Vec::new(),
            by_type: HashMap::new(),
            reads_by_type: HashMap::new(),
            load_errors: Vec::new(),
            settling: HashMap::new(),
        };
        for (id, path) in rule_files(dir)? {
            match engine.compile(&id, &path) {
                Ok(rule) => set.rules.push(rule),
                Err(e) => set.load_errors.push(e),
            }
        }
        set.index();
        Ok(set)
    }

    fn index(&mut self) {
        self.by_type.clear();
        for (i, r) in self.rules.iter().enumerate() {
            for t in &r.resource_types {
                self.by_type.entry(t.clone()).or_default().push(i);
            }
        }
        self.reads_by_type = self
            .by_type
            .iter()
            .map(|(t, rules)| {
                let mut all = crate::reads::Reads::Keys(Default::default());
                for &i in rules {
                    all.union(self.rules[i].reads_of_item());
                }
                (t.clone(), all)
            })
            .collect();
    }

    /// What the rules of `resource_type` read of `item`, together (`None`: no rules).
    pub fn reads_for_type(&self, resource_type: &str) -> Option<&crate::reads::Reads> {
        self.reads_by_type.get(resource_type)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A digest of what this rule set judges with: every loaded rule's id and source,
    /// and every file that failed to load. Storage records it beside each audited
    /// revision, so a changed rule set makes every item due for a new audit.
    pub fn identity(&self) -> String {
        let mut parts: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("rule\0{}\0{}", r.id, r.source_hash))
            .collect();
        parts.extend(
            self.load_errors
                .iter()
                .map(|e| format!("broken\0{}\0{}", e.path, e.message)),
        );
        parts.sort();
        guardrail_model::content_hash(&parts.join("\n"))
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn for_type<'a>(&'a self, resource_type: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.by_type
            .get(resource_type)
            .into_iter()
            .flatten()
            .map(|&i| &self.rules[i])
    }

    /// Picks up changed, new and removed rule files. A file that no longer compiles
    /// keeps its last good version running; the reason is in `load_errors`. Returns
    /// the ids of rules that changed.
    pub fn reload(&mut self, engine: &Engine) -> Result<Vec<String>, String> {
        let files = rule_files(&self.dir)?;
        let mut changed = Vec::new();
        let mut errors = Vec::new();
        let mut next: Vec<Rule> = Vec::with_capacity(files.len());
        let mut old: HashMap<String, Rule> =
            self.rules.drain(..).map(|r| (r.id.clone(), r)).collect();
        for (id, path) in files {
            let meta = std::fs::metadata(&path).ok();
            let same = old.get(&id).is_some_and(|r| {
                meta.as_ref()
                    .is_some_and(|m| m.modified().ok() == r.modified && m.len() == r.source_len)
            });
            if same {
                self.settling.remove(&id);
                if let Some(r) = old.remove(&id) {
                    next.push(r);
                }
                continue;
            }
            let stamp = meta
                .as_ref()
                .map(|m| (m.modified().ok(), m.len()))
                .unwrap_or((None, 0));
            if self.settling.get(&id) != Some(&stamp) {
                // Changed since the last look: wait one poll for it to settle, keeping
                // what runs now (and its current load error, if any).
                self.settling.insert(id.clone(), stamp);
                if let Some(r) = old.remove(&id) {
                    next.push(r);
                }
                if let Some(e) = self.load_errors.iter().find(|e| e.rule_id == id) {
                    errors.push(e.clone());
                }
                continue;
            }
            self.settling.remove(&id);
            match engine.compile(&id, &path) {
                Ok(rule) => {
                    old.remove(&id);
                    changed.push(id);
                    next.push(rule);
                }
                Err(e) => {
                    errors.push(e);
                    if let Some(r) = old.remove(&id) {
                        next.push(r); // keep the last good version
                    }
                }
            }
        }
        changed.extend(old.into_keys()); // removed files
        self.rules = next;
        self.load_errors = errors;
        self.index();
        Ok(changed)
    }
}
