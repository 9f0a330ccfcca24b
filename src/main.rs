//! `guardrail`: a passive cloud-configuration guardrail monitor.
//!
//! This binary wires the crates together: watchers feed storage, and the commands
//! read storage back. It owns no domain logic of its own.

mod attribution;
mod audit;
mod commands;
mod config;
mod events;
mod jobs;
mod leases;
mod output;
mod pipeline;
mod rules_pack;
mod scheduler;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use output::Format;

// glibc's malloc spent a sixth of the server's CPU under load (arena contention and
// consolidation across the blocking pool's threads); mimalloc's per-thread heaps
// do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

    /// Configuration file (TOML): database, accounts, audit settings.
    #[arg(long, global = true, env = "GUARDRAIL_CONFIG")]
    config: Option<PathBuf>,

    /// Rule directory used by every command that audits (default: `rules` in the
    /// configuration file, else the pack built into this binary).
    #[arg(long, global = true, env = "GUARDRAIL_RULES")]
    rules: Option<PathBuf>,

    /// Output format for results (csv and ocsf: findings only).
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
    /// Snapshot configuration (AWS APIs, or AWS Config deliveries from a directory or
    /// S3) and record what changed.
    Sweep(commands::sweep::Args),
    /// Check access to the configured AWS accounts (read-only probes).
    Accounts {
        #[command(subcommand)]
        command: commands::accounts::Command,
    },
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
    /// Run continuously: sweep a source on an interval, pick up rule changes without restart.
    Watch(commands::watch::Args),
    /// Read EventBridge events (CloudTrail API calls, AWS Config item changes) from an SQS queue and refresh the items they name, in seconds
    Events(commands::events::Args),
    /// Run the server: web UI, JSON API and metrics, plus the scheduler of `watch`.
    Serve(commands::serve::Args),
    /// Run the scheduler and event sources without the server: one of several
    /// processes sharing a PostgreSQL database (sweep jobs are leased between them).
    Worker(commands::worker::Args),
    /// Create, list and revoke API tokens for the server.
    Token(commands::token::Args),
    /// Deliver queued notifications, or send a sample through a route.
    Notify(commands::notify::Args),
    /// Show queued, failed, delivered and given-up notifications.
    Outbox(commands::notify::OutboxArgs),
    /// Re-audit every item with the current rules and settings.
    Audit,
    /// List, show, justify and export findings.
    Findings(commands::findings::Args),
    /// Rule-author tools: test cases, lint, list, errors.
    Rules(commands::rules::Args),
    /// Explain how guardrail judges a policy document (a file or a stored item's).
    Policy(commands::policy::Args),
    /// Measure ingest throughput on synthetic AWS Config data.
    Bench(commands::bench::Args),
}

impl Command {
    /// Commands that read the database and print, with no sockets of their own (the
    /// database client handles its own): `| head` may close their output early.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Items(_)
                | Command::History(_)
                | Command::Diff(_)
                | Command::Changes(_)
                | Command::Show(_)
                | Command::Sweeps(_)
                | Command::Status
                | Command::Findings(_)
                | Command::Rules(_)
                | Command::Policy(_)
                | Command::Outbox(_)
        )
    }
}

/// Rust ignores SIGPIPE, so a reader that stops early (`guardrail findings --format csv
/// | head`) turns every later write into an error or a panic in `println!`. For
/// commands that only print, the default action is right: stop quietly, as `cat` does.
/// Never for commands with sockets (serve, notify, sweeps of AWS), where a peer
/// closing a connection must not kill the process.
fn quiet_on_closed_pipe() {
    // SAFETY: called once at start-up, before any thread is spawned; restoring the
    // default disposition of one signal has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// sysexits.h EX_USAGE: the command line is wrong.
const USAGE: u8 = 64;

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
    // Before anything can open a TLS connection (ARCHITECTURE.md, invariant 10).
    guardrail_notify::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // Exit code 2 means "finished, but met bad input or rules that did not
            // judge" (README); a wrong command line is EX_USAGE.
            let _ = e.print();
            return ExitCode::from(USAGE);
        }
    };
    init_logging(cli.verbose);
    let config = match &cli.config {
        Some(path) => match config::Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        None => config::Config::default(),
    };
    let rules_dir = match rules_pack::resolve(cli.rules, config.rules.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = commands::Context {
        database_url: cli
            .database
            .or_else(|| config.database.url.clone())
            .unwrap_or_else(default_database_url),
        format: cli.format,
        rules_dir,
        config,
        config_path: cli.config.clone(),
    };
    if cli.command.only_prints() {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Sweep(a) => commands::sweep::run(&ctx, a),
        Command::Accounts { command } => commands::accounts::run(&ctx, command),
        Command::Items(a) => commands::items::run(&ctx, a),
        Command::History(a) => commands::history::run(&ctx, a),
        Command::Diff(a) => commands::diff::run(&ctx, a),
        Command::Changes(a) => commands::changes::run(&ctx, a),
        Command::Show(a) => commands::show::run(&ctx, a),
        Command::Sweeps(a) => commands::sweeps::run(&ctx, a),
        Command::Watch(a) => commands::watch::run(&ctx, a),
        Command::Events(a) => commands::events::run(&ctx, a),
        Command::Serve(a) => commands::serve::run(&ctx, a),
        Command::Worker(a) => commands::worker::run(&ctx, a),
        Command::Token(a) => commands::token::run(&ctx, a),
        Command::Notify(a) => commands::notify::run(&ctx, a),
        Command::Outbox(a) => commands::notify::outbox(&ctx, a),
        Command::Audit => commands::audit::run(&ctx),
        Command::Findings(a) => commands::findings::run(&ctx, a),
        Command::Rules(a) => commands::rules::run(&ctx, a),
        Command::Policy(a) => commands::policy::run(&ctx, a),
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
