//! The NOP shapes every NOP table measures (safer-ring's `nop` bench and `peers/`'): a raw
//! io-uring loop with the safe ring's setup flags, and safer-ring hand-batched, in spawned tasks
//! and under `join_all`.

use std::hint::black_box;

use io_uring::{IoUring, opcode};
use safer_ring::{BackendKind, Ring, SaferRingConfig};

/// Operations per round.
pub const OPS: u64 = 64 * 1024;

/// The same setup flags as the safe ring's io_uring backend.
pub fn raw_ring() -> IoUring {
    IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(256)
        .or_else(|_| IoUring::new(256))
        .expect("io_uring")
}

pub fn raw_round(ring: &mut IoUring, batch: usize) -> u64 {
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

pub fn safe_ring(kind: BackendKind) -> Option<Ring> {
    Ring::with_config(SaferRingConfig::default().entries(256).backend(kind)).ok()
}

/// 32 ops pushed by a first poll each (one enter for the batch), then awaited in order.
pub fn batched_round(ring: &Ring) -> u64 {
    ring.block_on(async {
        for _ in 0..OPS / 32 {
            let mut ops: [_; 32] = std::array::from_fn(|_| Some(ring.nop()));
            super::hand_batched(&mut ops, |r| r.unwrap()).await;
        }
    });
    OPS
}

/// 32 spawned tasks, each awaiting one NOP after another.
pub fn spawned_round(ring: &Ring) -> u64 {
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

pub fn join_all_round(ring: &Ring, n: usize) -> u64 {
    ring.block_on(async {
        for _ in 0..OPS / n as u64 {
            for r in futures_util::future::join_all((0..n).map(|_| ring.nop())).await {
                r.unwrap();
            }
        }
    });
    OPS
}
