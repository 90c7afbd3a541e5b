//! `cargo xtask self-test`: proves the matrix cannot miss a crashed test binary. One fixture
//! (xtask/init/tests/matrix_selftest.rs) is installed under names that pick what it does, and
//! run on the host and as the userspace of a 6.12 guest: a clean set must PASS, and a set with a
//! binary that segfaults mid-line must FAIL, naming it, with the binaries around it counted.
//! In the guest, a binary that hangs is killed at init's time limit (5 s here) and fails the
//! row the same way.
//! The console parser's other cases (a lost marker, a faked one) are its unit tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::build::{self, TestBin};
use crate::guest::{self, Guest, Outcome};
use crate::{Expect, kernels};

pub fn main() -> ExitCode {
    let t0 = Instant::now();
    match run() {
        Ok(()) => {
            println!("self-test: ok in {:.1?}", t0.elapsed());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("self-test: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Copies of the fixture named `names`, so that each one's `argv[0]` says what to do.
fn fixtures(fixture: &Path, names: &[&str]) -> Result<Vec<TestBin>, String> {
    let dir = PathBuf::from("target/kernel-matrix/selftest");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    names
        .iter()
        .map(|&n| {
            let path = dir.join(n);
            std::fs::copy(fixture, &path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(TestBin {
                name: n.to_string(),
                path,
            })
        })
        .collect()
}

/// The failed test a `*panic*` fixture must be reported as, by the start of its first panic
/// line (the location follows).
const PANIC_REPORT: &str = "d_panic::r1_runs_as_named: panicked at xtask/init/tests/";

/// Checks one run: whether the row passed, how many tests it counted, which binaries it
/// blames (each by the start of its entry), and whether it named the `*panic*` fixture's test.
fn check(
    what: &str,
    o: &Outcome,
    want_ok: bool,
    want_passed: u64,
    blamed: &[&str],
) -> Result<(), String> {
    let blames = |b: &&str| o.failed_bins.iter().any(|f| f.starts_with(b));
    let panicked = blamed.iter().any(|b| b.starts_with("d_panic"));
    let named = |f: &String| {
        f.starts_with(PANIC_REPORT) && f.ends_with(": fixture d_panic panics as named")
    };
    let right = o.ok() == want_ok
        && o.passed == want_passed
        && o.complete
        && o.failed_bins.len() == blamed.len()
        && blamed.iter().all(blames)
        && o.failed_tests.len() == usize::from(panicked)
        && o.failed_tests.iter().all(named);
    println!(
        "self-test: {what}: {} passed={} failed_bins={:?} failed_tests={:?}",
        o.verdict(),
        o.passed,
        o.failed_bins,
        o.failed_tests
    );
    if right {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected {} with {want_passed} passed and blame on {blamed:?}; got {o:?}",
            if want_ok { "PASS" } else { "FAIL" },
        ))
    }
}

fn run() -> Result<(), String> {
    let fixture = build::selftest_binary()?;
    let init = build::init_binary()?;
    let clean = fixtures(&fixture, &["a_pass"])?;
    // The crash sits between two clean binaries: both must still be counted. The panic is
    // named with its test and message.
    let crash = fixtures(&fixture, &["a_pass", "b_crash", "c_pass", "d_panic"])?;

    let host = |bins: &[TestBin]| guest::run_host(bins, Expect::IoUring, &[]);
    check("host, clean", &host(&clean)?, true, 1, &[])?;
    let blamed = ["b_crash", "d_panic"];
    check("host, crash", &host(&crash)?, false, 2, &blamed)?;

    let kernel = kernels::fetch(kernels::Series::V6_12)?;
    let boot = |label: &str, bins: &[TestBin]| {
        let g = Guest {
            label,
            kernel: &kernel,
            init: &init,
            cmdline: "saferring.timeout=5",
        };
        guest::run_qemu(&g, bins, &[])
    };
    check(
        "6.12, clean",
        &boot("selftest-clean", &clean)?,
        true,
        1,
        &[],
    )?;
    let o = boot("selftest-crash", &crash)?;
    check(
        "6.12, crash",
        &o,
        false,
        2,
        &["b_crash exit=139", "d_panic exit=101"],
    )?;
    let hang = fixtures(&fixture, &["a_pass", "b_hang", "c_pass"])?;
    let o = boot("selftest-hang", &hang)?;
    check("6.12, hang", &o, false, 2, &["b_hang exit=timeout"])
}
