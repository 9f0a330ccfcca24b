//! `guardrail token`: API tokens for the server's API and UI login. The secret is
//! printed once, at creation; only its SHA-256 is stored.

use std::process::ExitCode;

use chrono::Utc;
use guardrail_storage::Role;

use super::Context;
use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create a token; prints the secret once (on stdout, alone, for scripts).
    Create {
        /// A unique name: who or what uses the token (recorded on justifications).
        #[arg(long)]
        name: String,
        /// viewer (read), triager (also justify), admin (also manage tokens).
        #[arg(long)]
        role: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name; its browser sessions end too.
    Revoke { name: String },
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    match a.command {
        Command::Create { name, role } => {
            let role = Role::parse(&role)?;
            let (row, secret) = store.create_token(&name, role, Utc::now())?;
            match ctx.format()? {
                Format::Json => output::json(&serde_json::json!({
                    "name": row.name, "role": row.role, "token": secret,
                }))?,
                _ => {
                    eprintln!(
                        "created token {:?} with role {}; it is shown once, store it now:",
                        row.name, row.role
                    );
                    println!("{secret}");
                }
            }
        }
        Command::List => {
            let rows = store.tokens()?;
            match ctx.format()? {
                Format::Json => output::json(&rows)?,
                _ => {
                    if rows.is_empty() {
                        println!("no tokens; create one with `guardrail token create --name NAME --role admin`");
                    }
                    for t in rows {
                        println!(
                            "{:<24} {:<8} created {}  last used {}{}",
                            t.name,
                            t.role,
                            super::short_time(&t.created_at),
                            t.last_used_at
                                .as_ref()
                                .map(super::short_time)
                                .unwrap_or_else(|| "never".into()),
                            t.revoked_at
                                .as_ref()
                                .map(|r| format!("  REVOKED {}", super::short_time(r)))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
        Command::Revoke { name } => {
            if !store.revoke_token(&name, Utc::now())? {
                anyhow::bail!("no live token named {name:?}; see `guardrail token list`");
            }
            println!("revoked {name:?} and ended its sessions");
        }
    }
    Ok(ExitCode::SUCCESS)
}
