//! `safer-ring features`: the detection report as a table or JSON.

use safer_ring::features::{self, FeatureReport, USED_BY_RING};
use safer_ring::{AvailableFeatures, BackendKind, Feature, Ring};
use serde_json::{Value, json};

/// The backend `Ring::new` picks here, and why (made for real, then dropped).
pub struct BackendChoice {
    pub backend: Option<BackendKind>,
    pub reason: Option<String>,
    /// What that ring uses natively (detection, granted setup flags, configuration and
    /// `SAFER_RING_FEATURES`).
    pub native: AvailableFeatures,
}

pub fn backend_choice() -> BackendChoice {
    match Ring::new(8) {
        Ok(r) => BackendChoice {
            backend: Some(r.backend()),
            reason: r.info().fallback_reason.clone(),
            native: r.features(),
        },
        Err(e) => BackendChoice {
            backend: None,
            reason: Some(e.to_string()),
            native: AvailableFeatures::empty(),
        },
    }
}

fn min_kernel(f: Feature) -> String {
    let v = f.required_kernel_version();
    format!("{}.{}", v.major, v.minor)
}

fn enabled(choice: &BackendChoice, f: Feature) -> bool {
    USED_BY_RING.contains(&f) && choice.native.contains(f)
}

pub fn json(report: &FeatureReport, choice: &BackendChoice) -> Value {
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|r| {
            json!({
                "name": r.feature.name(),
                "min_kernel": min_kernel(r.feature),
                "detected_by": r.feature.detection().name(),
                "by_version": r.by_version,
                "by_probe": r.by_detection,
                "available": r.available,
                "enabled": enabled(choice, r.feature),
                "opt_in": r.feature.opt_in(),
                "description": r.feature.description(),
            })
        })
        .collect();
    let opcodes: Vec<String> = report
        .inputs
        .opcodes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|&op| features::opcode_name(op))
        .collect();
    json!({
        "kernel": report.inputs.version.map(|v| v.to_string()),
        "kernel_release": report.inputs.release,
        "io_uring": {
            "available": report.inputs.io_uring.is_ok(),
            "reason": report.inputs.io_uring.as_ref().err(),
        },
        "backend": choice.backend.map(|b| b.to_string()),
        "backend_reason": choice.reason,
        "feature_flags": report.inputs.feature_flags.map(|f| format!("{f:#x}")),
        "features": rows,
        "opcodes": opcodes,
        "warnings": report.warnings,
    })
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub fn table(report: &FeatureReport, choice: &BackendChoice) -> String {
    let mut out = String::new();
    let release = report.inputs.release.as_deref().unwrap_or("unknown");
    out += &format!("kernel: {release}\n");
    match &report.inputs.io_uring {
        Ok(()) => out += "io_uring: available\n",
        Err(reason) => out += &format!("io_uring: unavailable ({reason})\n"),
    }
    match choice.backend {
        Some(b) => {
            out += &format!("backend: {b}");
            if let Some(r) = &choice.reason {
                out += &format!(" ({r})");
            }
            out += "\n";
        }
        None => {
            out += &format!(
                "backend: none ({})\n",
                choice.reason.as_deref().unwrap_or("")
            )
        }
    }
    if let Some(f) = report.inputs.feature_flags {
        out += &format!("feature flags: {f:#x}\n");
    }
    if let Some(ops) = &report.inputs.opcodes {
        out += &format!("opcodes: {} supported\n", ops.len());
    }
    out += &format!(
        "\n{:<20} {:>6}  {:<12} {:<12} {:<10} {:<9} {}\n",
        "FEATURE", "MIN", "BY VERSION", "DETECTED BY", "DETECTED", "AVAILABLE", "ENABLED"
    );
    for r in &report.rows {
        let det = match r.by_detection {
            Some(b) => yes_no(b),
            None => "-",
        };
        out += &format!(
            "{:<20} {:>6}  {:<12} {:<12} {:<10} {:<9} {}\n",
            r.feature.name(),
            min_kernel(r.feature),
            yes_no(r.by_version),
            r.feature.detection().name(),
            det,
            yes_no(r.available),
            if enabled(choice, r.feature) {
                "yes"
            } else if r.feature.opt_in() && r.available {
                "no (opt-in)"
            } else {
                "no"
            },
        );
    }
    if report.rows.iter().any(|r| r.feature.opt_in()) {
        out += "
opt-in features are used only when asked for: SAFER_RING_FEATURES=+<name> or
";
        out += "ProgressiveEnhancementConfig::feature(<feature>, Some(true)) (see README).
";
    }
    for w in &report.warnings {
        out += &format!("warning: {w}\n");
    }
    out
}
