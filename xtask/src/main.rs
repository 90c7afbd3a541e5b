//! `cargo xtask kernel-matrix`: runs the integration tests as the only userspace program of real
//! Debian cloud kernels (5.10, 6.1, 6.12, and 6.12 with io_uring disabled or restricted to
//! root) under QEMU, and natively on the host kernel; prints a PASS/FAIL table and exits
//! non-zero on any failure. `cargo xtask self-test` proves the matrix sees crashed binaries.

mod build;
mod guest;
mod kernels;
mod selftest;

use std::process::ExitCode;
use std::time::Instant;

/// The backend `Ring::new` must take on a row (checked by the `matrix_backend` test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    IoUring,
    Epoll,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::IoUring => "io_uring",
            Expect::Epoll => "epoll",
        }
    }
}

/// One row of the matrix.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: &'static str,
    /// `None` for the host kernel.
    pub series: Option<kernels::Series>,
    /// Extra kernel command line.
    pub cmdline: &'static str,
    /// The uid (and gid) the guest runs the tests as; `None`: root.
    pub uid: Option<u32>,
    pub expect: Expect,
}

/// The guest's unprivileged user: `nobody`, in no supplementary group (so not in
/// `kernel.io_uring_group`).
const NOBODY: u32 = 65534;

pub const TARGETS: &[Target] = &[
    Target {
        name: "host",
        series: None,
        cmdline: "",
        uid: None,
        expect: Expect::IoUring,
    },
    Target {
        name: "5.10",
        series: Some(kernels::Series::V5_10),
        cmdline: "",
        uid: None,
        expect: Expect::IoUring,
    },
    Target {
        name: "6.1",
        series: Some(kernels::Series::V6_1),
        cmdline: "",
        uid: None,
        expect: Expect::IoUring,
    },
    Target {
        name: "6.12",
        series: Some(kernels::Series::V6_12),
        cmdline: "",
        uid: None,
        expect: Expect::IoUring,
    },
    // 2: io_uring refused to everyone, root included.
    Target {
        name: "6.12-disabled=2",
        series: Some(kernels::Series::V6_12),
        cmdline: "sysctl.kernel.io_uring_disabled=2",
        uid: None,
        expect: Expect::Epoll,
    },
    // 1: io_uring only for CAP_SYS_ADMIN and members of kernel.io_uring_group (unset here).
    Target {
        name: "6.12-disabled=1-root",
        series: Some(kernels::Series::V6_12),
        cmdline: "sysctl.kernel.io_uring_disabled=1",
        uid: None,
        expect: Expect::IoUring,
    },
    Target {
        name: "6.12-disabled=1-nobody",
        series: Some(kernels::Series::V6_12),
        cmdline: "sysctl.kernel.io_uring_disabled=1",
        uid: Some(NOBODY),
        expect: Expect::Epoll,
    },
];

impl Target {
    /// The guest's kernel command line for this row: the row's own part plus what init reads.
    fn guest_cmdline(&self) -> String {
        let mut c = format!("saferring.expect={}", self.expect.name());
        if let Some(uid) = self.uid {
            c += &format!(" saferring.uid={uid}");
        }
        if !self.cmdline.is_empty() {
            c += " ";
            c += self.cmdline;
        }
        c
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask kernel-matrix [--only NAME[,NAME...]] [-- TEST-ARGS...]\n\
         \x20      cargo xtask self-test\n\
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
        Some("self-test") if args.next().is_none() => return selftest::main(),
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
            None => guest::run_host(&bins, t.expect, test_args),
            Some(series) => kernels::fetch(series).and_then(|k| {
                let guest = guest::Guest {
                    label: t.name,
                    kernel: &k,
                    init: &init,
                    cmdline: &t.guest_cmdline(),
                };
                guest::run_qemu(&guest, &bins, test_args)
            }),
        };
        let outcome = outcome.unwrap_or_else(guest::Outcome::error);
        eprintln!(
            "kernel-matrix: {} {} in {:.1?}",
            t.name,
            outcome.verdict(),
            start.elapsed()
        );
        for f in &outcome.failed_tests {
            eprintln!("kernel-matrix: {} failed {f}", t.name);
        }
        results.push((t.name, outcome, start.elapsed()));
    }
    print_table(&results);
    println!("total {:.1?}", t0.elapsed());
    Ok(results.iter().all(|(_, o, _)| o.ok()))
}

fn print_table(results: &[(&str, guest::Outcome, std::time::Duration)]) {
    println!(
        "\n{:<24} {:<56} {:<6} {:>6} {:>6} {:>7} {:>7}  notes",
        "TARGET", "KERNEL", "RESULT", "PASSED", "FAILED", "SKIPPED", "TIME"
    );
    for (name, o, d) in results {
        println!(
            "{:<24} {:<56} {:<6} {:>6} {:>6} {:>7} {:>6.1}s  {}",
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
    let failed: Vec<_> = results
        .iter()
        .flat_map(|(name, o, _)| o.failed_tests.iter().map(move |f| (name, f)))
        .collect();
    if !failed.is_empty() {
        println!("\nFAILED TESTS (row: binary::test: first panic)");
        for (name, f) in failed {
            println!("{name}: {f}");
        }
    }
}
