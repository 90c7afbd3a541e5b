//! NOP throughput, safer-ring's safe API vs the raw `io-uring` crate, in alternating rounds.
//! Goals (issue 13): hand-batched 32 >= 0.95 x raw; 32 spawned tasks >= 0.80 x raw.
//!
//! `cargo bench --bench nop` prints the table; `.../nop-<hash> profile <variant> <rounds>`
//! runs one variant alone (for callgrind: see README "Performance").

mod common;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::Poll;

use common::Variant;
use io_uring::{IoUring, opcode};
use safer_ring::{BackendKind, Ring, SaferRingConfig};

/// Operations per round.
const OPS: u64 = 64 * 1024;

/// The same setup flags as the safe ring's io_uring backend.
fn raw_ring() -> IoUring {
    IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(256)
        .or_else(|_| IoUring::new(256))
        .expect("io_uring")
}

fn raw_round(ring: &mut IoUring, batch: usize) -> u64 {
    for _ in 0..OPS / batch as u64 {
        for i in 0..batch {
            let e = opcode::Nop::new().build().user_data(i as u64);
            // SAFETY: a NOP carries no pointers.
            unsafe { ring.submission().push(&e).unwrap() };
        }
        ring.submit_and_wait(batch).unwrap();
        let n = ring
            .completion()
            .inspect(|c| {
                black_box(c.result());
            })
            .count();
        assert_eq!(n, batch);
    }
    OPS
}

fn safe_ring(kind: BackendKind) -> Option<Ring> {
    Ring::with_config(SaferRingConfig::default().entries(256).backend(kind)).ok()
}

/// 32 ops pushed by a first poll each (one enter for the batch), then awaited in order.
fn batched_round(ring: &Ring) -> u64 {
    ring.block_on(async {
        for _ in 0..OPS / 32 {
            let mut ops: [_; 32] = std::array::from_fn(|_| Some(ring.nop()));
            for op in ops.iter_mut() {
                let f = op.as_mut().unwrap();
                std::future::poll_fn(|cx| {
                    let _ = Pin::new(&mut *f).poll(cx);
                    Poll::Ready(())
                })
                .await;
            }
            for op in ops.iter_mut() {
                op.take().unwrap().await.unwrap();
            }
        }
    });
    OPS
}

/// 32 spawned tasks, each awaiting one NOP after another.
fn spawned_round(ring: &Ring) -> u64 {
    ring.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let r = safer_ring::RingRef::clone(ring);
                ring.spawn(async move {
                    for _ in 0..OPS / 32 {
                        r.nop().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    OPS
}

fn join_all_round(ring: &Ring, n: usize) -> u64 {
    ring.block_on(async {
        for _ in 0..OPS / n as u64 {
            for r in futures_util::future::join_all((0..n).map(|_| ring.nop())).await {
                r.unwrap();
            }
        }
    });
    OPS
}

fn main() {
    let mut raw32 = raw_ring();
    let mut raw8 = raw_ring();
    let uring = safe_ring(BackendKind::IoUring);
    let epoll = safe_ring(BackendKind::Epoll).expect("epoll ring");
    let mut v = vec![Variant::new("raw io-uring, batch 32", || {
        raw_round(&mut raw32, 32)
    })];
    if let Some(r) = &uring {
        v.push(Variant::new("io_uring hand-batched 32", || {
            batched_round(r)
        }));
        v.push(Variant::new("io_uring 32 spawned tasks", || {
            spawned_round(r)
        }));
        v.push(Variant::new("io_uring join_all 32", || {
            join_all_round(r, 32)
        }));
    } else {
        eprintln!("io_uring unavailable: safe io_uring variants skipped");
    }
    v.push(Variant::new("epoll hand-batched 32", || {
        batched_round(&epoll)
    }));
    v.push(Variant::new("epoll 32 spawned tasks", || {
        spawned_round(&epoll)
    }));
    let mut v8 = vec![Variant::new("raw io-uring, batch 8", || {
        raw_round(&mut raw8, 8)
    })];
    if let Some(r) = &uring {
        v8.push(Variant::new("io_uring join_all 8", || join_all_round(r, 8)));
    }
    if let Some((name, n)) = common::profile_args() {
        let in_v8 = v8.iter().any(|x| x.name == name);
        let ok = if in_v8 {
            common::profile(&mut v8, &name, n)
        } else {
            common::profile(&mut v, &name, n)
        };
        std::process::exit(if ok { 0 } else { 2 });
    }
    common::compare("NOP, 64 Ki per round, ratio to raw batch 32", &mut v);
    common::compare("NOP, ratio to raw batch 8", &mut v8);
}
