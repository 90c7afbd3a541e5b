//! Found by an adversarial review of the first soundness fix (each failed on commit 24b4eab):
//! a panic kept from user code lost a completion (R2) or an accepted connection (R2b) when it
//! was re-raised as a borrow was released; user code run by `AcceptStream::arm` found the
//! listener's state still borrowed (R3).
//! `unsafe` appears only in harness helpers (dup of fds in support::soundness).

use std::cell::RefCell;
use std::io::Write;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::support;

// R1 lives in tests/process/shutdown_panic.rs (serialized: tracing's callsite cache is global).

use safer_ring::{AcceptStream, BackendKind, Feature, SaferRingConfig, SubmitPolicy};
use support::soundness::*;

// ---------------------------------------------------------------------------------------------
// R2: a panic kept by a destructor's borrow (`borrow_in_drop`) is re-raised by the next
// ordinary borrow, which may be `poll_op` of an op that just completed: its completion is
// taken out of the slab and lost with the unwind.
// ---------------------------------------------------------------------------------------------

backend_test!(r2_stored_panic_loses_a_completion, |ring| {
    // B: a read whose completion is reaped but not yet taken.
    let (br, bw) = ring.pipe().unwrap();
    let mut b = ring.read(&br, Vec::with_capacity(16));
    assert!(poll_once(&mut b).is_pending());
    ring.poll_completions().unwrap();
    dup_std(&bw).write_all(b"hello").unwrap();
    for _ in 0..10 {
        ring.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    // X: an in-flight op whose waker's last reference is the ring's; dropping X makes the
    // ring drop that waker (inside Op::drop: the panic is kept for the next borrow).
    keep_a_panic(&ring);
    // Polling B re-raises the kept panic (the user's own panic: fine) ...
    let first = caught(|| poll_once(&mut b).map(|(r, buf)| (r.ok(), buf)));
    eprintln!("first poll of B: {first:?}");
    // ... but B's completion must not be lost with it.
    let second = caught(|| run_for(&ring, &mut b, Duration::from_secs(20)));
    let got = match (first, second) {
        (Ok(Poll::Ready((n, buf))), _) => Some((n, buf)),
        (_, Ok(Some((r, buf)))) => Some((r.ok(), buf)),
        (_, other) => {
            panic!(
                "R2: B's completion was lost with the re-raised panic; polling B again: {other:?}"
            )
        }
    };
    assert_eq!(got, Some((Some(5), b"hello".to_vec())));
});

// ---------------------------------------------------------------------------------------------
// R3: `AcceptStream::arm` drops its DriverRef (running collected wakers) while it still holds
// the listener's `Multishot` RefCell borrow. A woken task that polls another accept stream on
// that listener hits a RefCell BorrowMutError panic; the multishot accept stays armed with no
// reader, swallowing connections.
// ---------------------------------------------------------------------------------------------

thread_local! {
    static STREAM2: RefCell<Option<AcceptStream<'static>>> = const { RefCell::new(None) };
}

fn poll_stream2() {
    STREAM2.with(|s| {
        if let Some(s) = s.borrow_mut().as_mut() {
            let _ = poll_next_with(s, Waker::noop());
        }
    });
}

#[test]
fn r3_waker_run_inside_arm_hits_borrowed_listener_state() {
    let r = within(Duration::from_secs(60), || {
        let cfg = SaferRingConfig::default()
            .backend(BackendKind::IoUring)
            .entries(16)
            .coop_taskrun(false)
            .defer_taskrun(false)
            .submit_policy(SubmitPolicy::Eager);
        let Some(ring) = support::ring_with(cfg) else {
            return Ok(());
        };
        if !ring.uses_native(Feature::MultiShotAccept) {
            support::skip("no native multishot accept");
            return Ok(());
        }
        let ring = leak(ring);
        let listener: &'static safer_ring::TcpListener =
            Box::leak(Box::new(ring.bind_tcp("127.0.0.1:0").unwrap()));
        let addr = listener.local_addr().unwrap();
        STREAM2.with(|s| *s.borrow_mut() = Some(ring.accept_multiple(listener)));
        // T: its completion is reaped by the Eager submit inside stream1's arm().
        let (tr, tw) = ring.pipe().unwrap();
        let mut t = ring.read(&tr, Vec::with_capacity(8));
        assert!(poll_with(&mut t, &waker_fn(poll_stream2)).is_pending());
        dup_std(&tw).write_all(b"t").unwrap();
        let mut stream1 = ring.accept_multiple(listener);
        let first = caught(|| poll_next_with(&mut stream1, Waker::noop()).is_pending());
        // Consequence: connections to the listener are they all handed out by stream1?
        let clients: Vec<_> = (0..4)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let mut got = 0;
        let t0 = Instant::now();
        // Bounds a hang, not speed.
        while got < clients.len() && t0.elapsed() < Duration::from_secs(20) {
            match caught(|| poll_next_with(&mut stream1, Waker::noop())) {
                Ok(Poll::Ready(Some(Ok(_)))) => got += 1,
                Ok(_) => {
                    let _ = ring.poll_completions();
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(p) => return Err(format!("later poll panicked: {p}")),
            }
        }
        match first {
            Ok(true) if got == clients.len() => Ok(()),
            other => Err(format!(
                "first poll of stream1: {other:?} (Ok(true) expected); connections handed out: \
                 {got}/{}",
                clients.len()
            )),
        }
    });
    assert_eq!(r, Ok(Ok(())), "R3");
}

/// Same root cause as R2, on an accept stream: the stored panic is re-raised by the
/// `next_multishot` borrow after it popped an accepted connection, which is then neither handed
/// out nor closed (the client sees an open connection nobody serves; the fd leaks).
#[test]
fn r2b_stored_panic_loses_an_accepted_connection() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::MultiShotAccept) {
        support::skip("no native multishot accept");
        return;
    }
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let mut stream = ring.accept_multiple(&listener);
    assert!(poll_next_with(&mut stream, Waker::noop()).is_pending());
    ring.poll_completions().unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    for _ in 0..10 {
        ring.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    keep_a_panic(&ring);
    let first = caught(|| poll_next_with(&mut stream, Waker::noop()).is_ready());
    eprintln!("first poll of the stream: {first:?}");
    let mut got = matches!(first, Ok(true));
    let t0 = Instant::now();
    while !got && t0.elapsed() < Duration::from_secs(20) {
        got = matches!(
            poll_next_with(&mut stream, Waker::noop()),
            Poll::Ready(Some(Ok(_)))
        );
        let _ = ring.poll_completions();
        std::thread::sleep(Duration::from_millis(2));
    }
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let peer = std::io::Read::read(&mut client, &mut [0u8; 1]);
    assert!(
        got,
        "R2b: the accepted connection was lost with the re-raised panic (never handed out; \
         client read: {peer:?} — WouldBlock means the server fd was not closed either)"
    );
}
