//! Attacks on the dropped op's immediate cancel when the `io_uring_enter` that carries it
//! fails (injected with the `fault-injection` feature; the kernel's own EAGAIN, EBUSY or
//! ENOMEM look the same). Were the cancel left in the SQ for the next turn, bytes sent in
//! between would be taken by the dropped receive (on a ring without DEFER_TASKRUN the kernel
//! completes it at the sender's system call; with one, an op dropped still queued is submitted
//! with its cancel and runs first); the driver reaps and submits it at once instead.

use std::io::Write;

use safer_ring::fault::{Syscall, fail_next};
use support::drops::{When, each_on, must_arrive, rings};

use crate::support;

fn recv_dropped_with_a_failing_enter(errno: i32) {
    each_on(rings(), |what, ring, when| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let b = safer_ring::UnixStream::from(b);
        let mut a = a;
        let mut op = ring.recv(&b, vec![0u8; 64]);
        assert!(
            support::soundness::poll_once(&mut op).is_pending(),
            "{what}"
        );
        if let When::Submitted = when {
            ring.poll_completions().unwrap();
        }
        // The cancel's own enter fails, once.
        fail_next(Syscall::IoUringEnter, errno, 1);
        drop(op);
        fail_next(Syscall::IoUringEnter, 0, 0);
        a.write_all(b"after the drop").unwrap();
        let (n, buf) = must_arrive(ring, what, ring.recv(&b, vec![0u8; 64]));
        assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
    });
}

#[test]
fn recv_dropped_when_the_cancels_enter_fails_with_eagain_loses_nothing_after() {
    recv_dropped_with_a_failing_enter(libc::EAGAIN);
}

#[test]
fn recv_dropped_when_the_cancels_enter_fails_with_ebusy_loses_nothing_after() {
    recv_dropped_with_a_failing_enter(libc::EBUSY);
}

/// EINTR is retried: the cancel still reaches the kernel.
#[test]
fn recv_dropped_when_the_cancels_enter_is_interrupted_loses_nothing_after() {
    recv_dropped_with_a_failing_enter(libc::EINTR);
}
