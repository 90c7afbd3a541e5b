//! `safer-ring features`: the detection report as a table or JSON, and the static feature
//! matrix as markdown (docs/FEATURES.md).

use safer_ring::features::{self, Detection, FeatureReport, Try, USED_BY_RING};
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

/// Used features no code consults through the native set (`uses_native`, `features()`), so
/// their switch (`-NoDrop`, `Some(false)`) changes nothing: io_uring itself
/// (`BatchedSubmissions`), an opcode every io_uring ring pushes for its own cancels
/// (`AsyncCancel`, a core opcode), and two behaviours of the kernel that apply whenever it has
/// them (`NoDrop`, `FastPoll`). A test in tests/cli.rs checks the library's sources still do
/// not consult them.
const NOT_SWITCHABLE: &[Feature] = &[
    Feature::BatchedSubmissions,
    Feature::AsyncCancel,
    Feature::NoDrop,
    Feature::FastPoll,
];

fn switchable(f: Feature) -> bool {
    !NOT_SWITCHABLE.contains(&f)
}

/// Whether the ring `Ring::new` builds here uses `f`: per its native set for switchable
/// features, and wherever io_uring runs and the kernel has it for the others.
fn enabled(report: &FeatureReport, choice: &BackendChoice, f: Feature) -> bool {
    if !USED_BY_RING.contains(&f) {
        false
    } else if switchable(f) {
        choice.native.contains(f)
    } else {
        choice.backend == Some(BackendKind::IoUring) && report.status(f).available
    }
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
                "enabled": enabled(report, choice, r.feature),
                "switchable": switchable(r.feature),
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
            if enabled(report, choice, r.feature) {
                if switchable(r.feature) {
                    "yes"
                } else {
                    "always"
                }
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
    out += "
always: used wherever io_uring runs and the kernel has it; turning it off changes nothing
";
    out += "(io_uring itself, the ring's own cancels, the kernel's NODROP and FAST_POLL).
";
    for w in &report.warnings {
        out += &format!("warning: {w}\n");
    }
    out
}

/// The command that regenerates docs/FEATURES.md (printed in its header and by the drift test).
pub const REGENERATE: &str =
    "cargo run -q -p safer-ring-cli -- features --markdown > docs/FEATURES.md";

/// Names of the `IORING_FEAT_*` bits (`params.features` after `io_uring_setup`), for the matrix.
fn feature_flag_name(bit: u32) -> String {
    const NAMES: &[&str] = &[
        "SINGLE_MMAP",
        "NODROP",
        "SUBMIT_STABLE",
        "RW_CUR_POS",
        "CUR_PERSONALITY",
        "FAST_POLL",
        "POLL_32BITS",
        "SQPOLL_NONFIXED",
        "EXT_ARG",
        "NATIVE_WORKERS",
        "RSRC_TAGS",
        "CQE_SKIP",
        "LINKED_FILE",
        "REG_REG_RING",
        "RECVSEND_BUNDLE",
    ];
    match NAMES.get(bit.trailing_zeros() as usize) {
        Some(name) if bit.is_power_of_two() => format!("IORING_FEAT_{name}"),
        _ => format!("features bit {bit:#x}"),
    }
}

/// The real call detection makes for `t` (see `safer_ring::features::Try`).
fn try_call(t: Try) -> &'static str {
    match t {
        Try::RegisterRingFd => "IORING_REGISTER_RING_FDS on a throwaway ring",
        Try::RegisterBufRing => "IORING_REGISTER_PBUF_RING on a throwaway ring",
        Try::RegisterBufRingInc => {
            "IORING_REGISTER_PBUF_RING with IOU_PBUF_RING_INC on a throwaway ring"
        }
        Try::MsgRingSendFd => "IORING_MSG_SEND_FD between two throwaway rings",
        Try::SetupCoopTaskrun => "io_uring_setup with IORING_SETUP_COOP_TASKRUN",
        Try::SetupSingleIssuer => "io_uring_setup with IORING_SETUP_SINGLE_ISSUER",
        Try::SetupDeferTaskrun => "io_uring_setup with IORING_SETUP_DEFER_TASKRUN",
    }
}

fn opcodes(ops: &[u8]) -> String {
    ops.iter()
        .map(|&op| features::opcode_name(op))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the matrix says `d` finds a feature.
fn detected_by(d: Detection) -> String {
    match d {
        Detection::Try(t) => format!("real call: {}", try_call(t)),
        Detection::Probe(ops) => format!("opcode probe: {}", opcodes(ops)),
        Detection::FeatureFlag(bit) => format!("setup feature flag: {}", feature_flag_name(bit)),
        Detection::Version(&[]) => "kernel version".to_string(),
        Detection::Version(ops) => format!("kernel version (the probe must list {})", opcodes(ops)),
    }
}

/// The feature matrix as markdown: static facts from the library's feature table only (no
/// detection on this machine), so the output is the same everywhere and docs/FEATURES.md can
/// be compared with it.
pub fn markdown() -> String {
    let mut out = format!(
        "<!-- Generated by `safer-ring features --markdown` from safer-ring's feature table \
         (safer-ring/src/features/table.rs); do not edit. Regenerate with:\n     {REGENERATE} -->\n"
    );
    out += "# io_uring features safer-ring knows\n\n";
    out += "Every feature safer-ring detects, in the order of its feature table: the first \
            mainline kernel\nthat has it, how detection finds it (a real call is trusted over \
            the opcode probe, the probe over\nsetup feature flags, flags over the kernel \
            version), whether safer-ring uses it today and what it\ndoes. The names are the \
            ones `SAFER_RING_FEATURES` and `ProgressiveEnhancementConfig::feature`\ntake. \
            Which API uses a feature and what it falls back to: the README's\n\
            [progressive enhancement](../README.md#progressive-enhancement) table. What the \
            running machine\noffers: `safer-ring features`; when io_uring is missing or \
            limited: [TROUBLESHOOTING.md](TROUBLESHOOTING.md).\n\n";
    out += "| Feature | Linux | Detected by | Used by safer-ring | What it does |\n";
    out += "|---|---|---|---|---|\n";
    for f in Feature::all() {
        let used = if !USED_BY_RING.contains(&f) {
            "no (detected and reported only)"
        } else if !switchable(f) {
            "yes, always (not switchable)"
        } else if f.opt_in() {
            "yes, when asked for (opt-in)"
        } else {
            "yes"
        };
        out += &format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.name(),
            min_kernel(f),
            detected_by(f.detection()),
            used,
            f.description(),
        );
    }
    out += "\nOpt-in features are used only when asked for: `SAFER_RING_FEATURES=+<name>` or\n\
            `ProgressiveEnhancementConfig::feature(<feature>, Some(true))`; every other used \
            feature is used\nwherever the kernel has it unless turned off (`-<name>`, \
            `Some(false)`); those used always\n\
            are used wherever io_uring runs and the kernel has them, and turning them off \
            changes nothing.\n";
    out
}
