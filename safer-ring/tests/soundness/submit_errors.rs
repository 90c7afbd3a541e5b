//! Submit and wait errors (issue 9, defect 3): an operation whose SQE reached the submission
//! queue is in flight until its completion, whatever `io_uring_enter` returned; only an op that
//! never reached the kernel fails with the error and hands its buffer back. The failures are
//! injected per thread with the `fault-injection` feature (on main before the fix, the read in
//! `enter_error_keeps_the_queued_read_in_flight` came back `Ready(Err(ENOMEM))` with its
//! buffer while its SQE stayed queued, and the kernel later wrote into it).

use std::io::Write;
use std::time::Duration;

use safer_ring::fault::{Syscall, fail_next};
use safer_ring::{BackendKind, Ring, SaferRingConfig, SubmitPolicy};
use support::soundness::{SIZE, dup_std, fresh_allocs, pending, scribbled};

use crate::support;

fn uring(policy: SubmitPolicy) -> Option<Ring> {
    support::ring_with(
        SaferRingConfig::default()
            .entries(8)
            .backend(BackendKind::IoUring)
            .submit_policy(policy),
    )
}

fn drive(ring: &Ring) {
    for _ in 0..20 {
        ring.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn enter_error_keeps_the_queued_read_in_flight() {
    let Some(ring) = uring(SubmitPolicy::Batch) else {
        return;
    };
    let (r, w) = ring.pipe().unwrap();
    let mut op = ring.read(&r, vec![0u8; SIZE]);
    assert!(pending(&mut op), "queued, not submitted (Batch)");
    fail_next(Syscall::IoUringEnter, libc::ENOMEM, 1);
    let e = ring.poll_completions().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
    assert!(
        pending(&mut op),
        "the read's SQE is still queued: the op must stay pending, not hand its buffer back"
    );
    // The next enter submits it; the kernel writes into the op's own buffer.
    dup_std(&w).write_all(&[0xAB; SIZE]).unwrap();
    let (n, buf) = ring.block_on(op);
    assert_eq!(n.unwrap(), SIZE);
    assert!(buf.iter().all(|&b| b == 0xAB));
}

#[test]
fn enter_error_then_drop_never_frees_the_queued_buffer() {
    let Some(ring) = uring(SubmitPolicy::Batch) else {
        return;
    };
    let (r, w) = ring.pipe().unwrap();
    let mut op = ring.read(&r, vec![0u8; SIZE]);
    assert!(pending(&mut op));
    fail_next(Syscall::IoUringEnter, libc::ENOMEM, 1);
    assert!(ring.poll_completions().is_err());
    drop(op); // the buffer must stay with the ring: the SQE is still queued
    let fresh = fresh_allocs(8);
    ring.poll_completions().unwrap(); // submits the read (and its cancel)
    dup_std(&w).write_all(&[0xAB; SIZE]).unwrap();
    drive(&ring);
    assert_eq!(scribbled(&fresh), 0, "the kernel wrote into freed memory");
    // Until the cancelled read's completion is reaped; bounded by a hang, not by turns.
    let t = std::time::Instant::now();
    while ring.in_flight() > 0 && t.elapsed() < Duration::from_secs(20) {
        drive(&ring);
    }
    assert_eq!(ring.in_flight(), 0);
}

#[test]
fn busy_past_the_retry_limit_keeps_ops_in_flight() {
    let Some(ring) = uring(SubmitPolicy::Batch) else {
        return;
    };
    let (r, w) = ring.pipe().unwrap();
    let mut op = ring.read(&r, vec![0u8; SIZE]);
    assert!(pending(&mut op));
    fail_next(Syscall::IoUringEnter, libc::EBUSY, 1000);
    let e = ring.poll_completions().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
    fail_next(Syscall::IoUringEnter, 0, 0);
    assert!(pending(&mut op));
    dup_std(&w).write_all(b"late").unwrap();
    let (n, buf) = ring.block_on(op);
    assert_eq!((n.unwrap(), &buf[..]), (4, &b"late"[..]));
}

#[test]
fn eager_submit_error_leaves_the_op_pending() {
    let Some(ring) = uring(SubmitPolicy::Eager) else {
        return;
    };
    let (r, w) = ring.pipe().unwrap();
    let mut op = ring.read(&r, vec![0u8; SIZE]);
    fail_next(Syscall::IoUringEnter, libc::ENOMEM, 1);
    assert!(
        pending(&mut op),
        "the SQE reached the SQ before the eager submit failed: in flight, not an error"
    );
    dup_std(&w).write_all(b"eager").unwrap();
    let (n, buf) = ring.block_on(op);
    assert_eq!((n.unwrap(), &buf[..]), (5, &b"eager"[..]));
}

#[test]
fn an_op_that_never_reached_the_sq_fails_with_its_buffer() {
    // Two SQ entries: the wake poll and one nop fill it; the second nop needs a submit to make
    // room, which fails, so that nop never reaches the SQ and may fail.
    let Some(ring) = support::ring_with(
        SaferRingConfig::default()
            .entries(2)
            .backend(BackendKind::IoUring),
    ) else {
        return;
    };
    let (r, _w) = ring.pipe().unwrap();
    let mut first = ring.nop();
    assert!(pending(&mut first));
    fail_next(Syscall::IoUringEnter, libc::ENOMEM, 1);
    let mut second = ring.read(&r, vec![7u8; SIZE]);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready((res, buf)) = std::pin::Pin::new(&mut second).poll(&mut cx) else {
        panic!("the SQ was full and the submit failed: the read cannot be in flight");
    };
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ENOMEM));
    assert_eq!(buf.len(), SIZE, "the buffer comes back with the error");
    // The nop that did reach the SQ is still in flight and completes.
    ring.block_on(first).unwrap();
}

#[test]
fn epoll_wait_error_keeps_parked_ops() {
    let ring = support::ring(BackendKind::Epoll).unwrap();
    let (r, w) = ring.pipe().unwrap();
    let mut op = ring.read(&r, vec![0u8; SIZE]);
    assert!(pending(&mut op), "parked on the empty pipe");
    fail_next(Syscall::EpollWait, libc::EBADF, 1);
    assert_eq!(
        ring.poll_completions().unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
    assert!(pending(&mut op));
    dup_std(&w).write_all(b"wait").unwrap();
    let (n, buf) = ring.block_on(op);
    assert_eq!((n.unwrap(), &buf[..]), (4, &b"wait"[..]));
}

#[test]
fn epoll_ctl_error_fails_the_op_that_could_not_park() {
    let ring = support::ring(BackendKind::Epoll).unwrap();
    let (r, w) = ring.pipe().unwrap();
    fail_next(Syscall::EpollCtl, libc::ENOMEM, 1);
    // The read would block; registering the pipe fails, so the op never waits in the kernel
    // and completes with that error, handing its buffer back.
    let (res, buf) = ring.block_on(ring.read(&r, vec![0u8; SIZE]));
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ENOMEM));
    assert_eq!(buf.capacity(), SIZE);
    dup_std(&w).write_all(b"ok").unwrap();
    let (n, buf) = ring.block_on(ring.read(&r, buf));
    assert_eq!((n.unwrap(), &buf[..]), (2, &b"ok"[..]));
}
