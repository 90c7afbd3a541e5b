//! `safer-ring bench`: each enhanced mechanism against its fallback and against epoll, on this
//! kernel, with the path that really ran (from `Ring::enhancement_stats`).

mod msg;
mod net;

use std::time::Duration;

use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};
use serde_json::{Value, json};

/// How a bench builds its rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// io_uring, the feature used where the kernel has it (opt-in ones included).
    Native,
    /// io_uring with the feature forced off by configuration.
    Fallback,
    /// The epoll backend.
    Epoll,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Native, Variant::Fallback, Variant::Epoll];

    fn name(self) -> &'static str {
        match self {
            Variant::Native => "io_uring",
            Variant::Fallback => "io_uring, feature off",
            Variant::Epoll => "epoll",
        }
    }

    /// A ring for this variant of a bench on `feature`; `Err` names why it cannot be made
    /// (io_uring unavailable here).
    pub fn ring(self, feature: Feature) -> Result<Ring, String> {
        let (kind, pe) = match self {
            // Asked for explicitly, so opt-in features run natively too.
            Variant::Native => (
                BackendKind::IoUring,
                ProgressiveEnhancementConfig::default().feature(feature, Some(true)),
            ),
            Variant::Fallback => (
                BackendKind::IoUring,
                ProgressiveEnhancementConfig::default().feature(feature, Some(false)),
            ),
            Variant::Epoll => (BackendKind::Epoll, ProgressiveEnhancementConfig::default()),
        };
        Ring::with_config(
            SaferRingConfig::default()
                .entries(256)
                .backend(kind)
                .enhancement(pe),
        )
        .map_err(|e| format!("{} ring: {e}", self.name()))
    }
}

/// What one run measured.
pub struct Run {
    /// Units of work done (ops, messages, connections, bytes).
    pub work: u64,
    pub took: Duration,
    /// Operations of the bench's feature that took the native / fallback path.
    pub native: u64,
    pub fallback: u64,
}

impl Run {
    pub fn new(ring: &Ring, feature: Feature, work: u64, took: Duration) -> Run {
        let s = ring.enhancement_stats(feature);
        Run {
            work,
            took,
            native: s.native,
            fallback: s.fallback,
        }
    }
}

/// One benchmark: name, the feature it exercises, the unit of `work`, and the body (`scale`
/// multiplies the amount of work).
pub struct Bench {
    pub name: &'static str,
    pub feature: Feature,
    pub unit: &'static str,
    pub run: fn(Variant, u64) -> Result<Run, String>,
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "nop",
        feature: Feature::RegisteredRingFd,
        unit: "ops",
        run: msg::nop,
    },
    Bench {
        name: "msg_ring",
        feature: Feature::MsgRing,
        unit: "msgs",
        run: msg::messages,
    },
    Bench {
        name: "msg_rtt",
        feature: Feature::MsgRing,
        unit: "trips",
        run: msg::round_trips,
    },
    Bench {
        name: "fd_passing",
        feature: Feature::MsgRingSendFd,
        unit: "fds",
        run: msg::fds,
    },
    Bench {
        name: "accept",
        feature: Feature::MultiShotAccept,
        unit: "conns",
        run: net::accept,
    },
    Bench {
        name: "send",
        feature: Feature::SendZeroCopy,
        unit: "MiB",
        run: net::send,
    },
    Bench {
        name: "recv",
        feature: Feature::MultiShotRecv,
        unit: "MiB",
        run: net::recv,
    },
];

/// The bench names, for `--only`.
pub fn names() -> Vec<&'static str> {
    BENCHES.iter().map(|b| b.name).collect()
}

/// Runs the selected benches (all when `only` is empty) and returns one JSON row per run.
pub fn run_all(only: &[String], scale: u64) -> Result<Vec<Value>, String> {
    for name in only {
        if !BENCHES.iter().any(|b| b.name == name) {
            return Err(format!(
                "unknown bench {name:?}: expected one of {}",
                names().join(", ")
            ));
        }
    }
    let uring = safer_ring::features::detected()
        .io_uring_available()
        .is_ok();
    let mut rows = Vec::new();
    for b in BENCHES
        .iter()
        .filter(|b| only.is_empty() || only.iter().any(|o| o == b.name))
    {
        for v in Variant::ALL {
            if v != Variant::Epoll && !uring {
                rows.push(row(b, v, None, "io_uring unavailable"));
                continue;
            }
            match (b.run)(v, scale) {
                Ok(r) => rows.push(row(b, v, Some(&r), "")),
                Err(e) => return Err(format!("bench {} ({}): {e}", b.name, v.name())),
            }
        }
    }
    Ok(rows)
}

fn row(b: &Bench, v: Variant, r: Option<&Run>, note: &str) -> Value {
    let rate = r.map(|r| r.work as f64 / r.took.as_secs_f64().max(1e-9));
    json!({
        "bench": b.name,
        "variant": v.name(),
        "feature": b.feature.name(),
        "unit": format!("{}/s", b.unit),
        "rate": rate,
        "work": r.map(|r| r.work),
        "seconds": r.map(|r| r.took.as_secs_f64()),
        "native_ops": r.map(|r| r.native),
        "fallback_ops": r.map(|r| r.fallback),
        "note": note,
    })
}

/// The rows as a table.
pub fn table(rows: &[Value]) -> String {
    let mut out = format!(
        "{:<11} {:<22} {:<17} {:>14} {:<8} {:>9} {:>9}\n",
        "BENCH", "VARIANT", "FEATURE", "RATE", "UNIT", "NATIVE", "FALLBACK"
    );
    for r in rows {
        let num = |k: &str| r[k].as_u64().map_or("-".to_string(), |n| n.to_string());
        let rate = r["rate"]
            .as_f64()
            .map_or_else(|| r["note"].as_str().unwrap_or("").to_string(), human);
        out += &format!(
            "{:<11} {:<22} {:<17} {:>14} {:<8} {:>9} {:>9}\n",
            r["bench"].as_str().unwrap_or(""),
            r["variant"].as_str().unwrap_or(""),
            r["feature"].as_str().unwrap_or(""),
            rate,
            r["unit"].as_str().unwrap_or(""),
            num("native_ops"),
            num("fallback_ops"),
        );
    }
    out
}

fn human(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2} M", x / 1e6),
        x if x >= 1e3 => format!("{:.1} k", x / 1e3),
        x => format!("{x:.1}"),
    }
}
