//! `safer-ring bench`: samples, estimates, path counts, the plot and bad input, through the
//! real binary on this kernel.

use std::process::{Command, Output};

use safer_ring::Feature;
use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_safer-ring"))
        .arg("bench")
        .args(args)
        .env_remove("SAFER_RING_BACKEND")
        .env_remove("SAFER_RING_FEATURES")
        .output()
        .expect("the binary runs")
}

fn bench_json(args: &[&str]) -> Value {
    let out = bench(&[args, &["--json"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn failure(args: &[&str]) -> String {
    let out = bench(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "no results on failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn uring() -> bool {
    safer_ring::features::detected()
        .io_uring_available()
        .is_ok()
}

fn variant<'a>(bench: &'a Value, name: &str) -> &'a Value {
    bench["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["variant"] == name)
        .unwrap_or_else(|| panic!("variant {name} in {bench}"))
}

/// A sample's counts for `feature`.
fn path(sample: &Value, feature: Feature) -> (u64, u64) {
    let p = sample["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["feature"] == feature.name())
        .unwrap_or_else(|| panic!("{feature} in {sample}"));
    (
        p["native"].as_u64().unwrap(),
        p["fallback"].as_u64().unwrap(),
    )
}

#[test]
fn nop_has_the_samples_estimates_and_enter_counts() {
    let json = bench_json(&["--quick", "--samples", "3", "--only", "nop"]);
    assert_eq!(json["settings"]["max_samples"], 3);
    let benches = json["benches"].as_array().unwrap();
    assert_eq!(benches.len(), 1);
    let b = &benches[0];
    assert_eq!(b["bench"], "nop");
    assert_eq!(b["feature"], "RegisteredRingFd");
    for v in b["variants"].as_array().unwrap() {
        let samples = v["samples"].as_array().unwrap();
        if v["variant"] != "epoll" && !uring() {
            assert_eq!(v["note"], "io_uring unavailable", "{v}");
            assert!(samples.is_empty() && v["estimate"].is_null(), "{v}");
            continue;
        }
        assert_eq!(samples.len(), 3, "{v}");
        for s in samples {
            let (rate, secs, work) = (
                s["rate"].as_f64().unwrap(),
                s["seconds"].as_f64().unwrap(),
                s["work"].as_u64().unwrap(),
            );
            assert_eq!(work, 32_000, "1000 batches of 32 NOPs: {s}");
            assert!(
                secs > 0.0 && (rate - work as f64 / secs).abs() <= rate * 1e-9,
                "{s}"
            );
        }
        let e = &v["estimate"];
        let (lo, med, hi) = (
            e["ci_low"].as_f64().unwrap(),
            e["median"].as_f64().unwrap(),
            e["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= med && med <= hi, "{e}");
        // Three samples: the interval is their range, which covers the median 75% of the time.
        let rates: Vec<f64> = samples
            .iter()
            .map(|s| s["rate"].as_f64().unwrap())
            .collect();
        let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(lo, min, "{v}");
        assert_eq!(e["ci_level"], 0.75, "{e}");
    }
    // Every enter, counted by the library: through the registered fd natively, the plain fd
    // with the feature off, none on epoll.
    let have = safer_ring::features::is_available(Feature::RegisteredRingFd);
    if uring() {
        for s in variant(b, "io_uring")["samples"].as_array().unwrap() {
            let (native, fallback) = path(s, Feature::RegisteredRingFd);
            assert_eq!((native > 0, fallback > 0), (have, !have), "{s}");
            // A batch of 32 goes in one submission: one enter (more if the wait is split).
            assert!((1000..8000).contains(&(native + fallback)), "{s}");
        }
        for s in variant(b, "io_uring, feature off")["samples"]
            .as_array()
            .unwrap()
        {
            let (native, fallback) = path(s, Feature::RegisteredRingFd);
            assert!(native == 0 && (1000..8000).contains(&fallback), "{s}");
        }
    }
    for s in variant(b, "epoll")["samples"].as_array().unwrap() {
        assert_eq!(path(s, Feature::RegisteredRingFd), (0, 0), "{s}");
    }
    let comparisons = b["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), if uring() { 2 } else { 0 });
    for c in comparisons {
        let (lo, ratio, hi) = (
            c["ci_low"].as_f64().unwrap(),
            c["ratio"].as_f64().unwrap(),
            c["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= ratio && ratio <= hi, "{c}");
        let verdict = c["verdict"].as_str().unwrap();
        if lo <= 1.0 && 1.0 <= hi {
            assert_eq!(verdict, "no measurable difference", "{c}");
        } else {
            assert!(verdict.ends_with(" faster"), "{c}");
        }
    }
}

#[test]
fn nop1_enters_once_per_operation() {
    if !uring() {
        return;
    }
    let json = bench_json(&["--quick", "--samples", "3", "--only", "nop1"]);
    for v in json["benches"][0]["variants"].as_array().unwrap() {
        for s in v["samples"].as_array().unwrap() {
            let (native, fallback) = path(s, Feature::RegisteredRingFd);
            match v["variant"].as_str().unwrap() {
                "epoll" => assert_eq!(native + fallback, 0, "{s}"),
                _ => assert!(native + fallback >= 32_000, "{s}"),
            }
        }
    }
}

/// Every bench on every variant, and each path the one its variant asks for.
#[test]
fn every_bench_runs_every_variant_on_its_path() {
    let json = bench_json(&["--quick", "--samples", "3"]);
    let benches = json["benches"].as_array().unwrap();
    assert_eq!(benches.len(), 8);
    for b in benches {
        let feature: Feature = b["feature"].as_str().unwrap().parse().unwrap();
        for v in b["variants"].as_array().unwrap() {
            let name = v["variant"].as_str().unwrap();
            let samples = v["samples"].as_array().unwrap();
            if name != "epoll" && !uring() {
                assert!(samples.is_empty());
                continue;
            }
            assert_eq!(samples.len(), 3, "{b}");
            for s in samples {
                assert!(s["rate"].as_f64().unwrap() > 0.0, "{s}");
                let (native, _) = path(s, feature);
                let expect = name == "io_uring" && safer_ring::features::is_available(feature);
                assert_eq!(native > 0, expect, "{} {name}: {s}", b["bench"]);
                if name == "epoll" {
                    assert_eq!(s["native"], 0, "{s}");
                }
            }
        }
    }
}

/// recv with multishot forced off runs the buffer-select tier, and says so.
#[test]
fn recv_reports_the_tier_that_ran() {
    if !uring() {
        return;
    }
    let json = bench_json(&["--quick", "--samples", "3", "--only", "recv"]);
    let b = &json["benches"][0];
    let rings = safer_ring::features::is_available(Feature::BufferRings);
    let multi = rings && safer_ring::features::is_available(Feature::MultiShotRecv);
    for s in variant(b, "io_uring, feature off")["samples"]
        .as_array()
        .unwrap()
    {
        assert_eq!(path(s, Feature::MultiShotRecv), (0, 0), "{s}");
        let (native, fallback) = path(s, Feature::BufferRings);
        assert_eq!(native > 0, rings, "{s}");
        assert!(native + fallback > 0, "{s}");
    }
    for s in variant(b, "io_uring")["samples"].as_array().unwrap() {
        assert_eq!(path(s, Feature::MultiShotRecv).0 > 0, multi, "{s}");
    }
}

#[test]
fn a_time_budget_stops_after_the_minimum_rounds() {
    let json = bench_json(&["--quick", "--only", "msg_ring", "--time-budget", "0.001"]);
    for v in json["benches"][0]["variants"].as_array().unwrap() {
        if v["note"] == "" {
            assert_eq!(v["samples"].as_array().unwrap().len(), 3, "{v}");
        }
    }
}

#[test]
fn the_plot_is_an_svg_with_a_panel_per_bench() {
    let dir = std::env::temp_dir().join(format!("safer-ring-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bench.svg");
    let out = bench(&[
        "--quick",
        "--samples",
        "3",
        "--only",
        "nop,accept",
        "--plot",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: Vec<&str> = root
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for bench in ["nop (ops/s)", "accept (conns/s)"] {
        let panels = texts.iter().filter(|t| t.starts_with(bench)).count();
        assert_eq!(panels, 1, "{bench} in {texts:?}");
    }
    assert!(
        !texts.iter().any(|t| t.starts_with("msg_ring")),
        "{texts:?}"
    );
    // Each variant's row is labelled once per panel.
    let rows = texts.iter().filter(|t| **t == "epoll").count();
    assert_eq!(rows, 2, "{texts:?}");
    // Median markers and samples are circles: at least one per sample.
    let circles = root
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    let ran = if uring() { 3 } else { 1 };
    assert!(circles >= 2 * ran * 3, "{circles}");
}

#[test]
fn bad_values_are_named() {
    let err = failure(&["--samples", "0"]);
    assert!(
        err.contains("'--samples <N>'")
            && err.contains("at least 3 samples")
            && err.contains("got 0"),
        "{err}"
    );
    let err = failure(&["--samples", "many"]);
    assert!(
        err.contains("whole number") && err.contains("\"many\""),
        "{err}"
    );
    let err = failure(&["--time-budget", "-1"]);
    assert!(
        err.contains("'--time-budget <SECS>'") && err.contains("positive"),
        "{err}"
    );
    let err = failure(&["--only", "nope"]);
    assert!(
        err.contains("unknown bench \"nope\": expected one of nop, nop1, msg_ring"),
        "{err}"
    );
    let err = failure(&[
        "--quick",
        "--samples",
        "3",
        "--only",
        "nop",
        "--plot",
        "/nonexistent-dir/p.svg",
    ]);
    assert!(
        err.contains("--plot: cannot write /nonexistent-dir/p.svg"),
        "{err}"
    );
}
