//! Ring-to-ring messages and fd passing across threads: native MSG_RING where available, the
//! waker/eventfd fallback otherwise; same results on every path.

mod common;

use std::io::Read;
use std::sync::mpsc;

use safer_ring::features;
use safer_ring::{
    BackendKind, Feature, Message, ProgressiveEnhancementConfig, Ring, RingHandle, SaferRingConfig,
};

const N: u64 = 1000;

/// Starts a receiver ring of `kind` on its own thread; it collects N data messages and one fd,
/// writes "ok" into the fd, and returns the data in arrival order.
fn receiver(kind: BackendKind) -> Option<(RingHandle, std::thread::JoinHandle<Vec<u64>>)> {
    common::ring(kind)?; // skip (with reason) where this backend cannot run
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let ring = common::ring(kind).unwrap();
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
    let Some(sender) = common::ring(BackendKind::IoUring) else {
        return;
    };
    check(Some(&sender), BackendKind::IoUring);
    let native = features::supports_feature(Feature::MsgRing);
    let s = sender.enhancement_stats(Feature::MsgRing);
    assert_eq!((s.native, s.fallback), if native { (N, 0) } else { (0, N) });
    let s = sender.enhancement_stats(Feature::MsgRingSendFd);
    let native_fd = fd_passing_native();
    assert_eq!(
        (s.native, s.fallback),
        if native_fd { (1, 0) } else { (0, 1) }
    );
}

/// Fds pass natively where the kernel has both halves: IORING_MSG_SEND_FD (6.0+, sender) and
/// OP_FIXED_FD_INSTALL (6.8+, receiver). On 6.0 to 6.7 SEND_FD works (detection sends one
/// for real) but the receiver cannot make a plain fd of it: the queue carries the fd.
fn fd_passing_native() -> bool {
    features::supports_feature(Feature::MsgRingSendFd)
        && features::supports_feature(Feature::FixedFdInstall)
}

#[test]
fn ring_to_ring_forced_fallback() {
    let off = ProgressiveEnhancementConfig::default().feature(Feature::MsgRing, Some(false));
    let Some(sender) = common::ring_with(
        SaferRingConfig::default()
            .backend(BackendKind::IoUring)
            .enhancement(off),
    ) else {
        return;
    };
    check(Some(&sender), BackendKind::IoUring);
    let s = sender.enhancement_stats(Feature::MsgRing);
    assert_eq!((s.native, s.fallback), (0, N));
}

#[test]
fn epoll_sender_and_epoll_target() {
    let sender = common::ring(BackendKind::Epoll).unwrap();
    check(Some(&sender), BackendKind::Epoll);
    // An io_uring sender to an epoll target cannot use MSG_RING: it falls back.
    if let Some(uring) = common::ring(BackendKind::IoUring) {
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
