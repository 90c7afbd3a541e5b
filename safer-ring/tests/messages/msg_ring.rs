//! Ring-to-ring messages and fd passing across threads: native MSG_RING where available, the
//! waker/eventfd fallback otherwise; same results on every path.

use std::io::Read;
use std::sync::mpsc;

use safer_ring::features;
use safer_ring::{
    BackendKind, Feature, Message, ProgressiveEnhancementConfig, Ring, RingHandle, SaferRingConfig,
};

use crate::support;

const N: u64 = 1000;

/// Starts a receiver ring of `kind` on its own thread; it collects N data messages and one fd,
/// writes "ok" into the fd, and returns the data in arrival order.
fn receiver(kind: BackendKind) -> Option<(RingHandle, std::thread::JoinHandle<Vec<u64>>)> {
    support::ring(kind)?; // skip (with reason) where this backend cannot run
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let ring = support::ring(kind).unwrap();
        tx.send(ring.handle()).unwrap();
        ring.block_on(async {
            let mut got = Vec::new();
            while got.len() < N as usize {
                match ring.next_message().await {
                    Message::Data(d) => got.push(d),
                    Message::Fd(_) => panic!("fd before data"),
                }
            }
            match ring.next_message().await {
                Message::Fd(fd) => {
                    let pipe = safer_ring::Pipe::from_owned_fd(fd);
                    let (n, _) = ring.write(&pipe, b"ok".to_vec()).await;
                    assert_eq!(n.unwrap(), 2);
                }
                Message::Data(d) => panic!("expected an fd, got {d}"),
            }
            got
        })
    });
    Some((rx.recv().unwrap(), t))
}

fn send_all(sender: Option<&Ring>, to: &RingHandle) -> std::fs::File {
    let (r, w) = std::io::pipe().unwrap();
    match sender {
        Some(ring) => ring.block_on(async {
            for i in 0..N {
                ring.msg_ring(to, Message::Data(i)).await.unwrap();
            }
            ring.msg_ring(to, Message::Fd(w.into())).await.unwrap();
        }),
        None => {
            for i in 0..N {
                to.post(i).unwrap();
            }
            to.send_fd(w.into()).unwrap();
        }
    }
    std::fs::File::from(std::os::fd::OwnedFd::from(r))
}

fn check(sender: Option<&Ring>, target: BackendKind) {
    let Some((handle, t)) = receiver(target) else {
        return;
    };
    let mut r = send_all(sender, &handle);
    let got = t.join().unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "in order, none lost");
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "ok", "the passed fd works in the receiver");
}

#[test]
fn ring_to_ring_native_where_available() {
    let Some(sender) = support::ring(BackendKind::IoUring) else {
        return;
    };
    check(Some(&sender), BackendKind::IoUring);
    let native = features::is_available(Feature::MsgRing);
    let s = sender.enhancement_stats(Feature::MsgRing);
    // N data messages and the fd (queued: native fd passing is opt-in) share the doorbell path.
    assert_eq!(
        (s.native, s.fallback),
        if native { (N + 1, 0) } else { (0, N + 1) }
    );
    // Native fd passing is opt-in (slower than the queue in-process): tests/messages/fd_passing.rs.
    let s = sender.enhancement_stats(Feature::MsgRingSendFd);
    assert_eq!((s.native, s.fallback), (0, 1));
}

#[test]
fn ring_to_ring_forced_fallback() {
    let Some(sender) = support::ring_with(support::uring_wishing(Feature::MsgRing, Some(false)))
    else {
        return;
    };
    check(Some(&sender), BackendKind::IoUring);
    let s = sender.enhancement_stats(Feature::MsgRing);
    assert_eq!((s.native, s.fallback), (0, N + 1));
}

#[test]
fn epoll_sender_and_epoll_target() {
    let sender = support::ring(BackendKind::Epoll).unwrap();
    check(Some(&sender), BackendKind::Epoll);
    // An io_uring sender to an epoll target cannot use MSG_RING: it falls back.
    if let Some(uring) = support::ring(BackendKind::IoUring) {
        check(Some(&uring), BackendKind::Epoll);
        assert_eq!(uring.enhancement_stats(Feature::MsgRing).native, 0);
        assert_eq!(uring.enhancement_stats(Feature::MsgRingSendFd).native, 0);
    }
}

#[test]
fn plain_thread_posts() {
    check(None, BackendKind::IoUring);
    check(None, BackendKind::Epoll);
}

/// Ping-pong between two rings on two threads: every message finds its receiver asleep in
/// the kernel, so each one needs a doorbell (OP_MSG_RING natively, the eventfd otherwise).
fn ping_pong(kind: BackendKind, native: Option<bool>) {
    const ROUNDS: u64 = 300;
    let cfg = move || {
        let pe = ProgressiveEnhancementConfig::default().feature(Feature::MsgRing, native);
        SaferRingConfig::default().backend(kind).enhancement(pe)
    };
    let Some(a) = support::ring_with(cfg()) else {
        return;
    };
    let (tx, rx) = mpsc::channel();
    let a_handle = a.handle();
    let b = std::thread::spawn(move || {
        let b = Ring::with_config(cfg()).unwrap();
        tx.send(b.handle()).unwrap();
        b.block_on(async {
            for i in 0..ROUNDS {
                let Message::Data(d) = b.next_message().await else {
                    panic!("data expected")
                };
                assert_eq!(d, i);
                b.msg_ring(&a_handle, Message::Data(d + 1)).await.unwrap();
            }
        });
        b.enhancement_stats(Feature::MsgRing)
    });
    let to_b = rx.recv().unwrap();
    a.block_on(async {
        for i in 0..ROUNDS {
            a.msg_ring(&to_b, Message::Data(i)).await.unwrap();
            let Message::Data(d) = a.next_message().await else {
                panic!("data expected")
            };
            assert_eq!(d, i + 1);
        }
    });
    let sb = b.join().unwrap();
    let sa = a.enhancement_stats(Feature::MsgRing);
    let used = kind == BackendKind::IoUring
        && native != Some(false)
        && features::is_available(Feature::MsgRing);
    let want = if used { (ROUNDS, 0) } else { (0, ROUNDS) };
    assert_eq!((sa.native, sa.fallback), want);
    assert_eq!((sb.native, sb.fallback), want);
}

#[test]
fn ping_pong_wakes_sleeping_receivers() {
    ping_pong(BackendKind::IoUring, None);
    ping_pong(BackendKind::IoUring, Some(false));
    ping_pong(BackendKind::Epoll, None);
}
