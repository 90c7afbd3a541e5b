//! Stress: many concurrent ops on both backends with ~10 % of futures dropped mid-flight.
//! No completion is lost (every surviving future finishes, the ring drains to zero), no fd
//! leaks (`/proc/self/fd` before and after), and memory stays flat. Both backends run inside
//! one test, serialized with the other tests of this binary, so nothing else opens fds (or
//! grows the process's memory) while they are counted. CI runs 40 000 ops per backend;
//! `cargo test --release -p safer-ring --test process -- --ignored stress` runs 1 M.

use std::cell::Cell;
use std::rc::Rc;
use std::task::{Context, Waker};
use std::time::Duration;

use safer_ring::{BackendKind, Ring};

use crate::support;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// Runs `total` ops in waves of `width` concurrent tasks; every 10th op is dropped after its
/// first poll. Returns the number of ops that completed normally.
fn churn(ring: &Rc<Ring>, total: usize, width: usize) -> usize {
    let (r, w) = ring.pipe().unwrap();
    let (r, w) = (Rc::new(r), Rc::new(w));
    let completed = Rc::new(Cell::new(0usize));
    let pending = Rc::new(Cell::new([0i64; 4])); // outstanding per op kind, for diagnostics
    let mut issued = 0;
    let tasks = support::Tasks::default();
    while issued < total {
        let wave = width.min(total - issued);
        for i in 0..wave {
            let n = issued + i;
            let (ring2, r2, w2, done) = (ring.clone(), r.clone(), w.clone(), completed.clone());
            let pend = pending.clone();
            let bump = move |d: i64| {
                let mut p = pend.get();
                p[n % 4] += d;
                pend.set(p);
            };
            bump(1);
            tasks.spawn(ring, async move {
                match n % 4 {
                    0 => ring2.nop().await.unwrap(),
                    1 => {
                        let (res, _) = ring2.write(&*w2, vec![n as u8; 16]).await;
                        assert_eq!(res.unwrap(), 16);
                    }
                    2 => {
                        // A read that may or may not find data: bounded by a timeout.
                        let (res, _) = ring2
                            .read(&*r2, Vec::with_capacity(64))
                            .timeout(Duration::from_millis(2))
                            .await;
                        if let Err(e) = res {
                            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
                        }
                    }
                    _ => ring2.sleep(Duration::from_micros(50)).await.unwrap(),
                }
                done.set(done.get() + 1);
                bump(-1);
            });
        }
        // Ops dropped mid-flight: polled once (submitted), then dropped.
        for _ in 0..wave / 10 {
            let mut op = ring.read(&*r, vec![0u8; 32]);
            let mut cx = Context::from_waker(Waker::noop());
            let _ = std::pin::Pin::new(&mut op).poll(&mut cx);
            drop(op);
        }
        issued += wave;
        let started = std::time::Instant::now();
        ring.block_on(async {
            while completed.get() < issued {
                tasks.check();
                ring.sleep(Duration::from_micros(100)).await.unwrap();
                // A lost completion shows up as a wave that never finishes: fail, don't hang.
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{}: wave stuck: {} of {issued} done, {} in flight, outstanding [nop, write, read, sleep] = {:?}",
                    ring.backend(),
                    completed.get(),
                    ring.in_flight(),
                    pending.get()
                );
            }
        });
    }
    completed.get()
}

use std::future::Future;

fn run(total: usize) {
    let fds_before = support::fd_count();
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let Some(ring) = support::ring(kind) else {
            continue;
        };
        let ring = Rc::new(ring);
        churn(&ring, total / 20, 256); // warm-up: allocator and slab reach steady state
        let rss0 = rss_kib();
        let done = churn(&ring, total, 256);
        assert_eq!(done, total, "{kind}: every surviving op completed");
        ring.block_on(async {
            for _ in 0..1000 {
                if ring.in_flight() == 0 {
                    break;
                }
                ring.sleep(Duration::from_millis(1)).await.unwrap();
            }
        });
        assert_eq!(ring.in_flight(), 0, "{kind}: no completion lost");
        let grown = rss_kib().saturating_sub(rss0);
        assert!(
            grown < 8 * 1024,
            "{kind}: RSS grew {grown} KiB over {total} ops"
        );
        eprintln!("{kind}: {total} ops, RSS growth {grown} KiB");
    }
    assert_eq!(support::fd_count(), fds_before, "fd leak");
}

#[test]
fn stress_reduced() {
    let _serial = support::serial();
    run(40_000);
}

#[test]
#[ignore = "full run: cargo test --release -p safer-ring --test process -- --ignored stress"]
fn stress_one_million() {
    let _serial = support::serial();
    run(1_000_000);
}
