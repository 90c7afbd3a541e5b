//! `safer-ring`: what the running kernel offers and which backend a ring would use.

use std::process::ExitCode;

mod bench;
mod features;

use clap::{Parser, Subcommand};
use safer_ring::Ring;

#[derive(Parser)]
#[command(
    name = "safer-ring",
    version,
    about = "safer-ring: safe io_uring with an epoll fallback"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Which backend `Ring::new` picks here, and why.
    Backend,
    /// What this kernel's io_uring offers, how each feature was detected, and what is used.
    Features {
        /// Print one JSON object instead of a table.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print the static feature matrix (docs/FEATURES.md) as markdown; detects nothing, so
        /// the output is the same on every machine.
        #[arg(long)]
        markdown: bool,
    },
    /// Each enhanced mechanism on this kernel against its fallback and against epoll.
    Bench {
        /// Print JSON rows instead of a table.
        #[arg(long)]
        json: bool,
        /// A tenth of the work (a smoke run).
        #[arg(long)]
        quick: bool,
        /// Only these benches (comma-separated): nop, msg_ring, msg_rtt, fd_passing, accept,
        /// send, recv.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

fn backend() -> ExitCode {
    match Ring::new(8) {
        Ok(ring) => {
            let info = ring.info();
            println!("backend: {}", info.backend);
            if let Some(reason) = &info.fallback_reason {
                println!("reason: {reason}");
            }
            if let Some(s) = info.setup {
                println!(
                    "setup: coop_taskrun={} single_issuer={} defer_taskrun={} features={:#x}",
                    s.coop_taskrun, s.single_issuer, s.defer_taskrun, s.features
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot create a ring: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(as_json: bool, markdown: bool) -> ExitCode {
    if markdown {
        print!("{}", features::markdown());
        return ExitCode::SUCCESS;
    }
    let report = safer_ring::features::detected();
    let choice = features::backend_choice();
    if as_json {
        match serde_json::to_string_pretty(&features::json(report, &choice)) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", features::table(report, &choice));
    }
    if choice.backend.is_none() {
        eprintln!(
            "error: no ring can start: {}",
            choice.reason.unwrap_or_default()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn bench(as_json: bool, quick: bool, only: &[String]) -> ExitCode {
    let scale = if quick { 1 } else { 10 };
    match bench::run_all(only, scale) {
        Ok(rows) if as_json => match serde_json::to_string_pretty(&rows) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot encode the results: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(rows) => {
            print!("{}", bench::table(&rows));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => {
            println!("safer-ring {}", env!("CARGO_PKG_VERSION"));
            backend()
        }
        Some(Command::Backend) => backend(),
        Some(Command::Features { json, markdown }) => report(json, markdown),
        Some(Command::Bench { json, quick, only }) => bench(json, quick, &only),
    }
}
