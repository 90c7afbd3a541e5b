//! Ring ownership: tasks reach their ring through `RingRef`s, which do not keep it running, so
//! dropping the `Ring` drops every task, cancels their operations and closes the ring's fds
//! (compio's `test_task_dropped_when_runtime_drops`, both backends).

use std::cell::Cell;
use std::rc::Rc;

use crate::support;

struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

backend_test!(dropping_the_ring_drops_tasks_that_hold_it, |ring| {
    let (r, w) = ring.pipe().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let (rr, guard) = (ring.clone(), SetOnDrop(dropped.clone()));
    let task = ring.spawn(async move {
        let _guard = guard;
        // Pending forever: nobody writes.
        let (n, _) = rr.read(&r, Vec::with_capacity(8)).await;
        n
    });
    let handle = ring.clone();
    ring.block_on(ring.nop()).unwrap(); // the task runs and parks in its read
    assert_eq!(ring.in_flight(), 1);
    drop(ring);
    assert!(dropped.get(), "the task was dropped with its ring");
    assert!(handle.is_closed());
    assert!(task.is_finished());
    // Its read was cancelled and its fd clone released: the read end is gone.
    let e = std::io::Write::write(&mut std::fs::File::from(w.into_owned_fd().unwrap()), b"x");
    assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
});

backend_test!(a_ref_outliving_its_ring_fails_clearly, |ring| {
    let r = ring.clone();
    let (rx, _tx) = ring.pipe().unwrap();
    drop(ring);
    assert!(r.is_closed());
    let mut op = r.read(&rx, Vec::with_capacity(8));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready((res, buf)) = std::pin::Pin::new(&mut op).poll(&mut cx) else {
        panic!("an op on a dropped ring must fail at once");
    };
    assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    assert_eq!(buf.capacity(), 8, "the buffer comes back");
    let h = r.spawn(async { 1 });
    assert!(
        h.is_finished(),
        "a task spawned on a dropped ring is dropped"
    );
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.block_on(async {})));
    let msg = caught.unwrap_err();
    assert!(
        msg.downcast_ref::<&str>()
            .is_some_and(|m| m.contains("the ring was dropped")),
        "block_on on a dropped ring panics with the reason"
    );
});

/// A socket whose multishot recv was armed on a ring that is now dropped (its state still
/// alive behind a `RingRef`) is served by another ring, not refused as "armed elsewhere",
/// after one error saying the dropped ring's unread bytes are lost.
#[test]
fn a_socket_outlives_its_dropped_ring() {
    let Some(a) = support::ring(safer_ring::BackendKind::IoUring) else {
        return;
    };
    if !a.uses_native(safer_ring::Feature::MultiShotRecv) {
        support::skip("no native multishot recv here (nothing is armed on the socket)");
        return;
    }
    let b = support::ring(safer_ring::BackendKind::IoUring).unwrap();
    let (x, y) = a.unix_pair().unwrap();
    std::io::Write::write_all(&mut std::fs::File::from(y.into_owned_fd().unwrap()), b"one")
        .unwrap();
    let (n, _) = a.block_on(a.recv_enhanced(&x, Vec::with_capacity(8)));
    assert_eq!(n.unwrap(), 3);
    let keep = a.clone();
    drop(a);
    assert!(keep.is_closed());
    // The multishot armed on `a` may have taken bytes with it: said once, not hidden.
    let (n, _) = b.block_on(b.recv_enhanced(&x, Vec::with_capacity(8)));
    let e = n.unwrap_err();
    assert!(e.to_string().contains("bytes it had received"), "{e}");
    let (n, _) = b.block_on(b.recv_enhanced(&x, Vec::with_capacity(8)));
    assert_eq!(
        n.unwrap(),
        0,
        "EOF through the new ring (the writer is closed)"
    );
}

/// A task that drops the owning `Ring` while `block_on` runs on a `RingRef`: a clear panic
/// instead of spinning when nothing can complete any more.
#[test]
fn dropping_the_ring_inside_its_block_on_panics_clearly() {
    for kind in [
        safer_ring::BackendKind::IoUring,
        safer_ring::BackendKind::Epoll,
    ] {
        let Some(ring) = support::ring(kind) else {
            continue;
        };
        let r = ring.clone();
        drop(r.spawn(async move { drop(ring) }));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.block_on(std::future::pending::<()>())
        }));
        let p = caught.unwrap_err();
        let msg = p.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(
            msg.contains("the ring was dropped while block_on ran"),
            "{msg}"
        );
    }
}
