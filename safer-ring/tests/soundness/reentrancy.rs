//! Attacks on user code (wakers, buffer destructors) running while the ring's driver is
//! borrowed (defects 1 and 2). Dropping an in-flight op from there must still orphan it (the
//! kernel may keep writing into its buffer), and a panic there must not lose completions.

use std::io::Write;
use std::time::Duration;

use safer_ring::{Message, SaferRingConfig, SubmitPolicy};
use support::soundness::*;

use crate::support;

/// Drives the ring until a waker/destructor has dropped the victim (bounded); returns the
/// panics that escaped `poll_completions` on the way.
fn drive_until_victim_dropped(ring: &safer_ring::Ring) -> Vec<String> {
    let mut panics = Vec::new();
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Err(p) = caught(|| ring.poll_completions()) {
            panics.push(p);
        }
        if !victim_alive() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!victim_alive(), "setup: the victim was never dropped");
    panics
}

/// Parks a pending 512-byte read on a fresh pipe as the victim; returns the pipe's write end.
fn park_victim(ring: &'static safer_ring::Ring) -> (safer_ring::Pipe, safer_ring::Pipe) {
    let (vr, vw) = ring.pipe().unwrap();
    let mut v = ring.read(&vr, vec![0u8; SIZE]);
    assert!(poll_once(&mut v).is_pending());
    set_victim(v);
    (vr, vw)
}

fn assert_no_uaf(hits: usize, panics: &[String], what: &str) {
    eprintln!("{what}: panics escaping the driver: {panics:?}; fresh buffers scribbled: {hits}");
    assert_eq!(
        hits, 0,
        "{what}: the kernel wrote into memory freed when user code dropped an in-flight op \
         inside the driver (panics: {panics:?})"
    );
}

// Defect 1: a waker, run while the driver is borrowed, drops another in-flight op V.
// Correct: V is orphaned (its buffer stays alive until the kernel is done); no write lands in
// freed memory.
backend_test!(waker_drops_in_flight_op, |ring| {
    let ring = leak(ring);
    let (_vr, vw) = park_victim(ring);
    let (tr, tw) = ring.pipe().unwrap();
    let mut t = ring.read(&tr, vec![0u8; 16]);
    assert!(poll_with(&mut t, &dropping_waker()).is_pending());
    ring.poll_completions().unwrap();
    dup_std(&tw).write_all(b"t").unwrap();
    let panics = drive_until_victim_dropped(ring);
    let hits = uaf_probe(ring, &vw);
    assert_no_uaf(hits, &panics, "waker drops op");
});

// Defect 1(a): a waker panics during a reap in which other ops also completed.
// Correct: the panic may propagate, but the other completions are not lost: those ops finish.
backend_test!(panicking_waker_loses_no_completion, |ring| {
    let (tr, tw) = ring.pipe().unwrap();
    let pipes: Vec<_> = (0..3).map(|_| ring.pipe().unwrap()).collect();
    let mut t = ring.read(&tr, vec![0u8; 16]);
    assert!(poll_with(&mut t, &panicking_waker()).is_pending());
    let mut us: Vec<_> = pipes
        .iter()
        .map(|(r, _)| ring.read(r, vec![0u8; 16]))
        .collect();
    for u in &mut us {
        assert!(poll_once(u).is_pending());
    }
    ring.poll_completions().unwrap();
    // T becomes ready first, then the others: one reap delivers all four.
    dup_std(&tw).write_all(b"t").unwrap();
    for (_, w) in &pipes {
        dup_std(w).write_all(b"u").unwrap();
    }
    let panics = drive(&ring, 10);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut done = 0;
    for u in &mut us {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if matches!(run_for(&ring, u, left), Some((Ok(1), _))) {
            done += 1;
        }
    }
    eprintln!("panics: {panics:?}; other ops completed: {done}/3");
    assert_eq!(
        done, 3,
        "completions reaped with a panicking waker were lost"
    );
});

// Defect 1(b): an orphaned op's buffer is dropped by the ring when the (cancelled) op
// completes, inside the reap; its destructor drops another in-flight op V.
// Correct: V is orphaned, no kernel write into freed memory.
backend_test!(orphan_buffer_drop_drops_in_flight_op, |ring| {
    let ring = leak(ring);
    let (_vr, vw) = park_victim(ring);
    let (dr, _dw) = ring.pipe().unwrap();
    let mut d = ring.read(&dr, OnDropBuf(vec![0u8; 64], drop_victim));
    assert!(poll_once(&mut d).is_pending());
    ring.poll_completions().unwrap();
    drop(d); // orphaned: the ring drops the buffer (and the victim) when the cancelled read completes
    let panics = drive_until_victim_dropped(ring);
    let hits = uaf_probe(ring, &vw);
    assert_no_uaf(hits, &panics, "orphan buffer destructor drops op");
});

// Defect 1(c): the waker of an `accept_multiple` stream (multishot slot on io_uring, the
// fallback accept on epoll) drops another in-flight op. Correct: no use-after-free.
backend_test!(accept_stream_waker_drops_in_flight_op, |ring| {
    let ring = leak(ring);
    let (_vr, vw) = park_victim(ring);
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let mut stream = ring.accept_multiple(&listener);
    assert!(poll_next_with(&mut stream, &dropping_waker()).is_pending());
    ring.poll_completions().unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let panics = drive_until_victim_dropped(ring);
    let hits = uaf_probe(ring, &vw);
    assert_no_uaf(hits, &panics, "accept stream waker drops op");
});

/// Defect 1(c): the waker of `next_message` is woken by a native MSG_RING doorbell reaped
/// inside the driver, and drops another in-flight op. io_uring only (the doorbell is
/// io_uring's). Correct: no use-after-free.
#[test]
fn mailbox_waker_drops_in_flight_op() {
    let Some(a) = support::ring(safer_ring::BackendKind::IoUring) else {
        return;
    };
    let b = support::ring(safer_ring::BackendKind::IoUring).unwrap();
    if !b.uses_native(safer_ring::Feature::MsgRing) {
        support::skip("no native MSG_RING");
        return;
    }
    let a = leak(a);
    let (_vr, vw) = park_victim(a);
    let mut rx = Box::pin(a.next_message());
    assert!(poll_with(&mut rx, &dropping_waker()).is_pending());
    let to_a = a.handle();
    b.block_on(b.msg_ring(&to_a, Message::Data(7))).unwrap();
    let panics = drive_until_victim_dropped(a);
    let hits = uaf_probe(a, &vw);
    assert_no_uaf(hits, &panics, "mailbox waker drops op");
}

// Defect 2: with SubmitPolicy::Eager a new op's first poll submits and reaps before the op
// records its slot; a panicking waker of an earlier op unwinds out of that poll and the new
// op, believing it was never submitted, frees the buffer the kernel is reading into.
// Correct: the new op is orphaned (or never submitted); no write lands in freed memory.
backend_test!(eager_first_poll_reaps_panicking_waker, |ring| {
    let kind = ring.backend();
    drop(ring);
    let cfg = SaferRingConfig::default()
        .entries(64)
        .backend(kind)
        .submit_policy(SubmitPolicy::Eager);
    let ring = support::ring_with(cfg).unwrap();
    let (xr, xw) = ring.pipe().unwrap();
    let (nr, nw) = ring.pipe().unwrap();
    let mut x = ring.read(&xr, vec![0u8; 16]);
    assert!(poll_with(&mut x, &panicking_waker()).is_pending());
    dup_std(&xw).write_all(b"x").unwrap(); // X's completion is now waiting to be reaped
    std::thread::sleep(Duration::from_millis(10));
    let first = caught(|| {
        let _fresh = FreshOnDrop; // dropped right after `n` if N's poll unwinds
        let mut n = ring.read(&nr, vec![0u8; SIZE]);
        let p = poll_once(&mut n);
        (p.is_pending(), n)
    });
    let mut panics = Vec::new();
    let kept = match first {
        Ok((pending, n)) => {
            eprintln!("N's first poll returned (pending: {pending})");
            Some(n)
        }
        Err(p) => {
            eprintln!("N's first poll panicked (X's waker ran inside it): {p}");
            panics.push(p);
            None
        }
    };
    let hits = uaf_probe(&ring, &nw);
    drop(kept);
    assert_no_uaf(hits, &panics, "eager push + panicking waker");
});
