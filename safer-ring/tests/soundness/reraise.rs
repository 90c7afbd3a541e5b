//! Found by the second adversarial review (failed on commit 6f200d8): a kept panic re-raised at
//! the start of a driver borrow lost received bytes the op had already taken (P1); kept panics
//! now surface only at the end of a driver turn.

use std::io::Write;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use safer_ring::{Feature, Ring};
use support::soundness::*;

use crate::support;

/// Leaves user code QUEUED (not yet run) in `ring`'s driver: an in-flight op whose waker's
/// last reference is the ring's is dropped while a panic unwinds (a task panicking with ops
/// in its future does exactly this). `DriverRef::drop` does not run user code while unwinding
/// (cell.rs:166), so the waker's Drop runs at the end of the NEXT borrow, whichever it is, and
/// its panic is kept for the borrow after that.
fn queue_a_panicking_drop(ring: &Ring) {
    let (xr, _xw) = ring.pipe().unwrap();
    let mut x = ring.read(&xr, Vec::with_capacity(16));
    let w = Waker::from(Arc::new(PanicOnDrop));
    assert!(poll_with(&mut x, &w).is_pending());
    drop(w);
    let r = caught(move || {
        let _x = x; // dropped by the unwind
        panic!("an unrelated panic in user code");
    });
    assert!(r.is_err());
}

// ---------------------------------------------------------------------------------------------
// P1: recv_enhanced's buffer-select tier (MultiShotRecv off, buffer rings on). Its RecvSelect
// op completes in `poll_op`'s borrow, whose release runs the queued user code (panic kept);
// recv_enhanced then borrows the driver again to copy the chunk (recv_select.rs:199), the
// kept panic is re-raised there, and the bytes the kernel put in the provided buffer are
// lost: never copied, and the buffer never recycled (it leaks from the ring's 64).
// ---------------------------------------------------------------------------------------------

fn recv_select(attack: bool) {
    let Some(ring) =
        support::ring_with(support::uring_wishing(Feature::MultiShotRecv, Some(false)))
    else {
        return;
    };
    if !ring.uses_native(Feature::BufferRings) || ring.uses_native(Feature::MultiShotRecv) {
        support::skip("needs buffer rings without multishot recv");
        return;
    }
    let (a, b) = ring.unix_pair().unwrap();
    let mut rx = Box::pin(ring.recv_enhanced(&b, Vec::with_capacity(64)));
    assert!(poll_once(&mut rx).is_pending());
    ring.poll_completions().unwrap();
    dup_std(&a).write_all(b"hello").unwrap();
    for _ in 0..10 {
        ring.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    if attack {
        queue_a_panicking_drop(&ring);
    }
    let first = caught(|| match poll_once(&mut rx) {
        Poll::Ready((r, buf)) => Some((r.ok(), buf)),
        Poll::Pending => None,
    });
    eprintln!("first poll of recv_enhanced: {first:?}");
    let got = match first {
        Ok(Some((n, buf))) => Some((n, buf)),
        Ok(None) => run_for(&ring, &mut rx, Duration::from_secs(20)).map(|(r, buf)| (r.ok(), buf)),
        // The panic is the user's own and may surface; the bytes must still come.
        Err(_) => {
            let mut again = Box::pin(ring.recv_enhanced(&b, Vec::with_capacity(64)));
            run_for(&ring, &mut again, Duration::from_secs(20)).map(|(r, buf)| (r.ok(), buf))
        }
    };
    assert_eq!(
        got,
        Some((Some(5), b"hello".to_vec())),
        "P1: the received bytes were lost with the re-raised panic (None: the next receive \
         never got them; they sit in a provided buffer that is never recycled)"
    );
}

#[test]
fn p1_reraise_after_buffer_select_recv_loses_the_bytes() {
    recv_select(true);
}

#[test]
fn p1_control_without_the_panic() {
    recv_select(false);
}
