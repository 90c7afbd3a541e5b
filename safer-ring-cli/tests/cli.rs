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

/// The four used features nothing in the library consults through the native set show as used
/// `always` (JSON `switchable: false`), switched off or not: their switch changes nothing. Every
/// other feature is switchable. And what makes that true: the library's code (outside
/// `features/`, where the table lives) never names them, but for one array filler.
#[test]
fn features_nothing_consults_are_reported_as_not_switchable() {
    const ALWAYS: [&str; 4] = ["BatchedSubmissions", "AsyncCancel", "NoDrop", "FastPoll"];
    let off = ALWAYS.map(|n| format!("-{n}")).join(",");
    let (ok, json, err) = report(&[("SAFER_RING_FEATURES", &off)]);
    assert!(ok, "{err}");
    let json = json.unwrap();
    let on_uring = json["backend"] == BackendKind::IoUring.to_string();
    for row in json["features"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        let always = ALWAYS.contains(&name);
        assert_eq!(row["switchable"], !always, "{name}");
        if always {
            let expect = on_uring && row["available"] == true;
            assert_eq!(row["enabled"], expect, "{name}: {row}");
        }
    }

    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("features") {
                    walk(&p, files);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../safer-ring/src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    assert!(files.len() > 20, "sources under {}", src.display());
    let mut consulted = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for name in ALWAYS {
                let pat = format!("Feature::{name}");
                let named = line.match_indices(&pat).any(|(i, m)| {
                    let next = line[i + m.len()..].chars().next();
                    !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if named {
                    consulted.push(format!("{name} in {}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        consulted.is_empty(),
        "now consulted: make them switchable in safer-ring-cli/src/features.rs: {consulted:#?}"
    );
}
