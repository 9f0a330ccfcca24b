use std::process::ExitCode;

use anyhow::anyhow;
use chrono::{DateTime, NaiveDate, Utc};
use guardrail_model::{DiffOp, FindingState};
use guardrail_storage::{finding_json, to_ocsf, FindingQuery, FindingRow, OCSF_VERSION};
use serde_json::{json, Value};

use super::{short_time, Context};
use crate::output::{self, Format, Table};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<FindingsCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(clap::Args)]
struct ListArgs {
    /// open, fixed, justified, suppressed, or all (repeatable).
    #[arg(long, default_value = "open")]
    state: Vec<String>,
    #[arg(long)]
    min_score: Option<i64>,
    #[arg(long)]
    account: Option<String>,
    /// Resource type, e.g. AWS::S3::Bucket.
    #[arg(long = "type")]
    resource_type: Option<String>,
    /// Rule id, e.g. ec2/sg_admin_ports_open.
    #[arg(long)]
    rule: Option<String>,
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// Continue after an earlier listing that was cut (the cursor its note gave).
    #[arg(long)]
    after: Option<String>,
    /// Instead of findings, each control of a compliance framework (`cis-aws-3.0`,
    /// `aws-fsbp`) with its status, pass/fail counts and failing resources.
    #[arg(long)]
    framework: Option<String>,
}

#[derive(clap::Subcommand)]
enum FindingsCommand {
    /// The finding, its resource, the change that opened it, and its history.
    Show { id: i64 },
    /// Accept a finding: who, why, and until when.
    Justify {
        id: i64,
        #[arg(long)]
        reason: String,
        /// Expiry (YYYY-MM-DD or RFC 3339); after it the finding reopens.
        #[arg(long)]
        until: Option<String>,
        /// Who justifies it (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Remove a justification.
    Unjustify {
        id: i64,
        #[arg(long)]
        by: Option<String>,
    },
}

fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into())
}

fn parse_until(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| anyhow!("--until {s:?}: use a date like 2027-03-01 or an RFC 3339 time"))
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    match a.command {
        None => list(ctx, &store, a.list),
        Some(FindingsCommand::Show { id }) => show(ctx, &store, id),
        Some(FindingsCommand::Justify {
            id,
            reason,
            until,
            by,
        }) => {
            let until = until.as_deref().map(parse_until).transpose()?;
            let f = store.justify(id, &who(by), &reason, until, Utc::now())?;
            print_one(ctx, &store, &f)
        }
        Some(FindingsCommand::Unjustify { id, by }) => {
            let f = store.unjustify(id, &who(by), Utc::now())?;
            print_one(ctx, &store, &f)
        }
    }
}

fn print_one(
    ctx: &Context,
    store: &guardrail_storage::Store,
    f: &FindingRow,
) -> anyhow::Result<ExitCode> {
    let item = store
        .item(f.item_id)?
        .ok_or_else(|| anyhow!("finding {} has no item", f.id))?;
    match ctx.format()? {
        Format::Text => println!("finding {} is now {}: {}", f.id, f.state, f.title),
        _ => output::json(&finding_json(f, &item))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Failing resources shown per control.
const FAILING_SHOWN: usize = 10;

/// A framework's report from the rules in `rules_dir` and the stored findings: what
/// `findings --framework` prints and the server's compliance page shows.
pub fn compliance_report(
    store: &guardrail_storage::Store,
    rules_dir: &std::path::Path,
    framework: &str,
) -> anyhow::Result<guardrail_auditors::compliance::Report> {
    use guardrail_auditors::compliance;
    use std::collections::{BTreeMap, HashMap};
    let engine = guardrail_auditors::Engine::new(guardrail_auditors::Limits::default());
    let rules = guardrail_auditors::RuleSet::load(&engine, rules_dir).map_err(|e| anyhow!(e))?;
    let stored: HashMap<String, i64> = store.active_counts_by_type()?.into_iter().collect();
    let mut failing: HashMap<String, BTreeMap<i64, String>> = HashMap::new();
    for rule_ids in compliance::rules_by_control(&rules, framework).values() {
        for rule in rule_ids {
            if failing.contains_key(rule) {
                continue;
            }
            let mut q = FindingQuery {
                states: vec![FindingState::Open],
                rule_id: Some(rule.clone()),
                ..FindingQuery::default()
            };
            let (rows, _) = super::collect_pages(i64::MAX, None, |cursor, limit| {
                q.cursor = cursor;
                q.limit = limit;
                let page = store.findings_page(&q)?;
                Ok((page.rows, page.next_cursor))
            })?;
            failing.insert(
                rule.clone(),
                rows.into_iter()
                    .map(|(_, item)| (item.id, item.label()))
                    .collect(),
            );
        }
    }
    let unhealthy: std::collections::BTreeSet<String> = store
        .unhealthy_rules()?
        .into_iter()
        .map(|h| h.rule_id)
        .collect();
    compliance::report(
        framework,
        &rules,
        &stored,
        &failing,
        &unhealthy,
        FAILING_SHOWN,
    )
    .map_err(|e| anyhow!(e))
}

fn compliance(
    ctx: &Context,
    store: &guardrail_storage::Store,
    framework: &str,
) -> anyhow::Result<ExitCode> {
    let report = compliance_report(store, &ctx.rules_dir, framework)
        .map_err(|e| anyhow!("--framework: {e:#}"))?;
    match ctx.format()? {
        Format::Text => {
            println!("{} ({})", report.name, report.framework);
            let mut t = Table::new(&["CONTROL", "STATUS", "FAILING", "PASSING", "RULES", "TITLE"]);
            for c in &report.controls {
                let manual = if c.automated { "" } else { " (manual)" };
                t.row(vec![
                    c.id.clone(),
                    format!("{}{manual}", c.status),
                    c.failing.to_string(),
                    c.passing.to_string(),
                    c.rules.join(", "),
                    c.title.clone(),
                ]);
            }
            t.print()?;
            for c in report.controls.iter().filter(|c| c.failing > 0) {
                println!("{} failing: {}", c.id, c.failing_resources.join("; "));
            }
            println!(
                "{} controls: {} fail, {} with rule errors, {} pass, {} nothing to judge, {} not covered by any rule",
                report.controls.len(),
                report.count("fail"),
                report.count("rule errors"),
                report.count("pass"),
                report.count("nothing to judge"),
                report.count("not covered")
            );
            if !report.complete_catalogue {
                println!("(no catalogue of {framework} is bundled: only the controls rules declare are listed)");
            }
        }
        _ => output::json(&report)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn list(ctx: &Context, store: &guardrail_storage::Store, a: ListArgs) -> anyhow::Result<ExitCode> {
    store.lapse_expired_justifications(Utc::now())?;
    if let Some(framework) = &a.framework {
        return compliance(ctx, store, framework);
    }
    let states = FindingState::parse_filter(&a.state).map_err(|e| anyhow!("--{e}"))?;
    let mut q = FindingQuery {
        states,
        min_score: a.min_score,
        account: a.account,
        resource_type: a.resource_type,
        rule_id: a.rule,
        ..FindingQuery::default()
    };
    let (rows, next) = super::collect_pages(a.limit, a.after, |cursor, limit| {
        q.cursor = cursor;
        q.limit = limit;
        let page = store.findings_page(&q)?;
        Ok((page.rows, page.next_cursor))
    })?;
    super::note_more(rows.len(), "findings", next);
    match ctx.format {
        Format::Json => output::json(
            &rows
                .iter()
                .map(|(f, i)| finding_json(f, i))
                .collect::<Vec<_>>(),
        )?,
        Format::Ocsf => {
            eprintln!("OCSF {OCSF_VERSION} Compliance Finding (class 2003)");
            output::json(&rows.iter().map(|(f, i)| to_ocsf(f, i)).collect::<Vec<_>>())?
        }
        Format::OcsfNdjson => {
            use std::io::Write as _;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for (f, i) in &rows {
                serde_json::to_writer(&mut out, &to_ocsf(f, i))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(guardrail_storage::FINDING_CSV_COLUMNS)?;
            for (f, i) in &rows {
                w.write_record(guardrail_storage::finding_csv_fields(f, i))?;
            }
            w.flush()?;
        }
        Format::Text => {
            let mut t = Table::new(&[
                "ID", "SCORE", "SEVERITY", "STATE", "ACCOUNT", "RULE", "RESOURCE", "TITLE",
            ]);
            for (f, i) in &rows {
                t.row(vec![
                    f.id.to_string(),
                    f.score.to_string(),
                    f.severity.clone(),
                    f.state.to_string(),
                    i.account.clone(),
                    f.rule_id.clone(),
                    format!(
                        "{} {}",
                        i.resource_type.trim_start_matches("AWS::"),
                        i.name.as_deref().unwrap_or(&i.resource_id)
                    ),
                    f.title.clone(),
                ]);
            }
            t.print()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Context, store: &guardrail_storage::Store, id: i64) -> anyhow::Result<ExitCode> {
    let f = store
        .finding(id)?
        .ok_or_else(|| anyhow!("no finding {id}; see `guardrail findings`"))?;
    let item = store
        .item(f.item_id)?
        .ok_or_else(|| anyhow!("finding {id} has no item"))?;
    let events = store.finding_events(id)?;
    // The change that opened it: the revision first judged, against the one before.
    let (opening, change) = match f.first_revision_id.map(|rid| store.revision_diff(rid)) {
        Some(found) => match found? {
            Some((rev, d)) => {
                let change = (rev.version > 1).then_some((rev.version, d));
                (Some(rev), change)
            }
            None => (None, None),
        },
        None => (None, None),
    };
    match ctx.format()? {
        Format::Text => {
            println!(
                "finding {} [{}] score {} ({}) — {}",
                f.id, f.state, f.score, f.severity, f.title
            );
            println!("rule      {} (key {:?})", f.rule_id, f.finding_key);
            println!("resource  {} [item {}]", item.label(), item.id);
            if let Some(arn) = &item.arn {
                println!("          {arn}");
            }
            println!("detail    {}", f.detail);
            println!("fix       {}", f.remediation);
            if let (Some(by), Some(why)) = (&f.justified_by, &f.justification) {
                let until = f
                    .justified_until
                    .map(|u| format!(" until {}", short_time(&u)))
                    .unwrap_or_default();
                println!("justified by {by}: {why}{until}");
            }
            match (&opening, &change) {
                (_, Some((version, entries))) => {
                    println!("opened by the change to v{version}:");
                    for e in entries {
                        let v = |x: &Option<Value>| {
                            x.as_ref().map(|v| v.to_string()).unwrap_or_default()
                        };
                        match e.op {
                            DiffOp::Added => println!("  + {}: {}", e.path, v(&e.new)),
                            DiffOp::Removed => println!("  - {}: {}", e.path, v(&e.old)),
                            DiffOp::Changed => {
                                println!("  ~ {}: {} → {}", e.path, v(&e.old), v(&e.new))
                            }
                        }
                    }
                }
                (Some(rev), None) => println!(
                    "present since v{} ({} {})",
                    rev.version,
                    rev.change,
                    short_time(&rev.observed_at)
                ),
                _ => {}
            }
            if let Some(a) = opening.as_ref().and_then(|r| r.actor()) {
                let when = a
                    .event_time
                    .map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                    .unwrap_or_default();
                let how = a
                    .event_name
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                println!("changed by {}{how}{when}", a.label());
            }
            println!("history:");
            for e in &events {
                let actor = e
                    .actor
                    .as_deref()
                    .map(|a| format!(" by {a}"))
                    .unwrap_or_default();
                println!("  {} {}{}: {}", short_time(&e.at), e.event, actor, e.detail);
            }
        }
        _ => output::json(&json!({
            "finding": finding_json(&f, &item),
            "item": item,
            "opened_by": opening.as_ref().map(|r| json!({"revision": r, "changes": change.as_ref().map(|c| &c.1)})),
            "events": events,
        }))?,
    }
    Ok(ExitCode::SUCCESS)
}
