//! Builds the static (musl) test binaries and the guest's init.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const MUSL: &str = "x86_64-unknown-linux-musl";

/// A test executable and a short name for it.
pub struct TestBin {
    pub name: String,
    pub path: PathBuf,
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs cargo with `--message-format=json --target musl` and returns its artifact messages
/// that name an executable.
fn cargo_artifacts(args: &[&str], what: &str) -> Result<Vec<serde_json::Value>, String> {
    let out = cargo()
        .args(args)
        .args(["--message-format=json", "--target", MUSL])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed (is the target installed? `rustup target add {MUSL}`)"
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["executable"].is_string())
        .collect())
}

/// `cargo test --no-run` for musl, returning every test executable except trybuild's (which
/// needs cargo at run time).
pub fn test_binaries() -> Result<Vec<TestBin>, String> {
    let msgs = cargo_artifacts(
        &[
            "test",
            "--no-run",
            "-p",
            "safer-ring",
            "--features",
            // Every feature whose code runs on the ring (the TLS tests' dev-dependencies are
            // off on musl in Cargo.toml: they build C).
            "tokio,fault-injection,bytes,futures-io,hyper",
        ],
        "building the tests",
    )?;
    let bins: Vec<TestBin> = msgs
        .iter()
        .filter_map(|m| {
            let target = &m["target"];
            let name = target["name"].as_str()?.to_string();
            // Integration tests and unit tests only: examples are servers.
            let kinds = target["kind"].as_array()?;
            let testable = kinds.iter().any(|k| k == "test" || k == "lib");
            let path = m["executable"].as_str()?.into();
            (testable && name != "compile_fail").then_some(TestBin { name, path })
        })
        .collect();
    if bins.is_empty() {
        return Err("cargo produced no test executables".into());
    }
    Ok(bins)
}

/// The guest's PID 1.
pub fn init_binary() -> Result<PathBuf, String> {
    cargo_artifacts(
        &["build", "--release", "-p", "kernel-init"],
        "building kernel-init",
    )?
    .iter()
    .find_map(|m| m["executable"].as_str().map(PathBuf::from))
    .ok_or_else(|| "kernel-init produced no executable".into())
}

/// The self-test's fixture, a libtest binary (xtask/init/tests/matrix_selftest.rs).
pub fn selftest_binary() -> Result<PathBuf, String> {
    cargo_artifacts(
        &[
            "test",
            "--no-run",
            "-p",
            "kernel-init",
            "--test",
            "matrix_selftest",
        ],
        "building the self-test fixture",
    )?
    .iter()
    .filter(|m| m["target"]["name"] == "matrix_selftest")
    .find_map(|m| m["executable"].as_str().map(PathBuf::from))
    .ok_or_else(|| "the self-test fixture produced no executable".into())
}
