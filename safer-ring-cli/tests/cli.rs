//! The `safer-ring` executable: its JSON report and the environment variables it honours.

use std::process::Command;

use safer_ring::{BackendKind, Feature, Ring, SaferRingConfig};
use serde_json::Value;

/// Runs `safer-ring features --json` with `env` (and no inherited safer-ring variables).
fn report(env: &[(&str, &str)]) -> (bool, Option<Value>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_safer-ring"));
    cmd.args(["features", "--json"])
        .env_remove("SAFER_RING_BACKEND")
        .env_remove("SAFER_RING_FEATURES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the binary runs");
    let json = serde_json::from_slice(&out.stdout).ok();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), json, stderr)
}

fn enabled(report: &Value, name: &str) -> bool {
    report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("row {name}"))["enabled"]
        .as_bool()
        .unwrap()
}

#[test]
fn json_report_matches_the_library() {
    let (ok, json, err) = report(&[]);
    assert!(ok, "{err}");
    let json = json.expect("valid JSON");
    let rows = json["features"].as_array().unwrap();
    assert_eq!(rows.len(), Feature::all().count());
    // What the child does with no SAFER_RING_BACKEND (this process may have one: CI's epoll pass).
    let ring = Ring::with_config(SaferRingConfig::default().backend(BackendKind::Auto)).unwrap();
    assert_eq!(json["backend"], ring.backend().to_string());
    for f in Feature::all() {
        let used = safer_ring::features::USED_BY_RING.contains(&f);
        assert_eq!(enabled(&json, f.name()), used && ring.uses_native(f), "{f}");
    }
}

#[test]
fn environment_overrides_show_in_the_report() {
    let (ok, json, err) = report(&[("SAFER_RING_BACKEND", "epoll")]);
    assert!(ok, "{err}");
    let json = json.unwrap();
    assert_eq!(json["backend"], BackendKind::Epoll.to_string());
    assert!(Feature::all().all(|f| !enabled(&json, f.name())));

    let (ok, json, err) = report(&[("SAFER_RING_FEATURES", "-MultiShotAccept")]);
    assert!(ok, "{err}");
    assert!(!enabled(&json.unwrap(), "MultiShotAccept"));

    let (ok, _, err) = report(&[("SAFER_RING_FEATURES", "-Bogus")]);
    assert!(!ok);
    assert!(
        err.contains("SAFER_RING_FEATURES=\"-Bogus\" is invalid"),
        "{err}"
    );
}
