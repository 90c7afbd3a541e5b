//! Found by an adversarial review (R1, failed on commit 24b4eab): a panicking tracing subscriber
//! inside `Driver::shutdown` made the ring free the buffer of an operation still in flight. Serialized with the other tests
//! of this binary, none of which sets a subscriber: tracing's callsite interest cache is
//! process-wide. `unsafe` only in harness helpers (dup).

use std::io::Write;
use std::time::Duration;

use safer_ring::{BackendKind, SaferRingConfig};
use support::soundness::*;

use crate::support;

// ---------------------------------------------------------------------------------------------
// R1: a tracing subscriber (safe user code, named in SOUNDNESS.md §3/§4) that panics inside
// `Driver::shutdown` makes the ring free the buffers of operations still in flight.
// ---------------------------------------------------------------------------------------------

/// Ring drop with a read still in flight (drain_timeout 0: it is "leaked"); the subscriber
/// panics at the "leaking their buffers" warning, i.e. after `shut_down` was set and before
/// the slab entries are forgotten. `Driver::drop` then skips shutdown and the slab (with the
/// orphan's buffer) is dropped normally while the kernel still has the read armed (a
/// `RingHandle` keeps the io_uring instance alive through the mailbox's dup of the ring fd).
#[test]
fn r1_subscriber_panic_in_shutdown_frees_in_flight_buffer() {
    let _serial = support::serial();
    let cfg = SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .entries(8)
        // Task work runs on this thread's next syscall return (no DEFER_TASKRUN), so the
        // kernel's write needs no io_uring_enter from us.
        .coop_taskrun(false)
        .defer_taskrun(false)
        .drain_timeout(Duration::ZERO);
    let Some(ring) = support::ring_with(cfg) else {
        return;
    };
    let _handle = ring.handle(); // keeps the io_uring instance alive, as any RingHandle does
    let (r, w) = ring.pipe().unwrap();
    {
        let mut op = ring.read(&r, vec![0u8; SIZE]);
        assert!(poll_once(&mut op).is_pending());
        ring.poll_completions().unwrap(); // submitted: armed on the empty pipe
        drop(op); // orphaned: the ring owns the buffer now
    }
    let guard = tracing::subscriber::set_default(support::capture::Capture::panicking_on(
        "leaking their buffers",
    ));
    tracing::callsite::rebuild_interest_cache();
    let res = caught(move || {
        let _fresh = FreshOnDrop; // dropped right after the ring's fields (the slab) unwind
        drop(ring);
    });
    drop(guard);
    eprintln!("ring drop: {res:?}");
    let fresh = take_fresh().expect("FreshOnDrop ran");
    dup_std(&w).write_all(&[0xAB; SIZE]).unwrap();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(2)); // syscalls: task work runs
    }
    let hits = scribbled(&fresh);
    assert_eq!(
        hits, 0,
        "R1: the kernel wrote into {hits} freshly allocated buffer(s): the in-flight read's buffer \
         was freed by a panic unwinding out of Driver::shutdown (ring drop: {res:?})"
    );
    drop(r);
}
