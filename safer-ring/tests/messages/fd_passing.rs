//! Passing fds between rings: natively (IORING_MSG_SEND_FD + OP_FIXED_FD_INSTALL, opt-in) where
//! the kernel has both halves and both rings ask for it, through the queue elsewhere. Each passed fd is the write end of a
//! pipe: what the receiver writes proves delivery, and EOF on the read end proves that no
//! staging slot, file-table slot or queue still holds a reference.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Waker};

use safer_ring::{
    BackendKind, Feature, Message, Pipe, ProgressiveEnhancementConfig, Ring, RingHandle,
    SaferRingConfig, features,
};

use crate::support;

/// Rings that opt in to native fd passing.
fn opted_in() -> SaferRingConfig {
    support::uring_wishing(Feature::MsgRingSendFd, Some(true))
}

fn native() -> bool {
    features::is_available(Feature::MsgRingSendFd)
        && features::is_available(Feature::FixedFdInstall)
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (std::fs::File::from(OwnedFd::from(r)), w.into())
}

/// Reads everything up to EOF without blocking: `None` if a writer is still open somewhere.
fn read_to_eof(mut r: std::fs::File) -> Option<Vec<u8>> {
    // SAFETY: plain fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(r.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("reading the pipe: {e}"),
    }
}

/// An opted-in receiver ring on its own thread running `body`.
fn receiver<T: Send + 'static>(
    body: impl FnOnce(&Ring) -> T + Send + 'static,
) -> Option<(RingHandle, std::thread::JoinHandle<T>)> {
    receiver_with(opted_in(), body)
}

/// A receiver ring made from `cfg` on its own thread running `body`; returns its handle and
/// the join handle (`None` where io_uring cannot run).
fn receiver_with<T: Send + 'static>(
    cfg: SaferRingConfig,
    body: impl FnOnce(&Ring) -> T + Send + 'static,
) -> Option<(RingHandle, std::thread::JoinHandle<T>)> {
    support::ring(BackendKind::IoUring)?;
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let ring = support::ring_with(cfg).unwrap();
        tx.send(ring.handle()).unwrap();
        body(&ring)
    });
    Some((rx.recv().unwrap(), t))
}

/// Takes one message, which must be an fd, answers `tag` into it; returns the ring's install
/// stats.
fn answer_one(ring: &Ring, tag: &[u8]) -> safer_ring::FeatureStats {
    ring.block_on(async {
        let Message::Fd(fd) = ring.next_message().await else {
            panic!("an fd was sent")
        };
        answer(ring, fd, tag.to_vec()).await;
    });
    ring.enhancement_stats(Feature::FixedFdInstall)
}

/// Writes `tag` into a received fd and closes it.
async fn answer(ring: &Ring, fd: OwnedFd, tag: Vec<u8>) {
    let pipe = Pipe::from_owned_fd(fd);
    let (n, _) = ring.write(&pipe, tag).await;
    n.unwrap();
}

#[test]
fn fds_and_data_keep_sending_order() {
    if let Some(sender) = support::ring_with(opted_in()) {
        order_with(sender, native());
    }
}

#[test]
fn fds_and_data_keep_sending_order_with_send_fd_forced_off() {
    let off = support::uring_wishing(Feature::MsgRingSendFd, Some(false));
    if let Some(sender) = support::ring_with(off) {
        order_with(sender, false);
    }
}

/// `sender` sends K data messages interleaved with K fds; `native` says how the fds go.
fn order_with(sender: Ring, native: bool) {
    const K: u64 = 300;
    let Some((to, t)) = receiver(|ring| {
        ring.block_on(async {
            for i in 0..K {
                match ring.next_message().await {
                    Message::Data(d) => assert_eq!(d, i),
                    Message::Fd(_) => panic!("fd where data {i} was sent"),
                }
                match ring.next_message().await {
                    Message::Fd(fd) => answer(ring, fd, i.to_le_bytes().to_vec()).await,
                    Message::Data(d) => panic!("data {d} where fd {i} was sent"),
                }
            }
        });
        ring.enhancement_stats(Feature::FixedFdInstall)
    }) else {
        return;
    };
    let mut reads = Vec::new();
    sender.block_on(async {
        for i in 0..K {
            sender.msg_ring(&to, Message::Data(i)).await.unwrap();
            let (r, w) = pipe();
            reads.push(r);
            sender.msg_ring(&to, Message::Fd(w)).await.unwrap();
        }
    });
    let installed = t.join().unwrap();
    for (i, r) in (0..K).zip(reads) {
        let got = read_to_eof(r).expect("no reference to the write end is left anywhere");
        assert_eq!(
            got,
            i.to_le_bytes(),
            "fd {i} reached the right receiver message"
        );
    }
    let s = sender.enhancement_stats(Feature::MsgRingSendFd);
    if native {
        assert_eq!((s.native, s.fallback), (K, 0));
        assert_eq!(installed.native, K);
    } else {
        assert_eq!((s.native, s.fallback, installed.native), (0, K, 0));
    }
}

#[test]
fn concurrent_sends_beyond_the_staging_slots() {
    const K: usize = 64; // more than the 16 fds a ring stages at once
    let Some((to, t)) = receiver(|ring| {
        ring.block_on(async {
            for _ in 0..K {
                let Message::Fd(fd) = ring.next_message().await else {
                    panic!("only fds were sent")
                };
                answer(ring, fd, b"x".to_vec()).await;
            }
        })
    }) else {
        return;
    };
    let sender = Rc::new(support::ring_with(opted_in()).unwrap());
    let done = Rc::new(std::cell::Cell::new(0));
    let tasks = support::Tasks::default();
    let mut reads = Vec::new();
    for _ in 0..K {
        let (r, w) = pipe();
        reads.push(r);
        let (ring, to, done) = (sender.clone(), to.clone(), done.clone());
        tasks.spawn(&sender, async move {
            ring.msg_ring(&to, Message::Fd(w)).await.unwrap();
            done.set(done.get() + 1);
        });
    }
    sender.block_on(async {
        while done.get() < K {
            tasks.check();
            sender.nop().await.unwrap();
        }
    });
    t.join().unwrap();
    for r in reads {
        assert_eq!(
            read_to_eof(r).as_deref(),
            Some(&b"x"[..]),
            "each fd exactly once"
        );
    }
    let s = sender.enhancement_stats(Feature::MsgRingSendFd);
    assert_eq!(s.native + s.fallback, K as u64);
    if native() {
        assert!(s.native >= 16, "{s:?}");
    } else {
        assert_eq!(s.native, 0);
    }
}

#[test]
fn a_dropped_send_still_delivers() {
    let Some((to, t)) = receiver(|ring| answer_one(ring, b"d")) else {
        return;
    };
    let sender = support::ring_with(opted_in()).unwrap();
    let (r, w) = pipe();
    {
        let mut send = Box::pin(sender.msg_ring(&to, Message::Fd(w)));
        // One poll submits (native) or queues (fallback); then the future is dropped.
        let mut cx = Context::from_waker(Waker::noop());
        let _ = send.as_mut().poll(&mut cx);
    }
    sender.block_on(sender.nop()).unwrap(); // submits what the dropped send queued
    t.join().unwrap();
    // The orphaned send completes on the sender's next turn after the receiver took the fd
    // (with DEFER_TASKRUN the kernel finishes it through the receiving thread's task work).
    sender.block_on(sender.nop()).unwrap();
    assert_eq!(read_to_eof(r).as_deref(), Some(&b"d"[..]));
}

#[test]
fn a_dropped_receiver_releases_unread_fds_and_refuses_more() {
    let (go, wait) = mpsc::channel::<()>();
    let Some((to, t)) = receiver(move |_ring| wait.recv().unwrap()) else {
        return;
    };
    let sender = support::ring_with(opted_in()).unwrap();
    let (r, w) = pipe();
    sender
        .block_on(sender.msg_ring(&to, Message::Fd(w)))
        .unwrap();
    go.send(()).unwrap();
    t.join().unwrap();
    // The receiver ring is gone while `to` still names it. The unread fd went with it: with
    // its file table (native) or its queue (fallback).
    assert!(to.is_closed());
    assert_eq!(read_to_eof(r).as_deref(), Some(&b""[..]));
    // Later messages fail, and an fd in them is closed rather than kept.
    let (r, w) = pipe();
    let e = sender
        .block_on(sender.msg_ring(&to, Message::Fd(w)))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    assert_eq!(read_to_eof(r).as_deref(), Some(&b""[..]));
    let e = sender
        .block_on(sender.msg_ring(&to, Message::Data(1)))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    assert_eq!(
        to.post(2).unwrap_err().kind(),
        std::io::ErrorKind::BrokenPipe
    );
    let (r, w) = pipe();
    assert!(to.send_fd(w).is_err());
    assert_eq!(read_to_eof(r).as_deref(), Some(&b""[..]));
}

#[test]
fn a_ring_sends_an_fd_to_itself() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let (r, w) = pipe();
    ring.block_on(async {
        ring.msg_ring(&ring.handle(), Message::Fd(w)).await.unwrap();
        let Message::Fd(fd) = ring.next_message().await else {
            panic!("an fd was sent")
        };
        answer(&ring, fd, b"self".to_vec()).await;
    });
    assert_eq!(read_to_eof(r).as_deref(), Some(&b"self"[..]));
    // The kernel refuses SEND_FD to the sending ring itself: that one takes the queue.
    assert_eq!(ring.enhancement_stats(Feature::MsgRingSendFd).native, 0);
}

/// Sends one fd from a ring made of `sender_cfg` to a receiver made of `receiver_cfg` and
/// checks it went through the queue: delivered, released, and counted as the fallback.
fn one_fd_through_the_queue(receiver_cfg: SaferRingConfig, sender_cfg: SaferRingConfig) {
    let Some((to, t)) = receiver_with(receiver_cfg, |ring| answer_one(ring, b"q")) else {
        return;
    };
    let sender = support::ring_with(sender_cfg).unwrap();
    let (r, w) = pipe();
    sender
        .block_on(sender.msg_ring(&to, Message::Fd(w)))
        .unwrap();
    assert_eq!(t.join().unwrap().native, 0, "nothing installed natively");
    assert_eq!(read_to_eof(r).as_deref(), Some(&b"q"[..]));
    let s = sender.enhancement_stats(Feature::MsgRingSendFd);
    assert_eq!((s.native, s.fallback), (0, 1));
}

/// A receiver that can only read fds through the queue (its FIXED_FD_INSTALL turned off, as
/// on 6.0 to 6.7) still gets everything from a sender that could pass natively.
#[test]
fn receiver_without_install_gets_fds_through_the_queue() {
    let pe = ProgressiveEnhancementConfig::default()
        .feature(Feature::MsgRingSendFd, Some(true))
        .feature(Feature::FixedFdInstall, Some(false));
    one_fd_through_the_queue(opted_in().enhancement(pe), opted_in());
}

/// Native fd passing is opt-in: default rings hand the fd number through the queue even where
/// the kernel has both halves.
#[test]
fn default_rings_pass_fds_through_the_queue() {
    let default = || SaferRingConfig::default().backend(BackendKind::IoUring);
    one_fd_through_the_queue(default(), default());
}
