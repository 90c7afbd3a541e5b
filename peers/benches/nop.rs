//! NOPs per thread-CPU-second: a raw io-uring loop, safer-ring's io_uring backend and
//! tokio-uring's `no_op()`, in the shapes of `safer-ring/benches/nop.rs` (hand-batched 32, 32
//! spawned tasks, `join_all` of 32), 64 Ki NOPs per round, ratios to the raw loop.
//!
//! `cargo bench --manifest-path peers/Cargo.toml --bench nop`; `<bench binary> profile
//! <variant> <n>` runs one variant alone (`scripts/callgrind-per-op.sh peers:nop ...`).

#[path = "../../safer-ring/benches/common/mod.rs"]
mod measure;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures_util::future::{join_all, maybe_done};
use safer_ring::{BackendKind, Ring, SaferRingConfig};

use measure::nops::{OPS, batched_round, join_all_round, raw_ring, raw_round, spawned_round};
use measure::{Clock, Variant};

const BATCH: usize = 32;

/// Element `i` of a pinned array, pinned.
fn pinned_at<F>(a: Pin<&mut [F; BATCH]>, i: usize) -> Pin<&mut F> {
    // SAFETY: pinning the array pins its elements (structural pinning): nothing here moves an
    // element out of it or swaps one, and the array is dropped in place.
    unsafe { a.map_unchecked_mut(|a| &mut a[i]) }
}

/// The same shape for tokio-uring. `no_op()` is an `async fn`: creating its future does
/// nothing; its first poll pushes the SQE (tokio-uring submits the queue when the runtime
/// parks), as safer-ring's first poll does. Its futures are `!Unpin`, so they are pinned in
/// place in an array (boxing each would add an allocation per op that the others don't pay).
fn tu_batched(rt: &tokio_uring::Runtime) -> u64 {
    rt.block_on(async {
        for _ in 0..OPS / BATCH as u64 {
            let ops: [_; BATCH] = std::array::from_fn(|_| maybe_done(tokio_uring::no_op()));
            let mut ops = std::pin::pin!(ops);
            for i in 0..BATCH {
                let mut f = pinned_at(ops.as_mut(), i);
                std::future::poll_fn(|cx| {
                    let _ = f.as_mut().poll(cx);
                    Poll::Ready(())
                })
                .await;
            }
            for i in 0..BATCH {
                let mut f = pinned_at(ops.as_mut(), i);
                f.as_mut().await;
                f.take_output().unwrap().unwrap();
            }
        }
    });
    OPS
}

fn tu_spawned(rt: &tokio_uring::Runtime) -> u64 {
    rt.block_on(async {
        let tasks: Vec<_> = (0..BATCH)
            .map(|_| {
                tokio_uring::spawn(async {
                    for _ in 0..OPS / BATCH as u64 {
                        tokio_uring::no_op().await.unwrap();
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

fn tu_join_all(rt: &tokio_uring::Runtime) -> u64 {
    rt.block_on(async {
        for _ in 0..OPS / BATCH as u64 {
            for r in join_all((0..BATCH).map(|_| tokio_uring::no_op())).await {
                r.unwrap();
            }
        }
    });
    OPS
}

fn main() {
    let mut raw = raw_ring();
    let sr = Ring::with_config(
        SaferRingConfig::default()
            .entries(256)
            .backend(BackendKind::IoUring),
    )
    .expect("safer-ring's io_uring backend");
    // tokio-uring as its users start it: default builder (256 entries, no setup flags). One
    // runtime for every round, so its creation is not counted.
    let tu = tokio_uring::Runtime::new(&tokio_uring::builder()).expect("tokio-uring runtime");
    let mut v = vec![
        Variant::new("raw io-uring, batch 32", || raw_round(&mut raw, BATCH)),
        Variant::new("safer-ring hand-batched 32", || batched_round(&sr)),
        Variant::new("safer-ring 32 spawned tasks", || spawned_round(&sr)),
        Variant::new("safer-ring join_all 32", || join_all_round(&sr, BATCH)),
        Variant::new("tokio-uring hand-batched 32", || tu_batched(&tu)),
        Variant::new("tokio-uring 32 spawned tasks", || tu_spawned(&tu)),
        Variant::new("tokio-uring join_all 32", || tu_join_all(&tu)),
    ];
    let ok = measure::run(
        "NOP, 64 Ki per round, ratio to raw io-uring batch 32",
        Clock::Thread,
        &mut v,
    );
    std::process::exit(if ok { 0 } else { 2 });
}
