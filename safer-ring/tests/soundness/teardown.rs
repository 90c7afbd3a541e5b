//! Third adversarial review (findings failed on commit 21986f2, fixed since): operations, streams and receivers that outlive their owning `Ring` (reached
//! through a `RingRef`), and what happens to them after teardown.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use safer_ring::{BackendKind, Ring, SaferRingConfig};
use support::soundness::*;

use crate::support;

fn kinds() -> [BackendKind; 2] {
    [BackendKind::IoUring, BackendKind::Epoll]
}

fn ring_drain(kind: BackendKind, drain: Duration) -> Option<Ring> {
    support::ring_with(
        SaferRingConfig::default()
            .entries(64)
            .backend(kind)
            .drain_timeout(drain),
    )
}

/// HELD UP (no UAF): an op created from a RingRef, submitted, survives the owner's drop with a
/// drain that times out at once; the op is then dropped, its buffer must be leaked (the kernel
/// may still complete the read). Two checks: the buffer's destructor never runs on io_uring
/// (a freed buffer is caught whatever the kernel does next), and the kernel-write probe (fresh
/// same-size allocations, then bytes written into the pipe). On the kernels we run, the read
/// never completes after the drop (the drop's cancel reaches the kernel, or under
/// DEFER_TASKRUN nobody runs its task work), so the probe alone would see nothing: it prints
/// how many bytes the stale read left.
#[test]
fn live_op_after_drain_timeout_does_not_free_its_buffer() {
    static FREED: AtomicBool = AtomicBool::new(false);
    for kind in kinds() {
        FREED.store(false, Ordering::SeqCst);
        let r = within(Duration::from_secs(60), move || {
            let Some(ring) = ring_drain(kind, Duration::ZERO) else {
                return 0;
            };
            let rr = ring.clone();
            let (rx, tx) = rr.pipe().unwrap();
            let txs = dup_std(&tx);
            let buf = OnDropBuf(Vec::with_capacity(SIZE), || {
                FREED.store(true, Ordering::SeqCst)
            });
            let mut op = rr.read(&rx, buf);
            assert!(poll_once(&mut op).is_pending());
            rr.poll_completions().unwrap(); // submitted: the kernel holds the buffer
            drop(ring); // drain_timeout(0): leaks the slot
            // The op still holds the buffer; dropping it must leak, not free.
            {
                let _fresh = FreshOnDrop;
                drop(op);
            }
            let fresh = take_fresh().unwrap();
            let mut txs = txs;
            let _ = txs.write_all(&[0xAB; SIZE]);
            std::thread::sleep(Duration::from_millis(50));
            let s = scribbled(&fresh);
            // Probe check: on io_uring the leaked read was still armed (the mailbox's dup keeps
            // the ring alive) and consumed the bytes into the leaked buffer.
            if kind == BackendKind::IoUring {
                let mut rxs = dup_std(&rx);
                // SAFETY: fcntl on our own dup.
                unsafe { libc::fcntl(rxs.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
                let mut b = [0u8; SIZE];
                let n = std::io::Read::read(&mut rxs, &mut b).unwrap_or(0);
                eprintln!("probe: {n} bytes left in the pipe (0: the stale read took them)");
            }
            s
        });
        assert_eq!(r, Ok(0), "{kind:?}: kernel wrote into freed memory");
        if kind == BackendKind::IoUring {
            let freed = FREED.load(Ordering::SeqCst);
            assert!(
                !freed,
                "the buffer of a read the kernel may finish was freed"
            );
        }
    }
}

/// FINDING: an op created from a RingRef and in flight when the owner is dropped with a drain
/// that times out is never woken and never completes: awaited afterwards (here by another
/// ring's block_on) it hangs forever. (When the drain succeeds the same op completes with
/// ECANCELED: only the timeout path hangs.)
#[test]
fn live_op_after_drain_timeout_hangs_when_awaited() {
    let mut bad = Vec::new();
    for kind in kinds() {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = ring_drain(kind, Duration::ZERO) else {
                return;
            };
            let other = support::ring(kind).unwrap();
            let rr = ring.clone();
            let (rx, _tx) = rr.pipe().unwrap();
            let mut op = rr.read(&rx, Vec::with_capacity(SIZE));
            assert!(poll_once(&mut op).is_pending());
            drop(ring);
            // Expect a result (an error) or a clear panic, not a silent forever-Pending.
            let _ = other.block_on(async { Pin::new(&mut op).await });
            std::mem::forget(op);
        });
        bad.push(format!("{kind:?}: {r:?}"));
    }
    assert!(!bad.iter().any(|b| b.contains("HANG")), "{bad:?}");
}

/// FINDING: `next_message` through a RingRef whose owning Ring was dropped never returns and
/// is never woken (the mailbox is closed, `post` fails with BrokenPipe, but the receiver stays
/// Pending: `Mailbox::close` does not wake it and `next_message` cannot report the close).
#[test]
fn next_message_after_owner_dropped_hangs() {
    let mut bad = Vec::new();
    for kind in kinds() {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring(kind) else {
                return;
            };
            let other = support::ring(kind).unwrap();
            let rr = ring.clone();
            let h = rr.handle();
            drop(ring);
            assert!(h.post(1).is_err(), "post to a dropped ring fails");
            let _ = other.block_on(rr.next_message());
        });
        bad.push(format!("{kind:?}: {r:?}"));
    }
    assert!(!bad.iter().any(|b| b.contains("HANG")), "{bad:?}");
}

/// Same, with the receiver already waiting when the owner goes (woken by nobody).
#[test]
fn waiting_next_message_is_not_woken_by_owner_drop() {
    let mut bad = Vec::new();
    for kind in kinds() {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring(kind) else {
                return true; // this backend is not available here (skipped)
            };
            let rr = ring.clone();
            let woke = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
            impl std::task::Wake for Flag {
                fn wake(self: std::sync::Arc<Self>) {
                    self.0.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let w = std::task::Waker::from(std::sync::Arc::new(Flag(woke.clone())));
            let mut fut = Box::pin(rr.next_message());
            assert!(
                fut.as_mut()
                    .poll(&mut std::task::Context::from_waker(&w))
                    .is_pending()
            );
            drop(ring);
            woke.load(std::sync::atomic::Ordering::SeqCst)
                || fut
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(&w))
                    .is_ready()
        });
        bad.push(format!("{kind:?}: {r:?}"));
    }
    assert!(
        bad.iter().all(|b| b.ends_with("Ok(true)")),
        "a receiver waiting on a ring that is dropped must be woken and told: {bad:?}"
    );
}

/// HELD UP: a RecvSelect / multishot recv in flight when the owner is dropped, polled after:
/// BrokenPipe (or the data), no panic, no hang.
#[test]
fn recv_enhanced_in_flight_across_owner_drop() {
    for kind in kinds() {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring(kind) else {
                return Ok(0);
            };
            let rr = ring.clone();
            let (a, b) = rr.unix_pair().unwrap();
            let mut fut = Box::pin(rr.recv_enhanced(&a, Vec::with_capacity(64)));
            assert!(poll_once(&mut fut).is_pending());
            drop(ring);
            drop(b);
            match poll_once(&mut fut) {
                Poll::Ready((res, _)) => res,
                Poll::Pending => Err(std::io::Error::other("still pending")),
            }
        });
        let r = r.unwrap();
        assert!(
            r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe
                    || e.raw_os_error() == Some(libc::ECANCELED))
                || r.is_ok(),
            "{kind:?}: {r:?}"
        );
    }
}

/// FINDING (data loss, io_uring with multishot recv): bytes that the kernel already delivered
/// into ring A's provided buffers (a chunk larger than the caller's buffer, kept as a leftover)
/// are silently discarded when A is dropped; `recv_enhanced` on ring B then returns later bytes
/// of the stream as if nothing was missing — a TCP/unix byte stream silently loses its middle.
#[test]
fn recv_enhanced_loses_bytes_when_its_ring_is_dropped() {
    let Some(a) = support::ring(BackendKind::IoUring) else {
        return;
    };
    if !a.uses_native(safer_ring::Feature::MultiShotRecv) {
        return;
    }
    let b = support::ring(BackendKind::IoUring).unwrap();
    let (x, y) = a.unix_pair().unwrap();
    let mut ys = dup_std(&y);
    ys.write_all(b"0123456789").unwrap();
    let (n, buf) = a.block_on(a.recv_enhanced(&x, Vec::with_capacity(4)));
    assert_eq!((n.unwrap(), &buf[..]), (4, &b"0123"[..]));
    drop(a); // "456789" is in ring A's provided buffer (leftover)
    ys.write_all(b"ABCD").unwrap();
    let (n, buf) = b.block_on(b.recv_enhanced(&x, Vec::with_capacity(16)));
    match n {
        // Fixed: the loss is reported once instead of the stream going on without it.
        Err(e) => assert!(e.to_string().contains("are lost"), "{e}"),
        Ok(n) => assert_eq!(
            &buf[..n],
            b"456789ABCD",
            "the stream continued with bytes missing: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
}

/// FINDING (false EOF, io_uring buffer-select tier): a buffer-select recv whose completion was
/// reaped (bytes in ring A's provided buffer) but not yet collected when the owner is dropped
/// returns `Ok(0)` — end of stream — when its future is polled afterwards: the Closed backend's
/// `chunk` is empty, and recv_select.rs copies nothing and commits 0. The bytes are lost and
/// the caller is told the peer closed.
#[test]
fn buffer_select_recv_completed_before_owner_drop_reports_false_eof() {
    let cfg = support::uring_wishing(safer_ring::Feature::MultiShotRecv, Some(false));
    let Some(ring) = support::ring_with(cfg) else {
        return;
    };
    if !ring.uses_native(safer_ring::Feature::BufferRings) {
        return;
    }
    let rr = ring.clone();
    let (a, b) = rr.unix_pair().unwrap();
    let mut fut = Box::pin(rr.recv_enhanced(&a, Vec::with_capacity(64)));
    assert!(poll_once(&mut fut).is_pending());
    dup_std(&b).write_all(b"hello").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    ring.poll_completions().unwrap(); // the CQE is reaped: slot Done, bytes in a provided buffer
    drop(ring);
    let Poll::Ready((res, buf)) = poll_once(&mut fut) else {
        panic!("pending after its ring was dropped");
    };
    match res {
        Ok(0) => panic!("Ok(0) (EOF) although the peer sent 5 bytes and is still open"),
        Ok(n) => assert_eq!(&buf[..n], b"hello"),
        Err(_) => {} // an error is honest
    }
}
