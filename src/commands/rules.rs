use std::path::PathBuf;
use std::process::ExitCode;

use guardrail_auditors::{run_cases, Engine, Limits, RuleSet};

use super::{short_time, Context};
use crate::output::{self, Format, Table};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(clap::Subcommand)]
enum RulesCommand {
    /// Run rules' test cases (all rules, or the given rule files or directories).
    Test { paths: Vec<PathBuf> },
    /// Compile every rule and report problems with file and line.
    Lint,
    /// List the rules with their resource types and controls.
    List,
    /// Each resource type: where guardrail reads it from, which rules judge it, the
    /// controls they implement, and how many are stored (types stored but judged by no
    /// rule are listed too).
    Coverage,
    /// Show recent rule errors recorded during audits.
    Errors {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let format = ctx.format()?;
    let engine = Engine::new(Limits::default());
    match a.command {
        RulesCommand::Test { paths } => {
            let wanted: Vec<PathBuf> = paths
                .iter()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                .collect();
            // Paths outside the rules in use (a checkout being edited, while the
            // built-in pack judges) are tested where they are.
            let in_use = std::fs::canonicalize(&ctx.rules_dir).unwrap_or(ctx.rules_dir.clone());
            let mut roots: Vec<PathBuf> = vec![];
            for w in &wanted {
                let root = if w.starts_with(&in_use) {
                    in_use.clone()
                } else if w.is_dir() {
                    w.clone()
                } else {
                    w.parent()
                        .map_or(in_use.clone(), std::path::Path::to_path_buf)
                };
                if !roots.contains(&root) {
                    roots.push(root);
                }
            }
            if roots.is_empty() {
                roots.push(in_use);
            }
            let sets = roots
                .iter()
                .map(|r| RuleSet::load(&engine, r).map_err(|e| anyhow::anyhow!(e)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let selected = |path: &std::path::Path| {
                wanted.is_empty() || {
                    let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                    wanted
                        .iter()
                        .any(|w| p.starts_with(w) || p.with_extension("cases.json") == *w)
                }
            };
            let mut results = Vec::new();
            for rule in sets
                .iter()
                .flat_map(|s| s.rules())
                .filter(|r| selected(&r.path))
            {
                results.extend(run_cases(&engine, rule));
            }
            let load_failures: Vec<_> = sets
                .iter()
                .flat_map(|s| &s.load_errors)
                .filter(|e| selected(std::path::Path::new(&e.path)))
                .collect();
            let failed = results.iter().filter(|r| !r.passed).count() + load_failures.len();
            match format {
                Format::Text => {
                    for e in &load_failures {
                        println!("FAIL {e}");
                    }
                    for r in &results {
                        if r.passed {
                            println!("ok   {} / {}", r.rule_id, r.case);
                        } else {
                            println!("FAIL {} / {}: {}", r.rule_id, r.case, r.message);
                        }
                    }
                    println!(
                        "rules: {} passed, {} failed",
                        results.len() + load_failures.len() - failed,
                        failed
                    );
                }
                _ => output::json(
                    &serde_json::json!({"cases": results, "load_errors": load_failures}),
                )?,
            }
            if results.is_empty() && load_failures.is_empty() {
                anyhow::bail!(
                    "no rules matched {paths:?} under {}",
                    ctx.rules_dir.display()
                );
            }
            Ok(if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        RulesCommand::Lint => {
            let set = RuleSet::load(&engine, &ctx.rules_dir).map_err(|e| anyhow::anyhow!(e))?;
            let mut problems = set.load_errors.clone();
            for rule in set.rules() {
                problems.extend(engine.lint(rule));
            }
            let broken: std::collections::BTreeSet<&str> =
                problems.iter().map(|p| p.rule_id.as_str()).collect();
            match format {
                Format::Text => {
                    for e in &problems {
                        println!("{e}");
                    }
                    println!(
                        "{} rules compiled, {} with problems",
                        set.rules().len(),
                        broken.len()
                    );
                }
                _ => output::json(
                    &serde_json::json!({"compiled": set.rules().len(), "problems": problems}),
                )?,
            }
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RulesCommand::List => {
            let set = RuleSet::load(&engine, &ctx.rules_dir).map_err(|e| anyhow::anyhow!(e))?;
            match format {
                Format::Text => {
                    let mut t = Table::new(&["RULE", "RESOURCE TYPES", "CONTROLS", "DESCRIPTION"]);
                    for r in set.rules() {
                        t.row(vec![
                            r.id.clone(),
                            r.resource_types.join(", "),
                            r.controls.join(", "),
                            r.description.clone(),
                        ]);
                    }
                    t.print()?;
                }
                _ => {
                    let list: Vec<_> = set
                        .rules()
                        .iter()
                        .map(|r| serde_json::json!({"id": r.id, "resource_types": r.resource_types, "controls": r.controls, "description": r.description, "path": r.path}))
                        .collect();
                    output::json(&list)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Coverage => {
            let set = RuleSet::load(&engine, &ctx.rules_dir).map_err(|e| anyhow::anyhow!(e))?;
            let stored = match ctx.open_existing_store() {
                Ok(store) => Some(store.active_counts_by_type()?),
                Err(e) => {
                    tracing::info!("no database to count stored items: {e:#}");
                    None
                }
            };
            let rows = coverage(&set, stored.as_deref());
            match format {
                Format::Text => {
                    let mut t =
                        Table::new(&["RESOURCE TYPE", "SOURCES", "RULES", "CONTROLS", "STORED"]);
                    for r in &rows {
                        t.row(vec![
                            r.resource_type.clone(),
                            r.sources.join(", "),
                            if r.rules.is_empty() {
                                "none".to_owned()
                            } else {
                                r.rules.join(", ")
                            },
                            r.controls.join(", "),
                            r.stored
                                .map(|n| n.to_string())
                                .unwrap_or_else(|| "-".into()),
                        ]);
                    }
                    t.print()?;
                    let judged = rows.iter().filter(|r| !r.rules.is_empty()).count();
                    let unjudged: Vec<&str> = rows
                        .iter()
                        .filter(|r| r.rules.is_empty() && r.stored.unwrap_or(0) > 0)
                        .map(|r| r.resource_type.as_str())
                        .collect();
                    println!(
                        "{judged} resource types judged by {} rules",
                        set.rules().len()
                    );
                    if stored.is_none() {
                        println!("(no database: stored counts not shown; give --database)");
                    } else if !unjudged.is_empty() {
                        println!(
                            "stored but judged by no rule: {} types ({})",
                            unjudged.len(),
                            unjudged.join(", ")
                        );
                    }
                }
                _ => output::json(&rows)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Errors { limit } => {
            let store = ctx.open_existing_store()?;
            let (errors, _) = super::collect_pages(limit, None, |before, limit| {
                let page = store.rule_errors_page(before, limit)?;
                let next = super::before_cursor(&page, limit, |e| e.id);
                Ok((page, next))
            })?;
            match format {
                Format::Text => {
                    let mut t = Table::new(&["AT", "RULE", "ITEM", "ERROR"]);
                    for e in &errors {
                        t.row(vec![
                            short_time(&e.at),
                            e.rule_id.clone(),
                            e.item_id.map(|i| i.to_string()).unwrap_or_default(),
                            e.message.clone(),
                        ]);
                    }
                    t.print()?;
                }
                _ => output::json(&errors)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One resource type's coverage.
#[derive(Debug, serde::Serialize)]
struct Coverage {
    resource_type: String,
    sources: Vec<String>,
    rules: Vec<String>,
    controls: Vec<String>,
    /// Active items stored (`None`: no database to ask).
    stored: Option<i64>,
}

/// Every type a lister reads, a rule judges or the database holds, with each side.
fn coverage(set: &RuleSet, stored: Option<&[(String, i64)]>) -> Vec<Coverage> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut types: BTreeMap<String, Coverage> = BTreeMap::new();
    fn entry<'a>(
        types: &'a mut BTreeMap<String, Coverage>,
        t: &str,
        stored: bool,
    ) -> &'a mut Coverage {
        types.entry(t.to_owned()).or_insert_with(|| Coverage {
            resource_type: t.to_owned(),
            // AWS Config deliveries and the Config API carry any type AWS Config records.
            sources: vec!["AWS Config".to_owned()],
            rules: Vec::new(),
            controls: Vec::new(),
            stored: stored.then_some(0),
        })
    }
    let has_store = stored.is_some();
    // Types guardrail's own listers make up because AWS Config records no such thing.
    const NOT_IN_CONFIG: &[&str] = &["AWS::IAM::Account", "AWS::EC2::Snapshot", "AWS::EC2::Image"];
    for (service, t) in guardrail_watchers::aws::native_types() {
        entry(&mut types, &t, has_store)
            .sources
            .push(format!("API ({service})"));
    }
    for r in set.rules() {
        for t in &r.resource_types {
            let c = entry(&mut types, t, has_store);
            c.rules.push(r.id.clone());
            c.controls.extend(r.controls.iter().cloned());
        }
    }
    for (t, n) in stored.unwrap_or_default() {
        entry(&mut types, t, has_store).stored = Some(*n);
    }
    for t in NOT_IN_CONFIG {
        if let Some(c) = types.get_mut(*t) {
            c.sources.retain(|s| s != "AWS Config");
        }
    }
    types
        .into_values()
        .map(|mut c| {
            let controls: BTreeSet<String> = c.controls.drain(..).collect();
            c.controls = controls.into_iter().collect();
            c
        })
        .collect()
}
