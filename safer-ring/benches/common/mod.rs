//! Side-by-side timing for the harness-less benches (safer-ring's and `peers/`', which include
//! this file): every variant runs in alternating rounds in one process, so a busy machine slows
//! them alike and the ratios hold.
//! Rates are per CPU-second, on a clock each table chooses: this thread's CPU time where every
//! variant does its work (and its in-task kernel work) on the calling thread, the whole
//! process's where one hands work to other threads (tokio's `spawn_blocking`).
//! `SAFER_RING_BENCH_CLOCK=wall` uses wall time instead; `SAFER_RING_BENCH_ROUNDS=N` (default
//! 7, at least 5).

#![allow(dead_code)] // each bench uses part of it

use std::time::Instant;

pub mod nops;

/// The hand-batched shape: polls each op once (each pushes its SQE, so one enter submits the
/// batch), then awaits them in order, handing each output to `done`.
pub async fn hand_batched<F: std::future::Future + Unpin>(
    ops: &mut [Option<F>],
    mut done: impl FnMut(F::Output),
) {
    for op in ops.iter_mut() {
        let f = op.as_mut().expect("an op per slot");
        std::future::poll_fn(|cx| {
            let _ = std::pin::Pin::new(&mut *f).poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
    }
    for op in ops.iter_mut() {
        done(op.take().expect("an op per slot").await);
    }
}
pub mod reads;

#[derive(Clone, Copy)]
#[allow(dead_code)] // each bench uses one
pub enum Clock {
    /// `CLOCK_THREAD_CPUTIME_ID`: user + system time of the calling thread.
    Thread,
    /// `getrusage(RUSAGE_SELF)`: user + system time of every thread of the process (the
    /// blocking pool's and io_uring's io-wq workers included).
    Process,
}

fn wall_clock() -> bool {
    std::env::var("SAFER_RING_BENCH_CLOCK").is_ok_and(|v| v == "wall")
}

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

fn process_cpu() -> f64 {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage, which `ru` is.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(r, 0, "getrusage(RUSAGE_SELF)");
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    s(ru.ru_utime) + s(ru.ru_stime)
}

/// One variant: a name and a round that does a fixed number of operations and returns it.
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

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)))
}

/// One warm-up round of each variant, then `rounds()` alternating rounds; prints the rate
/// (median, min–max) and each variant's ratio to the first (computed per round, so from
/// neighbouring runs: median and range).
pub fn compare(title: &str, clock: Clock, variants: &mut [Variant<'_>]) {
    for v in variants.iter_mut() {
        (v.round)();
    }
    let wall = wall_clock();
    let start = Instant::now();
    let now = || match (wall, clock) {
        (true, _) => start.elapsed().as_secs_f64(),
        (false, Clock::Thread) => thread_cpu(),
        (false, Clock::Process) => process_cpu(),
    };
    let n = rounds();
    let mut rates = vec![Vec::with_capacity(n); variants.len()];
    for r in 0..n {
        // Alternate the order too, so no variant always runs right after the same one.
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
    let unit = match (wall, clock) {
        (true, _) => "M/s",
        (false, Clock::Thread) => "M/thread-CPU-s",
        (false, Clock::Process) => "M/process-CPU-s",
    };
    println!("\n{title} ({n} alternating rounds)");
    println!(
        "{:<34} {:>15} {:>21} {:>7} {:>15}",
        "variant", unit, "range", "ratio", "ratio range"
    );
    for (i, v) in variants.iter().enumerate() {
        let mut ratios: Vec<f64> = (0..n).map(|r| rates[i][r] / rates[0][r]).collect();
        let (rmin, rmax) = min_max(&ratios);
        let ratio = median(&mut ratios);
        let mut r = rates[i].clone();
        let (min, max) = min_max(&r);
        let med = median(&mut r);
        println!(
            "{:<34} {:>15.3} {:>9.3} – {:<9.3} {:>7.2} {:>6.2} – {:<6.2}",
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

/// `Some((variant, n))` for `... profile <variant> <n>`: run only that variant's round `n`
/// times (under callgrind, the difference of two `n` gives the per-op count).
pub fn profile_args() -> Option<(String, u64)> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "profile")?;
    let name = args.get(i + 1)?.clone();
    let n = args.get(i + 2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    Some((name, n))
}

/// Runs the variant named `name` `n` times; false if there is none.
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

/// Profiling mode when asked for, else the table; false if the variant to profile is missing.
pub fn run(title: &str, clock: Clock, variants: &mut [Variant<'_>]) -> bool {
    if let Some((name, n)) = profile_args() {
        return profile(variants, &name, n);
    }
    compare(title, clock, variants);
    true
}
