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
    /// Each enhanced mechanism on this kernel against its fallback and against epoll: a
    /// warm-up, then interleaved samples, medians with 95 % intervals and ratios.
    Bench {
        /// Print every sample and the estimates as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// A tenth of the work per sample (a smoke run).
        #[arg(long)]
        quick: bool,
        /// Only these benches (comma-separated): nop, nop1, msg_ring, msg_rtt, fd_passing,
        /// accept, send, recv.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Samples per variant, at least 3 (default 20; with --time-budget, the maximum).
        #[arg(long, value_name = "N", value_parser = parse_samples)]
        samples: Option<usize>,
        /// Per bench, stop taking samples after this many seconds (after 3 rounds).
        #[arg(long, value_name = "SECS", value_parser = parse_budget, allow_negative_numbers = true)]
        time_budget: Option<std::time::Duration>,
        /// Also draw the results as SVG into this file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<std::path::PathBuf>,
    },
}

fn parse_samples(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("expected a whole number of samples, got {s:?}"))?;
    if n < bench::MIN_SAMPLES {
        return Err(format!(
            "expected at least {} samples per variant (an interval needs them), got {n}",
            bench::MIN_SAMPLES
        ));
    }
    Ok(n)
}

fn parse_budget(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() && x < 1e9 => Ok(std::time::Duration::from_secs_f64(x)),
        _ => Err(format!(
            "expected a positive number of seconds (e.g. 5 or 0.5), got {s:?}"
        )),
    }
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

fn bench(as_json: bool, plot: Option<&std::path::Path>, opts: &bench::Options) -> ExitCode {
    // Opened first, so an unwritable path fails before minutes of measuring.
    let plot = match plot.map(|p| std::fs::File::create(p).map(|f| (p, f)).map_err(|e| (p, e))) {
        Some(Err((p, e))) => {
            eprintln!("error: --plot: cannot write {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
        Some(Ok(f)) => Some(f),
        None => None,
    };
    let results = match bench::run_all(opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((path, mut file)) = plot {
        use std::io::Write;
        let written = bench::svg(&results).and_then(|svg| {
            file.write_all(svg.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        });
        if let Err(e) = written {
            eprintln!("error: --plot: {e}");
            return ExitCode::FAILURE;
        }
    }
    if as_json {
        match serde_json::to_string_pretty(&bench::json(opts, &results)) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode the results: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", bench::table(&results));
    }
    ExitCode::SUCCESS
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
        Some(Command::Bench {
            json,
            quick,
            only,
            samples,
            time_budget,
            plot,
        }) => {
            let opts = bench::Options {
                only,
                scale: if quick { 1 } else { 10 },
                samples,
                time_budget,
            };
            bench(json, plot.as_deref(), &opts)
        }
    }
}
