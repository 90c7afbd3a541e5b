//! Found by the second adversarial review (each attack failed on commit 6f200d8):
//! `Ring::drive_on_tokio` — a waker panic ended the drive (T1), so did one transient syscall
//! error (T2), and an op pushed by user code during the drive's turn was never submitted (T3).
//! Needs `--features tokio` (T2 also `fault-injection`).

use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use safer_ring::{BackendKind, Ring, SaferRingConfig};
use support::soundness::*;

use crate::support;

fn on_tokio(kind: BackendKind, body: impl AsyncFnOnce(Rc<Ring>) -> Result<(), String>) {
    let Some(ring) = support::ring_with(SaferRingConfig::for_tokio().backend(kind)) else {
        return;
    };
    let ring = Rc::new(ring);
    let r = support::on_local_tokio(async {
        // The documented pattern (tests/compat/tokio_driver.rs, drive_on_tokio's docs).
        let driver = ring.clone();
        tokio::task::spawn_local(async move { driver.drive_on_tokio().await.unwrap() });
        tokio::task::yield_now().await;
        body(ring.clone()).await
    });
    assert_eq!(r, Ok(()));
}

// ---------------------------------------------------------------------------------------------
// T1: a panic from user code run by the drive task's turn (here: one task's waker) is re-raised
// at the end of that turn (ring.rs:318, from tokio.rs:51), i.e. inside the drive task, which
// dies. Every other task's ring I/O then hangs forever. Under block_on the same panic reaches
// the caller of block_on; under tokio it only kills the driver (a JoinError nobody awaits in
// the documented pattern).
// ---------------------------------------------------------------------------------------------

async fn waker_panic_kills_the_drive(ring: Rc<Ring>) -> Result<(), String> {
    let (r, w) = ring.pipe().unwrap();
    let mut op = Box::pin(ring.read(&r, Vec::with_capacity(8)));
    assert!(poll_with(&mut op, &panicking_waker()).is_pending());
    dup_std(&w).write_all(b"x").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // the drive reaps it
    // A healthy task: one nop.
    let nop = tokio::time::timeout(Duration::from_secs(20), ring.nop()).await;
    match nop {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "T1: a nop never completed: the drive task died of another task's waker panic \
             (in flight: {})",
            ring.in_flight()
        )),
    }
}

#[test]
fn t1_waker_panic_kills_the_drive_io_uring() {
    on_tokio(BackendKind::IoUring, waker_panic_kills_the_drive);
}

#[test]
fn t1_waker_panic_kills_the_drive_epoll() {
    on_tokio(BackendKind::Epoll, waker_panic_kills_the_drive);
}

// ---------------------------------------------------------------------------------------------
// T2: one failed io_uring_enter / epoll_wait (ENOMEM, EAGAIN ...) ends drive_on_tokio for good
// (`self.turn(false)?`, tokio.rs:51); block_on logs the same error and keeps going
// (executor.rs: "ops see errors themselves"). The ring's ops then hang.
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "fault-injection")]
fn transient(kind: BackendKind, call: safer_ring::fault::Syscall) {
    on_tokio(kind, async move |ring: Rc<Ring>| {
        // Let the drive park, then queue an op and fail the driver's next syscall once.
        tokio::time::sleep(Duration::from_millis(20)).await;
        safer_ring::fault::fail_next(call, libc::ENOMEM, 1);
        let (r, w) = ring.pipe().unwrap();
        dup_std(&w).write_all(b"x").unwrap();
        let res = tokio::time::timeout(
            Duration::from_secs(20),
            ring.read(&r, Vec::with_capacity(8)),
        )
        .await;
        safer_ring::fault::fail_next(call, 0, 0);
        match res {
            Ok((n, _)) => n.map(drop).map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "T2: one transient {call:?} failure stopped the tokio driver; a ready read hung \
                 (in flight: {})",
                ring.in_flight()
            )),
        }
    });
}

#[cfg(feature = "fault-injection")]
#[test]
fn t2_one_enter_failure_ends_the_tokio_driver_io_uring() {
    transient(
        BackendKind::IoUring,
        safer_ring::fault::Syscall::IoUringEnter,
    );
}

#[cfg(feature = "fault-injection")]
#[test]
fn t2_one_epoll_wait_failure_ends_the_tokio_driver_epoll() {
    transient(BackendKind::Epoll, safer_ring::fault::Syscall::EpollWait);
}

// ---------------------------------------------------------------------------------------------
// T3: the deferred submit waker. A push takes `submit_waker` (driver/mod.rs:346) and wakes the
// drive task; the drive's next turn runs the collected user code (here: a waker that starts
// another op, Y) BEFORE the drive re-registers its waker (tokio.rs:52). Y's push finds no
// submit waker, so nobody is told it is queued. On epoll Y completes inline into the
// backend's `ready` list, which does not make the epoll fd readable: the drive parks in
// tokio's epoll and Y's completion is never reaped.
// ---------------------------------------------------------------------------------------------

thread_local! {
    static Y: std::cell::RefCell<Option<std::pin::Pin<Box<safer_ring::Op<'static, safer_ring::ops::Nop>>>>> =
        const { std::cell::RefCell::new(None) };
    static Y_WAKER: std::cell::RefCell<Option<std::task::Waker>> = const { std::cell::RefCell::new(None) };
    static Y_STARTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Polls Y until it completes (then drops it: never polled after completion).
fn poll_y(cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
    Y.with(|y| {
        let mut y = y.borrow_mut();
        let Some(op) = y.as_mut() else {
            return std::task::Poll::Ready(Ok(()));
        };
        let r = op.as_mut().poll(cx).map(|r| r.map(drop));
        if r.is_ready() {
            *y = None;
        }
        r
    })
}

/// A waker whose wake() starts op Y (first poll: the push), registering the main task's waker.
fn starts_y() -> std::task::Waker {
    waker_fn(|| {
        let w = Y_WAKER.with(|w| w.borrow().clone()).unwrap();
        Y_STARTED.with(|c| c.set(true));
        let _ = poll_y(&mut std::task::Context::from_waker(&w));
    })
}

use std::future::Future;

/// A waker that only records that it ran (control: Y is then pushed by the task itself).
fn marks_only() -> std::task::Waker {
    waker_fn(|| Y_STARTED.with(|c| c.set(true)))
}

fn push_from_user_code(kind: BackendKind, from_waker: bool) {
    let r = within(Duration::from_secs(60), move || {
        let Some(ring) = support::ring_with(SaferRingConfig::for_tokio().backend(kind)) else {
            return Ok(());
        };
        let ring: &'static Ring = leak(ring);
        support::on_local_tokio(async move {
            tokio::task::spawn_local(async move { ring.drive_on_tokio().await.unwrap() });
            tokio::time::sleep(Duration::from_millis(20)).await; // the drive parks
            Y.with(|y| *y.borrow_mut() = Some(Box::pin(ring.nop())));
            std::future::poll_fn(|cx| {
                Y_WAKER.with(|w| *w.borrow_mut() = Some(cx.waker().clone()));
                std::task::Poll::Ready(())
            })
            .await;
            // X: a nop whose waker starts Y. Its push takes the submit waker.
            let mut x = Box::pin(ring.nop());
            let w = if from_waker { starts_y() } else { marks_only() };
            assert!(poll_with(&mut x, &w).is_pending());
            // Let the drive run its turn (which runs X's waker, which pushes Y) first; yields,
            // bounded by a hang's time rather than a count that a slow machine may not match.
            let t0 = std::time::Instant::now();
            while !Y_STARTED.with(|c| c.get()) && t0.elapsed() < Duration::from_secs(20) {
                tokio::task::yield_now().await;
            }
            assert!(
                Y_STARTED.with(|c| c.get()),
                "harness: the drive should have run X's waker by now"
            );
            let res =
                tokio::time::timeout(Duration::from_secs(20), std::future::poll_fn(poll_y)).await;
            drop(x);
            match res {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "T3: op Y, pushed by user code during the drive's turn, never completed \
                     (in flight: {})",
                    ring.in_flight()
                )),
            }
        })
    });
    assert_eq!(r, Ok(Ok(())));
}

#[test]
fn t3_push_from_user_code_in_the_drive_turn_epoll() {
    push_from_user_code(BackendKind::Epoll, true);
}

#[test]
fn t3_push_from_user_code_in_the_drive_turn_io_uring() {
    push_from_user_code(BackendKind::IoUring, true);
}

/// Control for T3: the same steps with Y pushed by the task itself complete at once.
#[test]
fn t3_control_push_from_the_task() {
    push_from_user_code(BackendKind::Epoll, false);
    push_from_user_code(BackendKind::IoUring, false);
}
