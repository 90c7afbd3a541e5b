//! The hot path allocates nothing per operation beyond the caller's buffer: a counting global
//! allocator around NOPs, file reads, sends and receives after a warm-up (both backends); and
//! what the `Compat` adapter costs (`compat_cost`, measured, not asserted).
//!
//! The allocator counts per thread: a test counts only what its own thread allocates, not the
//! other tests running beside it in this process.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "tokio")]
mod compat_cost;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use safer_ring::{OpenOptions, Ring};
use support::TempPath;

/// Counts each thread's allocations (and reallocations).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counters are thread-local `Cell`s that never
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations this thread has made so far.
fn thread_allocs() -> u64 {
    ALLOCS.get()
}

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = thread_allocs();
    f();
    thread_allocs() - before
}

const N: usize = 1000;

backend_test!(nops_allocate_nothing, |ring| {
    let run = |ring: &Ring| {
        ring.block_on(async {
            for _ in 0..N {
                ring.nop().await.unwrap();
            }
        })
    };
    run(&ring); // warm-up: slab, waker table, queues reach their size
    let n = allocations(|| run(&ring));
    assert_eq!(n, 0, "{} NOPs on {} allocated {n} times", N, ring.backend());
    // Spawned tasks: the task itself is boxed once, its operations allocate nothing.
    let task = |ring: &Ring| {
        let r = safer_ring::RingRef::clone(ring);
        let h = ring.spawn(async move {
            for _ in 0..N {
                r.nop().await.unwrap();
            }
        });
        ring.block_on(h).unwrap();
    };
    task(&ring);
    let one = allocations(|| task(&ring));
    assert!(
        one <= 4,
        "a task of {N} NOPs allocated {one} times on {}",
        ring.backend()
    );
});

backend_test!(
    reads_sends_and_receives_allocate_nothing_but_their_buffers,
    |ring| {
        let p = TempPath::new("allocs");
        std::fs::write(&p.0, vec![7u8; 4096]).unwrap();
        let f = ring
            .block_on(ring.open(&p.0, &OpenOptions::new().read(true)))
            .unwrap();
        let (a, b) = ring.unix_pair().unwrap();
        let run = |ring: &Ring| {
            ring.block_on(async {
                let mut buf = Vec::with_capacity(4096);
                let mut msg = vec![1u8; 512];
                let mut got = Vec::with_capacity(512);
                for i in 0..N {
                    buf.clear();
                    let (n, b2) = ring.read_at(&f, buf, (i % 8 * 512) as u64).await;
                    assert_eq!(n.unwrap(), 4096 - i % 8 * 512);
                    buf = b2;
                    let (n, m2) = ring.send(&a, msg).await;
                    assert_eq!(n.unwrap(), 512);
                    msg = m2;
                    got.clear();
                    let (n, g2) = ring.recv(&b, got).await;
                    assert_eq!(n.unwrap(), 512);
                    got = g2;
                }
            })
        };
        run(&ring);
        // Three: the caller's own buffers, made once per run.
        let n = allocations(|| run(&ring));
        assert_eq!(
            n,
            3,
            "{} read/send/recv rounds on {} allocated {n} times",
            N,
            ring.backend()
        );
    }
);
