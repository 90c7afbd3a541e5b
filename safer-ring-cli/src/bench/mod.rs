//! `safer-ring bench`: each enhanced mechanism against its fallback and against epoll, on this
//! kernel, sampled repeatedly and interleaved, with the path that really ran (from
//! `Ring::enhancement_stats`), medians with confidence intervals and ratios between variants.

mod msg;
mod net;
mod plot;
mod progress;
mod report;
mod stats;

use std::time::{Duration, Instant};

use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};

pub use plot::svg;
pub use report::{json, table};

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

    pub fn name(self) -> &'static str {
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

/// Native / fallback counts of one feature on one ring (`enhancement_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCount {
    pub feature: Feature,
    pub native: u64,
    pub fallback: u64,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// Units of work done (ops, messages, connections, MiB).
    pub work: u64,
    pub took: Duration,
    /// The counts of each feature that can decide the bench's path.
    pub paths: Vec<PathCount>,
}

impl Run {
    pub fn new(ring: &Ring, features: &[Feature], work: u64, took: Duration) -> Run {
        let paths = features
            .iter()
            .map(|&feature| {
                let s = ring.enhancement_stats(feature);
                PathCount {
                    feature,
                    native: s.native,
                    fallback: s.fallback,
                }
            })
            .collect();
        Run { work, took, paths }
    }

    /// Work per second.
    pub fn rate(&self) -> f64 {
        self.work as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// One benchmark: name, the features that decide its path (the first is the one the
/// `Fallback` variant turns off), the unit of `work`, and the body (`scale` multiplies the
/// amount of work).
pub struct Bench {
    pub name: &'static str,
    pub features: &'static [Feature],
    pub unit: &'static str,
    pub run: fn(Variant, u64) -> Result<Run, String>,
}

impl Bench {
    pub fn feature(&self) -> Feature {
        self.features[0]
    }
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "nop",
        features: &[Feature::RegisteredRingFd],
        unit: "ops",
        run: msg::nop,
    },
    Bench {
        name: "nop1",
        features: &[Feature::RegisteredRingFd],
        unit: "ops",
        run: msg::nop1,
    },
    Bench {
        name: "msg_ring",
        features: &[Feature::MsgRing],
        unit: "msgs",
        run: msg::messages,
    },
    Bench {
        name: "msg_rtt",
        features: &[Feature::MsgRing],
        unit: "trips",
        run: msg::round_trips,
    },
    Bench {
        name: "fd_passing",
        features: &[Feature::MsgRingSendFd],
        unit: "fds",
        run: msg::fds,
    },
    Bench {
        name: "accept",
        features: &[Feature::MultiShotAccept],
        unit: "conns",
        run: net::accept,
    },
    Bench {
        name: "send",
        features: &[Feature::SendZeroCopy],
        unit: "MiB",
        run: net::send,
    },
    Bench {
        // recv_enhanced: multishot recv, else one buffer-select recv, else plain recv; each
        // call counts under the feature that chose its tier.
        name: "recv",
        features: &[Feature::MultiShotRecv, Feature::BufferRings],
        unit: "MiB",
        run: net::recv,
    },
];

/// The bench names, for `--only`.
pub fn names() -> Vec<&'static str> {
    BENCHES.iter().map(|b| b.name).collect()
}

/// Fewest rounds a time budget may stop at: fewer give no interval worth the name.
pub const MIN_SAMPLES: usize = 3;
/// Samples per variant when neither `--samples` nor `--time-budget` is given.
pub const DEFAULT_SAMPLES: usize = 20;
/// Upper bound on samples when only `--time-budget` is given.
const BUDGET_MAX_SAMPLES: usize = 10_000;

/// What to run and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// Benches to run (all when empty).
    pub only: Vec<String>,
    /// Multiplies each run's work.
    pub scale: u64,
    /// Samples per variant (the maximum when a time budget is also given).
    pub samples: Option<usize>,
    /// Per bench: stop sampling once this much time went by (after `MIN_SAMPLES` rounds).
    pub time_budget: Option<Duration>,
}

impl Options {
    fn max_samples(&self) -> usize {
        match (self.samples, self.time_budget) {
            (Some(n), _) => n,
            (None, Some(_)) => BUDGET_MAX_SAMPLES,
            (None, None) => DEFAULT_SAMPLES,
        }
    }
}

/// One variant's samples, or why it did not run.
pub struct VariantResult {
    pub variant: Variant,
    pub samples: Vec<Run>,
    pub unavailable: Option<&'static str>,
}

impl VariantResult {
    pub fn rates(&self) -> Vec<f64> {
        self.samples.iter().map(Run::rate).collect()
    }
}

/// Every sample of one bench.
pub struct BenchResult {
    pub bench: &'static Bench,
    pub variants: Vec<VariantResult>,
    pub elapsed: Duration,
}

fn selected(only: &[String]) -> Result<Vec<&'static Bench>, String> {
    for name in only {
        if !BENCHES.iter().any(|b| b.name == name) {
            return Err(format!(
                "unknown bench {name:?}: expected one of {}",
                names().join(", ")
            ));
        }
    }
    Ok(BENCHES
        .iter()
        .filter(|b| only.is_empty() || only.iter().any(|o| o == b.name))
        .collect())
}

/// Runs the selected benches: per bench, one warm-up run of each variant, then rounds of one
/// sample per variant (A B C A B C ...) so drift in the machine's speed hits all of them alike.
pub fn run_all(opts: &Options) -> Result<Vec<BenchResult>, String> {
    let benches = selected(&opts.only)?;
    let uring = safer_ring::features::detected()
        .io_uring_available()
        .is_ok();
    let max = opts.max_samples();
    let mut progress = progress::Progress::new(benches.len());
    let mut out = Vec::new();
    for (i, b) in benches.into_iter().enumerate() {
        let started = Instant::now();
        let mut variants: Vec<VariantResult> = Variant::ALL
            .iter()
            .map(|&variant| VariantResult {
                variant,
                samples: Vec::new(),
                unavailable: (variant != Variant::Epoll && !uring)
                    .then_some("io_uring unavailable"),
            })
            .collect();
        let run = |v: Variant| {
            (b.run)(v, opts.scale).map_err(|e| format!("bench {} ({}): {e}", b.name, v.name()))
        };
        for v in variants.iter().filter(|v| v.unavailable.is_none()) {
            progress.show(i, b.name, "warm-up", v.variant);
            run(v.variant)?;
        }
        for round in 0..max {
            let over_budget = opts.time_budget.is_some_and(|t| started.elapsed() >= t);
            if round >= MIN_SAMPLES && over_budget {
                break;
            }
            for v in variants.iter_mut().filter(|v| v.unavailable.is_none()) {
                progress.show(i, b.name, &format!("sample {}/{max}", round + 1), v.variant);
                v.samples.push(run(v.variant)?);
            }
        }
        out.push(BenchResult {
            bench: b,
            variants,
            elapsed: started.elapsed(),
        });
    }
    progress.finish();
    Ok(out)
}

/// Work per second in a short human form with about three significant digits (`3.54 M`,
/// `18.8 k`, `1123`).
pub fn human(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2} M", x / 1e6),
        x if x >= 1e4 => format!("{:.1} k", x / 1e3),
        x if x >= 100.0 || x == 0.0 => format!("{x:.0}"),
        x => format!("{x:.1}"),
    }
}

/// A ratio with two decimals, or three when two would round it onto 1.00 (so the printed
/// interval agrees with its verdict).
pub fn ratio(x: f64) -> String {
    if (x - 1.0).abs() < 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.2}")
    }
}
