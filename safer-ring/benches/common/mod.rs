//! Side-by-side timing for the harness-less benches: variants run in alternating rounds in one
//! process, so a busy machine slows every variant alike and the ratios stay meaningful. Rates
//! are per second of this thread's CPU time (user + system, which includes the kernel's
//! io_uring work run in this task), so time spent descheduled on a shared machine does not
//! count; `SAFER_RING_BENCH_CLOCK=wall` uses wall time instead.

#![allow(dead_code)] // each bench uses part of it

use std::time::Instant;

/// This thread's CPU time in seconds.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Seconds on the chosen clock (see the module doc).
fn clock() -> impl Fn() -> f64 {
    let wall = std::env::var("SAFER_RING_BENCH_CLOCK").is_ok_and(|v| v == "wall");
    let start = Instant::now();
    move || {
        if wall {
            start.elapsed().as_secs_f64()
        } else {
            thread_cpu()
        }
    }
}

/// One variant: a name and a round that does `ops` operations and returns how many it did.
pub struct Variant<'a> {
    pub name: &'static str,
    pub round: Box<dyn FnMut() -> u64 + 'a>,
}

impl<'a> Variant<'a> {
    pub fn new(name: &'static str, round: impl FnMut() -> u64 + 'a) -> Self {
        Variant {
            name,
            round: Box::new(round),
        }
    }
}

/// Rounds per variant: `SAFER_RING_BENCH_ROUNDS` (default 7, at least 5).
pub fn rounds() -> usize {
    std::env::var("SAFER_RING_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(5)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs every variant once (warm-up), then `rounds()` alternating rounds, and prints ops/s
/// (median, min–max) and each variant's ratio to the first one (the reference), computed per
/// round from neighbouring runs: median and range.
pub fn compare(title: &str, variants: &mut [Variant<'_>]) {
    for v in variants.iter_mut() {
        (v.round)();
    }
    let n = rounds();
    let now = clock();
    let mut rates = vec![Vec::with_capacity(n); variants.len()];
    for r in 0..n {
        // Alternate the order too, so neither side always runs right after the other.
        let order: Vec<usize> = if r % 2 == 0 {
            (0..variants.len()).collect()
        } else {
            (0..variants.len()).rev().collect()
        };
        for i in order {
            let t = now();
            let ops = (variants[i].round)();
            rates[i].push(ops as f64 / (now() - t));
        }
    }
    println!("\n{title} ({n} alternating rounds)");
    println!(
        "{:<34} {:>12} {:>23} {:>7} {:>15}",
        "variant",
        if std::env::var("SAFER_RING_BENCH_CLOCK").is_ok_and(|v| v == "wall") {
            "Mops/s"
        } else {
            "Mops/CPU-s"
        },
        "range",
        "ratio",
        "ratio range"
    );
    for (i, v) in variants.iter().enumerate() {
        let mut ratios: Vec<f64> = (0..n).map(|r| rates[i][r] / rates[0][r]).collect();
        let (rmin, rmax) = min_max(&ratios);
        let ratio = median(&mut ratios);
        let mut r = rates[i].clone();
        let (min, max) = min_max(&r);
        let med = median(&mut r);
        println!(
            "{:<34} {:>12.3} {:>10.3} – {:<10.3} {:>7.2} {:>6.2} – {:<6.2}",
            v.name,
            med / 1e6,
            min / 1e6,
            max / 1e6,
            ratio,
            rmin,
            rmax
        );
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)))
}

/// `Some(iterations)` when the bench is run for a profiler: `<bench> profile <variant> <n>`
/// runs only that variant's round `n` times (compare two `n` under callgrind for per-op counts).
pub fn profile_args() -> Option<(String, u64)> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "profile")?;
    let name = args.get(i + 1)?.clone();
    let n = args.get(i + 2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    Some((name, n))
}

/// Runs the variant named `name` `n` times (profiling mode); false if there is none.
pub fn profile(variants: &mut [Variant<'_>], name: &str, n: u64) -> bool {
    let Some(v) = variants.iter_mut().find(|v| v.name == name) else {
        eprintln!(
            "no variant {name:?} among {:?}",
            variants.iter().map(|v| v.name).collect::<Vec<_>>()
        );
        return false;
    };
    let mut ops = 0;
    for _ in 0..n {
        ops += (v.round)();
    }
    eprintln!("{name}: {ops} ops");
    true
}
