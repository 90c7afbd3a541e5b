//! Found by the second adversarial review (each attack failed on commit 6f200d8): ring-to-ring
//! messages — a kept panic re-raised after the mailbox handed out a doorbell duty (M1) or a
//! passed fd (M4), a doorbell coalesced into an idle ring's unsubmitted SQE (M2), two
//! receivers sharing one waker slot (M3).

use std::future::Future;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::pin;
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use safer_ring::{BackendKind, Feature, Message, Ring, RingHandle};
use support::soundness::*;

use crate::support;

/// A later sender's result: delivered, or `BrokenPipe` because an earlier message already woke
/// the receiver, which took it and dropped its ring.
fn sent_or_receiver_done(r: std::io::Result<()>) {
    if let Err(e) = r {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
}

/// `fut` raced against a ring sleep of `limit`; the sleep is polled first, so a message that
/// was queued but never signalled is not picked up by the timeout's own wakeup.
async fn within_ring<F: Future>(ring: &Ring, limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut sleep = ring.sleep(limit);
    std::future::poll_fn(|cx| {
        if std::pin::Pin::new(&mut sleep).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

/// A hang, not speed: how long a receiver waits for a message that must come.
const LIMIT: Duration = Duration::from_secs(30);

/// A receiver ring of `kind` on its own thread, returned once it waits in `next_message`
/// (polled and pending, so a message sent now must wake it); it waits up to `LIMIT` for one
/// message and reports how long after its first poll it arrived.
fn waiting_receiver(
    kind: BackendKind,
) -> Option<(RingHandle, std::thread::JoinHandle<Option<Duration>>)> {
    support::ring(kind)?;
    let (tx, rx) = mpsc::channel();
    let (waiting_tx, waiting_rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let ring = support::ring(kind).unwrap();
        tx.send(ring.handle()).unwrap();
        let mut next = pin!(ring.next_message());
        let mut first = Some(waiting_tx);
        let t0 = Instant::now();
        let waiting = std::future::poll_fn(|cx| {
            let p = next.as_mut().poll(cx);
            if let Some(w) = first.take() {
                let _ = w.send(p.is_pending());
            }
            p
        });
        ring.block_on(async {
            within_ring(&ring, LIMIT, waiting)
                .await
                .map(|_| t0.elapsed())
        })
    });
    let h = rx.recv().unwrap();
    assert!(
        waiting_rx.recv().unwrap(),
        "setup: a message before any was sent"
    );
    Some((h, t))
}

// ---------------------------------------------------------------------------------------------
// M1: `enqueue` sets the inbox's `rung` flag (push_native) BEFORE its doorbell op's first poll,
// which borrows the driver and may re-raise a kept panic. The doorbell is then never sent and
// `rung` stays true for good: every later native sender to that ring skips its doorbell, so a
// receiver waiting in next_message never wakes again (messages pile up unseen).
// ---------------------------------------------------------------------------------------------

/// Control for M1/M2: without A, B's native send wakes the waiting receiver at once.
#[test]
fn m0_control_native_send_wakes_the_receiver() {
    let Some(b) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let (h, c) = waiting_receiver(BackendKind::IoUring).unwrap();
    b.block_on(b.msg_ring(&h, Message::Data(2))).unwrap();
    let got = c.join().unwrap();
    // Woken by the message, not by the limit (no bound tighter than that: speed is the machine's).
    assert!(got.is_some(), "{got:?}");
}

#[test]
fn m1_reraise_in_doorbell_leaves_rung_set_forever() {
    let Some(a) = support::ring(BackendKind::IoUring) else {
        return;
    };
    if !a.uses_native(Feature::MsgRing) {
        support::skip("no native MSG_RING");
        return;
    }
    let b = support::ring(BackendKind::IoUring).unwrap();
    let (h, c) = waiting_receiver(BackendKind::IoUring).unwrap(); // waits in next_message
    keep_a_panic(&a);
    let first = caught(|| a.block_on(a.msg_ring(&h, Message::Data(1))));
    eprintln!("A's msg_ring: {first:?}");
    // A different, healthy ring sends afterwards: its msg_ring returns Ok, or BrokenPipe if
    // A's message already woke the receiver, which then ended ...
    let sent = Instant::now();
    sent_or_receiver_done(b.block_on(b.msg_ring(&h, Message::Data(2))));
    // ... so the receiver must get a message promptly.
    let got = c.join().unwrap();
    assert!(
        got.is_some(),
        "M1: receiver never woke; it gave up {:?} after B's msg_ring returned Ok (two \
         messages sit unseen in its inbox; `rung` is stuck)",
        sent.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// M2: the same coalescing with no panic at all: a sender whose msg_ring future was polled once
// and dropped (a select/timeout) leaves its doorbell queued-but-unsubmitted (Batch) in its own
// idle ring; `rung` is set, so B's doorbell is skipped and the receiver never wakes although B
// did everything right and got Ok.
// ---------------------------------------------------------------------------------------------

#[test]
fn m2_doorbell_coalesced_into_an_idle_rings_unsubmitted_sqe() {
    let Some(a) = support::ring(BackendKind::IoUring) else {
        return;
    };
    if !a.uses_native(Feature::MsgRing) {
        support::skip("no native MSG_RING");
        return;
    }
    let b = support::ring(BackendKind::IoUring).unwrap();
    let (h, c) = waiting_receiver(BackendKind::IoUring).unwrap();
    // A: a msg_ring raced against something already ready (a select with a timeout, say):
    // polled once, then dropped. A stays alive but idle.
    a.block_on(async {
        let mut m = pin!(a.msg_ring(&h, Message::Data(1)));
        std::future::poll_fn(|cx| {
            let _ = m.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await
    });
    let sent = Instant::now();
    sent_or_receiver_done(b.block_on(b.msg_ring(&h, Message::Data(2))));
    let got = c.join().unwrap();
    assert!(
        got.is_some(),
        "M2: receiver never woke; it gave up {:?} after B's msg_ring returned Ok; A (idle) \
         in flight: {}",
        sent.elapsed(),
        a.in_flight()
    );
    drop(a);
}

// ---------------------------------------------------------------------------------------------
// M3: the inbox keeps ONE receiver waker (`Mailbox::take` replaces it). Two tasks waiting in
// next_message: the first one's waker is dropped, and it never wakes although a message for
// it is queued (the same bug section 6 lists as fixed for recv_enhanced).
// ---------------------------------------------------------------------------------------------

fn two_receivers(kind: BackendKind) {
    let r = within(LIMIT * 2, move || {
        let Some(ring) = support::ring(kind) else {
            return Ok(());
        };
        let ring = leak(ring);
        let h = ring.handle();
        let done = std::rc::Rc::new(std::cell::Cell::new(0));
        for _ in 0..2 {
            let done = done.clone();
            ring.spawn(async move {
                let _ = ring.next_message().await;
                done.set(done.get() + 1);
            });
        }
        ring.block_on(async {
            ring.sleep(Duration::from_millis(50)).await.unwrap(); // both receivers wait now
            h.post(1).unwrap();
            h.post(2).unwrap();
            let t0 = Instant::now();
            while done.get() < 2 && t0.elapsed() < LIMIT {
                ring.sleep(Duration::from_millis(10)).await.unwrap();
            }
        });
        if done.get() == 2 {
            Ok(())
        } else {
            Err(format!(
                "M3: {} of 2 receivers got a message; 2 were posted (one waits forever with \
                 a message queued for it)",
                done.get()
            ))
        }
    });
    assert_eq!(r, Ok(Ok(())));
}

#[test]
fn m3_two_receivers_one_loses_its_wakeup_io_uring() {
    two_receivers(BackendKind::IoUring);
}

#[test]
fn m3_two_receivers_one_loses_its_wakeup_epoll() {
    two_receivers(BackendKind::Epoll);
}

// ---------------------------------------------------------------------------------------------
// M4: next_message pops a natively passed fd's slot (`Next::Slot`) out of the inbox, THEN
// borrows the driver to build the Install op (`self.driver().chores()`, msg_ring.rs:197); a
// kept panic is re-raised there and the fd is lost: never handed out, and the file stays
// referenced by the receiver's file table (the pipe's reader sees no EOF) until the ring drops.
// ---------------------------------------------------------------------------------------------

#[test]
fn m4_reraise_after_taking_a_passed_fd_loses_it() {
    pass_fd(true);
}

/// Control for M4: the same steps without the kept panic deliver the fd.
#[test]
fn m4_control_without_the_panic() {
    pass_fd(false);
}

fn pass_fd(attack: bool) {
    let cfg = || support::uring_wishing(Feature::MsgRingSendFd, Some(true));
    let Some(s) = support::ring_with(cfg()) else {
        return;
    };
    let r = support::ring_with(cfg()).unwrap();
    let h = r.handle();
    if !(s.uses_native(Feature::MsgRingSendFd) && r.uses_native(Feature::FixedFdInstall)) {
        support::skip("no native fd passing");
        return;
    }
    let (pr, pw) = std::io::pipe().unwrap();
    let mut reader = std::fs::File::from(OwnedFd::from(pr));
    // The receiver waits first.
    let mut next = Box::pin(r.next_message());
    assert!(poll_once(&mut next).is_pending());
    s.block_on(s.msg_ring(&h, Message::Fd(pw.into()))).unwrap();
    assert_eq!(
        s.enhancement_stats(Feature::MsgRingSendFd).native,
        1,
        "sent natively"
    );
    for _ in 0..10 {
        r.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    if attack {
        keep_a_panic(&r);
    }
    let first = caught(|| poll_once(&mut next).is_ready());
    if attack {
        // The kept panic surfaces at the next driver turn, where nothing is in hand.
        assert!(caught(|| r.poll_completions()).is_err());
    }
    eprintln!("first poll of next_message: {first:?}");
    let got = match first {
        Ok(true) => true,
        // Pending: the Install op is on its way; keep polling the same future.
        Ok(false) => run_for(&r, &mut next, LIMIT).is_some(),
        Err(_) => {
            let mut again = Box::pin(r.next_message());
            run_for(&r, &mut again, LIMIT).is_some()
        }
    };
    // Where did the fd go? EOF on the reader means nobody holds the writer any more.
    // SAFETY: plain fcntl on an fd we own (harness).
    unsafe {
        let fl = libc::fcntl(reader.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let eof = reader.read(&mut [0u8; 1]);
    assert!(
        got,
        "M4: the passed fd was lost with the re-raised panic (never handed out); reader: \
         {eof:?} (WouldBlock: the receiver's file table still holds the writer)"
    );
}
