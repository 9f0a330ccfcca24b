//! `guardrail`: a passive cloud-configuration guardrail monitor.
//!
//! This binary wires the crates together: watchers feed storage, and the commands
//! read storage back. It owns no domain logic of its own.

mod commands;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use output::Format;

#[derive(Parser)]
#[command(
    name = "guardrail",
    version,
    about = "Passive cloud-configuration guardrail monitor: watch, remember every change, judge it, tell people"
)]
struct Cli {
    /// Database URL: sqlite://PATH (default) or postgres://USER@HOST:PORT/DB.
    #[arg(long, global = true, env = "GUARDRAIL_DATABASE_URL")]
    database: Option<String>,

    /// Output format for results.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest AWS Config snapshot/history files and record what changed.
    Sweep(commands::sweep::Args),
    /// List stored items.
    Items(commands::items::Args),
    /// Show an item's revisions, newest first.
    History(commands::history::Args),
    /// Show what changed between two revisions of an item, path by path.
    Diff(commands::diff::Args),
    /// List what changed: the revisions of a sweep (default: the latest) or since a time.
    Changes(commands::changes::Args),
    /// Show an item's stored configuration, now or at a point in time.
    Show(commands::show::Args),
    /// List recent sweeps and their health (errors, completeness).
    Sweeps(commands::sweeps::Args),
    /// Show what the database holds: items, revisions, size, the last sweep.
    Status,
    /// Measure ingest throughput on synthetic AWS Config data.
    Bench(commands::bench::Args),
}

fn default_database_url() -> String {
    let base = dirs::data_dir().unwrap_or_else(|| PathBuf::from("."));
    format!(
        "sqlite://{}",
        base.join("guardrail").join("guardrail.db").display()
    )
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let ctx = commands::Context {
        database_url: cli.database.unwrap_or_else(default_database_url),
        format: cli.format,
    };
    let result = match cli.command {
        Command::Sweep(a) => commands::sweep::run(&ctx, a),
        Command::Items(a) => commands::items::run(&ctx, a),
        Command::History(a) => commands::history::run(&ctx, a),
        Command::Diff(a) => commands::diff::run(&ctx, a),
        Command::Changes(a) => commands::changes::run(&ctx, a),
        Command::Show(a) => commands::show::run(&ctx, a),
        Command::Sweeps(a) => commands::sweeps::run(&ctx, a),
        Command::Status => commands::status::run(&ctx),
        Command::Bench(a) => commands::bench::run(&ctx, a),
    };
    match result {
        Ok(code) => code,
        // `guardrail items | head` closing the pipe early is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    || c.downcast_ref::<serde_json::Error>()
                        .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
