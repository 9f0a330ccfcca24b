use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use guardrail_auditors::helpers::{explain, policy};
use serde_json::{json, Value};

use super::Context;
use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(clap::Subcommand)]
enum PolicyCommand {
    /// How guardrail judges a policy: per statement who, what, where and whether each
    /// condition restricts who (and why), then the verdicts (open to anyone, other
    /// accounts, administrator access, NotAction, privilege escalation paths).
    Explain {
        /// A file holding a policy document (JSON, raw or URL-encoded), or a stored
        /// item (id, ARN, resource id or name) whose policies to explain.
        target: String,
        /// The account that owns the policy (default: the item's; for a file, every
        /// account counts as another).
        #[arg(long)]
        account: Option<String>,
    },
    /// Runs the reference corpus of policy cases (`auditors/corpus/*.json`) and prints
    /// the agreement table: per verdict, per source of the expectation, and the public
    /// tools' verdicts it disputes. Exits 1 when guardrail disagrees with a case.
    Corpus {
        /// The corpus directory (default: the source tree's `auditors/corpus`).
        dir: Option<std::path::PathBuf>,
    },
}

fn corpus(ctx: &Context, dir: Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    use guardrail_auditors::corpus;
    let dir = dir.unwrap_or_else(corpus::default_dir);
    let report = corpus::run(&dir).map_err(|e| anyhow!(e))?;
    match ctx.format()? {
        Format::Text => print!("{}", report.to_text()),
        _ => output::json(&report)?,
    }
    Ok(if report.failures().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The policy documents of a stored item: an IAM identity's or managed policy's
/// documents, a role's trust policy, a bucket policy, or a `policy` field AWS Config
/// records for other types (SQS, SNS, KMS, Lambda, ...).
fn item_documents(resource_type: &str, config: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> =
        guardrail_auditors::shapes::iam_policy_documents(resource_type, config)
            .into_iter()
            .filter(|p| !p["document"].is_null())
            .map(|p| {
                (
                    format!(
                        "{} policy {}",
                        p["source"].as_str().unwrap_or("attached"),
                        p["name"].as_str().unwrap_or("?")
                    ),
                    p["document"].clone(),
                )
            })
            .collect();
    let c = &config["configuration"];
    let s = &config["supplementaryConfiguration"];
    for (label, v) in [
        ("trust policy", &c["assumeRolePolicyDocument"]),
        ("bucket policy", &s["BucketPolicy"]["policyText"]),
        ("resource policy", &c["policy"]),
        ("resource policy", &s["Policy"]),
    ] {
        if !v.is_null() {
            out.push((label.to_owned(), v.clone()));
        }
    }
    out
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let (target, account) = match a.command {
        PolicyCommand::Explain { target, account } => (target, account),
        PolicyCommand::Corpus { dir } => return corpus(ctx, dir),
    };
    let path = std::path::Path::new(&target);
    let (own, documents) = if path.is_file() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // Not JSON: perhaps URL-encoded text, which the decoder below reads or names.
        let doc: Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|_| Value::String(text.trim().to_owned()));
        (
            account.unwrap_or_default(),
            vec![(path.display().to_string(), doc)],
        )
    } else {
        let store = ctx.open_existing_store()?;
        let item = store
            .resolve_item(&target)
            .map_err(|e| anyhow!("{e} (or give the path of a file holding a policy document)"))?;
        let rev = store
            .revision_by_version(item.id, item.version)?
            .ok_or_else(|| anyhow!("item {} has no stored revision", item.id))?;
        // A revision stores the observation: its AWS Config shape is under `config`.
        let config = rev
            .document_json()?
            .get("config")
            .cloned()
            .unwrap_or(Value::Null);
        let docs = item_documents(&item.resource_type, &config);
        if docs.is_empty() {
            anyhow::bail!(
                "{} holds no policy document guardrail can read",
                item.label()
            );
        }
        (account.unwrap_or(item.account.clone()), docs)
    };
    let boundary = ctx.config.audit.boundary();
    let mut explained = Vec::new();
    for (label, doc) in documents {
        let decoded = guardrail_model::policy::decode_policy_value(&doc)
            .map_err(|e| anyhow!("{label}: not a policy document: {e}"))?;
        let mut p = policy::Policy::parse(&decoded)
            .map_err(|e| anyhow!("{label}: malformed policy document: {e}"))?;
        p.boundary = boundary.clone();
        let e = explain::explain(&p, &own).map_err(|e| anyhow!(e))?;
        explained.push((label, e));
    }
    match ctx.format()? {
        Format::Text => {
            for (label, e) in &explained {
                println!("== {label}");
                print!("{}", e.to_text());
            }
        }
        _ => output::json(
            &explained
                .iter()
                .map(|(label, e)| json!({"policy": label, "account": own, "explanation": e}))
                .collect::<Vec<_>>(),
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
