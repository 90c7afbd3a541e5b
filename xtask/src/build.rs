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

/// `cargo test --no-run` for musl, returning every test executable except trybuild's (which
/// needs cargo at run time).
pub fn test_binaries() -> Result<Vec<TestBin>, String> {
    let out = cargo()
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "-p",
            "safer-ring",
            "--features",
            "tokio",
            "--target",
            MUSL,
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo test --no-run --target {MUSL} failed (is the target installed? `rustup target add {MUSL}`)"
        ));
    }
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(exe), Some(target)) = (msg["executable"].as_str(), msg.get("target")) else {
            continue;
        };
        let name = target["name"].as_str().unwrap_or("unknown").to_string();
        // Integration tests and unit tests only: examples are servers, and trybuild's
        // compile-fail test needs cargo at run time.
        let kinds: Vec<&str> = target["kind"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str())
            .collect();
        if name == "compile_fail" || !kinds.iter().any(|k| *k == "test" || *k == "lib") {
            continue;
        }
        bins.push(TestBin {
            name,
            path: exe.into(),
        });
    }
    if bins.is_empty() {
        return Err("cargo produced no test executables".into());
    }
    Ok(bins)
}

/// The guest's PID 1.
pub fn init_binary() -> Result<PathBuf, String> {
    let out = cargo()
        .args([
            "build",
            "--release",
            "--message-format=json",
            "-p",
            "kernel-init",
            "--target",
            MUSL,
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err("building kernel-init failed".into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "kernel-init produced no executable".into())
}
