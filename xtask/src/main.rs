//! `cargo xtask kernel-matrix`: runs the integration tests as the only userspace program of real
//! Debian cloud kernels (5.10, 6.1, 6.12, and 6.12 with io_uring disabled) under QEMU, and
//! natively on the host kernel; prints a PASS/FAIL table and exits non-zero on any failure.

mod build;
mod guest;
mod kernels;

use std::process::ExitCode;
use std::time::Instant;

/// One row of the matrix.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: &'static str,
    /// `None` for the host kernel.
    pub series: Option<kernels::Series>,
    /// Extra kernel command line.
    pub cmdline: &'static str,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "host",
        series: None,
        cmdline: "",
    },
    Target {
        name: "5.10",
        series: Some(kernels::Series::V5_10),
        cmdline: "",
    },
    Target {
        name: "6.1",
        series: Some(kernels::Series::V6_1),
        cmdline: "",
    },
    Target {
        name: "6.12",
        series: Some(kernels::Series::V6_12),
        cmdline: "",
    },
    Target {
        name: "6.12-io_uring-disabled",
        series: Some(kernels::Series::V6_12),
        cmdline: "sysctl.kernel.io_uring_disabled=2",
    },
];

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask kernel-matrix [--only NAME[,NAME...]] [-- TEST-ARGS...]\n\
         targets: {}",
        TARGETS
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("kernel-matrix") => {}
        _ => return usage(),
    }
    let mut only: Option<Vec<String>> = None;
    let mut test_args = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => {
                only = args
                    .next()
                    .map(|v| v.split(',').map(str::to_string).collect())
            }
            "--" => test_args.extend(args.by_ref()),
            _ => return usage(),
        }
    }
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| only.as_ref().is_none_or(|o| o.iter().any(|n| n == t.name)))
        .collect();
    if targets.is_empty() {
        return usage();
    }
    match run(&targets, &test_args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kernel-matrix: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(targets: &[&Target], test_args: &[String]) -> Result<bool, String> {
    let t0 = Instant::now();
    let bins = build::test_binaries()?;
    let init = build::init_binary()?;
    eprintln!(
        "kernel-matrix: {} test binaries built in {:.0?}",
        bins.len(),
        t0.elapsed()
    );
    let mut results = Vec::new();
    for t in targets {
        let start = Instant::now();
        let outcome = match t.series {
            None => guest::run_host(&bins, test_args),
            Some(series) => kernels::fetch(series)
                .and_then(|k| guest::run_qemu(&k, &init, &bins, t.cmdline, test_args)),
        };
        let outcome = outcome.unwrap_or_else(guest::Outcome::error);
        eprintln!(
            "kernel-matrix: {} {} in {:.1?}",
            t.name,
            outcome.verdict(),
            start.elapsed()
        );
        results.push((t.name, outcome, start.elapsed()));
    }
    println!(
        "\n{:<24} {:<48} {:<6} {:>6} {:>6} {:>7} {:>7}  notes",
        "TARGET", "KERNEL", "RESULT", "PASSED", "FAILED", "SKIPPED", "TIME"
    );
    let mut all_ok = true;
    for (name, o, d) in &results {
        all_ok &= o.ok();
        println!(
            "{:<24} {:<48} {:<6} {:>6} {:>6} {:>7} {:>6.1}s  {}",
            name,
            o.kernel,
            o.verdict(),
            o.passed,
            o.failed,
            o.skipped,
            d.as_secs_f64(),
            o.notes.join("; ")
        );
    }
    println!("total {:.1?}", t0.elapsed());
    Ok(all_ok)
}
