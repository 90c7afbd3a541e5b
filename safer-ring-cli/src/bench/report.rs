//! Estimates from the samples, as JSON (every sample included) and as a table.

use serde_json::{Value, json};

use super::stats::{self, Interval, Verdict};
use super::{BenchResult, Options, Run, Variant, VariantResult, human, ratio};

/// The pairs compared: the native path against each fallback.
const PAIRS: [(Variant, Variant); 2] = [
    (Variant::Native, Variant::Fallback),
    (Variant::Native, Variant::Epoll),
];

/// `a`'s rate over `b`'s with its interval and what it says.
pub struct Comparison {
    pub a: Variant,
    pub b: Variant,
    pub ratio: Interval,
    pub verdict: Verdict,
}

impl Comparison {
    pub fn verdict_text(&self) -> String {
        match self.verdict {
            Verdict::NoDifference => "no measurable difference".into(),
            Verdict::FirstFaster => format!("{} faster", self.a.name()),
            Verdict::SecondFaster => format!("{} faster", self.b.name()),
        }
    }
}

fn variant(r: &BenchResult, v: Variant) -> &VariantResult {
    r.variants
        .iter()
        .find(|x| x.variant == v)
        .expect("every variant has a slot")
}

/// The median and its interval, when the variant ran.
pub fn estimate(v: &VariantResult) -> Option<Interval> {
    (!v.samples.is_empty()).then(|| stats::median_ci(&v.rates()))
}

/// The ratios between variants that both ran.
pub fn comparisons(r: &BenchResult) -> Vec<Comparison> {
    PAIRS
        .iter()
        .filter_map(|&(a, b)| {
            let (ra, rb) = (variant(r, a).rates(), variant(r, b).rates());
            if ra.is_empty() || rb.is_empty() {
                return None;
            }
            let ratio = stats::ratio_ci(&ra, &rb);
            Some(Comparison {
                a,
                b,
                ratio,
                verdict: Verdict::of(&ratio),
            })
        })
        .collect()
}

fn sample_json(s: &Run) -> Value {
    json!({
        "rate": s.rate(),
        "seconds": s.took.as_secs_f64(),
        "work": s.work,
        "native": s.paths.iter().map(|p| p.native).sum::<u64>(),
        "fallback": s.paths.iter().map(|p| p.fallback).sum::<u64>(),
        "paths": s.paths.iter().map(|p| json!({
            "feature": p.feature.name(),
            "native": p.native,
            "fallback": p.fallback,
        })).collect::<Vec<_>>(),
    })
}

fn interval_json(i: &Interval, name: &str) -> Value {
    json!({
        name: i.estimate,
        "ci_low": i.low,
        "ci_high": i.high,
        "ci_level": i.level,
    })
}

/// Everything measured: settings, every sample, the estimates and verdicts.
pub fn json(opts: &Options, results: &[BenchResult]) -> Value {
    let benches: Vec<Value> = results
        .iter()
        .map(|r| {
            let variants: Vec<Value> = r
                .variants
                .iter()
                .map(|v| {
                    json!({
                        "variant": v.variant.name(),
                        "note": v.unavailable.unwrap_or(""),
                        "samples": v.samples.iter().map(sample_json).collect::<Vec<_>>(),
                        "estimate": estimate(v).map(|i| interval_json(&i, "median")),
                    })
                })
                .collect();
            let comparisons: Vec<Value> = comparisons(r)
                .iter()
                .map(|c| {
                    let mut o = interval_json(&c.ratio, "ratio");
                    o["a"] = c.a.name().into();
                    o["b"] = c.b.name().into();
                    o["verdict"] = c.verdict_text().into();
                    o
                })
                .collect();
            json!({
                "bench": r.bench.name,
                "feature": r.bench.feature().name(),
                "features": r.bench.features.iter().map(|f| f.name()).collect::<Vec<_>>(),
                "unit": format!("{}/s", r.bench.unit),
                "seconds": r.elapsed.as_secs_f64(),
                "variants": variants,
                "comparisons": comparisons,
            })
        })
        .collect();
    json!({
        "settings": {
            "scale": opts.scale,
            "max_samples": opts.max_samples(),
            "time_budget_seconds": opts.time_budget.map(|t| t.as_secs_f64()),
            "warmup_runs_per_variant": 1,
            "order": "interleaved rounds: one sample of each variant per round",
        },
        "statistics": {
            "estimate": "median of the samples' rates",
            "median_ci": "order-statistic interval (distribution-free); ci_level is its exact coverage",
            "ratio_ci": format!(
                "percentile bootstrap of median(a)/median(b), {} resamples, seed {:#x}",
                stats::RESAMPLES, stats::SEED
            ),
            "verdict": "no measurable difference when the ratio's interval includes 1",
        },
        "benches": benches,
    })
}

/// Per feature, native/fallback counts summed over a variant's samples (`-` when none).
fn paths(v: &VariantResult) -> String {
    let Some(first) = v.samples.first() else {
        return "-".into();
    };
    let parts: Vec<String> = first
        .paths
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let native: u64 = v.samples.iter().map(|s| s.paths[i].native).sum();
            let fallback: u64 = v.samples.iter().map(|s| s.paths[i].fallback).sum();
            (native + fallback > 0).then(|| format!("{} {native}/{fallback}", p.feature.name()))
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn level_note(i: &Interval) -> String {
    if i.level >= stats::LEVEL {
        String::new()
    } else {
        format!(" ({:.0}% only)", i.level * 100.0)
    }
}

/// The estimates as a table: per bench, each variant's median and 95 % interval, the path
/// counts, and the ratios with their verdicts.
pub fn table(results: &[BenchResult]) -> String {
    let mut out = String::new();
    for r in results {
        let b = r.bench;
        let n = r
            .variants
            .iter()
            .map(|v| v.samples.len())
            .max()
            .unwrap_or(0);
        out += &format!(
            "{} ({}/s; {} samples per variant; path: {})\n",
            b.name,
            b.unit,
            n,
            b.features
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(" then "),
        );
        out += &format!(
            "  {:<22} {:>10}  {:<30} {}\n",
            "VARIANT", "MEDIAN", "95% CI", "NATIVE/FALLBACK (all samples)"
        );
        for v in &r.variants {
            let (median, ci) = match estimate(v) {
                Some(i) => (
                    human(i.estimate),
                    format!("{} – {}{}", human(i.low), human(i.high), level_note(&i)),
                ),
                None => (v.unavailable.unwrap_or("-").to_string(), String::new()),
            };
            out += &format!(
                "  {:<22} {:>10}  {:<30} {}\n",
                v.variant.name(),
                median,
                ci,
                paths(v)
            );
        }
        for c in comparisons(r) {
            out += &format!(
                "  {} / {}: {}x (95% CI {} – {}): {}\n",
                c.a.name(),
                c.b.name(),
                ratio(c.ratio.estimate),
                ratio(c.ratio.low),
                ratio(c.ratio.high),
                c.verdict_text()
            );
        }
        out += "\n";
    }
    let fewest = results
        .iter()
        .flat_map(|r| r.variants.iter().map(|v| v.samples.len()))
        .filter(|&n| n > 0)
        .min();
    if fewest.is_some_and(|n| n < FEW) {
        out += &format!(
            "note: with fewer than {FEW} samples per variant no median interval reaches 95% (its \
             real coverage is shown), and the bootstrap's ratio intervals are too narrow.\n"
        );
    }
    out
}

/// Below this many samples the intervals fall short of 95 %.
const FEW: usize = 6;
