//! `safer-ring`: what the running kernel offers and which backend a ring would use.

use std::process::ExitCode;

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
    /// The kernel's io_uring report (currently: the backend choice and setup flags).
    Features,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => {
            println!("safer-ring {}", env!("CARGO_PKG_VERSION"));
            backend()
        }
        Some(Command::Backend | Command::Features) => backend(),
    }
}
