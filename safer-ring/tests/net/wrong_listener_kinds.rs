//! Attacks on listeners of the wrong kind, adopted with `from_owned_fd`/`From`: a Unix
//! listener as `TcpListener`, TCP as `UnixListener`, sockets that do not listen; `accept`,
//! `accept_multiple` and `accept_unix` on each. Same outcomes on every backend, nothing
//! accepted behind the caller's back (a refused connection is still in the backlog).

use std::os::fd::OwnedFd;
use std::time::Duration;

use safer_ring::{BackendKind, Feature, Ring, TcpListener, UnixListener};
use support::fds::outcome;

use crate::support;

/// Up to `n` items of `accept_multiple`, each waited for at most 30 s: every case here ends
/// with an error at once, so the bound only turns a hang into an outcome, never a slow reply.
fn multi(ring: &Ring, l: &TcpListener, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    ring.block_on(async {
        let mut s = ring.accept_multiple(l);
        for _ in 0..n {
            let item = ring.sleep(Duration::from_secs(30));
            let next = s.next();
            futures_pin(next, item, &mut out).await;
        }
    });
    out
}

/// Races an accept stream's `next()` against a sleep; records the result.
async fn futures_pin<A, B>(next: A, sleep: B, out: &mut Vec<String>)
where
    A: std::future::Future<Output = Option<std::io::Result<safer_ring::TcpStream>>>,
    B: std::future::Future,
{
    let mut next = std::pin::pin!(next);
    let mut sleep = std::pin::pin!(sleep);
    let r = std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = next.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        sleep.as_mut().poll(cx).map(|_| None)
    })
    .await;
    out.push(match r {
        None => "nothing within 30 s".into(),
        Some(None) => "end of stream".into(),
        Some(Some(r)) => outcome(&r.map(drop)),
    });
}

fn outcomes(ring: &Ring, tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    // A Unix listener adopted as a TcpListener, with a client waiting.
    let path = support::TempPath::new(tag);
    let unix = std::os::unix::net::UnixListener::bind(&path.0).unwrap();
    let keep = unix.try_clone().unwrap();
    let _client = std::os::unix::net::UnixStream::connect(&path.0).unwrap();
    let as_tcp = TcpListener::from_owned_fd(OwnedFd::from(unix));
    let r = ring.block_on(ring.accept(&as_tcp));
    out.push(format!("unix as tcp, accept: {}", outcome(&r.map(drop))));
    out.extend(
        multi(ring, &as_tcp, 2)
            .into_iter()
            .map(|s| format!("unix as tcp, multi: {s}")),
    );
    keep.set_nonblocking(true).unwrap();
    out.push(format!(
        "unix as tcp: client still in the backlog: {}",
        keep.accept().is_ok()
    ));

    // A TCP listener adopted as a UnixListener, with a client waiting.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let keep = tcp.try_clone().unwrap();
    let _c = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
    let as_unix = UnixListener::from(std::os::unix::net::UnixListener::from(OwnedFd::from(tcp)));
    let r = ring.block_on(ring.accept_unix(&as_unix));
    out.push(format!(
        "tcp as unix, accept_unix: {}",
        outcome(&r.map(drop))
    ));
    keep.set_nonblocking(true).unwrap();
    out.push(format!(
        "tcp as unix: client still in the backlog: {}",
        keep.accept().is_ok()
    ));

    // Sockets that do not listen: a UDP socket and a connected TCP stream as TcpListener, a
    // Unix datagram socket as UnixListener.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = TcpListener::from_owned_fd(OwnedFd::from(udp));
    let r = ring.block_on(ring.accept(&udp));
    out.push(format!(
        "udp as tcp listener, accept: {}",
        outcome(&r.map(drop))
    ));
    out.extend(
        multi(ring, &udp, 2)
            .into_iter()
            .map(|s| format!("udp, multi: {s}")),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let s = TcpListener::from_owned_fd(OwnedFd::from(s));
    let r = ring.block_on(ring.accept(&s));
    out.push(format!(
        "tcp stream as listener, accept: {}",
        outcome(&r.map(drop))
    ));
    out.extend(
        multi(ring, &s, 2)
            .into_iter()
            .map(|x| format!("tcp stream, multi: {x}")),
    );
    let (d, _d2) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let d = UnixListener::from(std::os::unix::net::UnixListener::from(OwnedFd::from(d)));
    let r = ring.block_on(ring.accept_unix(&d));
    out.push(format!(
        "unix datagram as listener: {}",
        outcome(&r.map(drop))
    ));
    out
}

// io_uring (multishot accept where the kernel has it), io_uring with MultiShotAccept off, and
// epoll: the same outcome for every case; nothing hangs.
#[test]
fn wrong_listeners_same_on_every_backend() {
    let epoll = outcomes(&support::ring(BackendKind::Epoll).unwrap(), "attack-l-e");
    println!("epoll: {epoll:#?}");
    for s in &epoll {
        if s.contains("unix as tcp") || s.contains("tcp as unix") {
            assert!(
                s.contains("InvalidInput") || s.ends_with("true"),
                "refused before accepting: {s}"
            );
        }
    }
    let Some(uring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    assert_eq!(
        outcomes(&uring, "attack-l-n"),
        epoll,
        "io_uring and epoll differ"
    );
    let off = support::ring_with(support::uring_wishing(
        Feature::MultiShotAccept,
        Some(false),
    ))
    .unwrap();
    assert_eq!(
        outcomes(&off, "attack-l-o"),
        epoll,
        "single-shot fallback differs"
    );
}

// The receive-side analogue: a Unix datagram socket adopted as `UdpSocket` and a UDP socket
// adopted as `UnixDatagram`. recv_from / recv_from_unix could not describe the sender; they
// must refuse before receiving (like accept), not consume the datagram and then fail (which
// they did; fixed in ops/msg.rs).
fn wrong_datagram_outcomes(ring: &Ring) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let keep = b.try_clone().unwrap();
    a.send(b"kept").unwrap();
    let as_udp = safer_ring::UdpSocket::from_owned_fd(OwnedFd::from(b));
    let (r, _) = ring.block_on(ring.recv_from(&as_udp, Vec::with_capacity(8)));
    out.push(format!("unix as udp, recv_from: {}", outcome(&r.map(drop))));
    keep.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    out.push(format!(
        "unix as udp: datagram still queued: {}",
        keep.recv(&mut buf).is_ok()
    ));

    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let keep = u.try_clone().unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.send_to(b"kept", u.local_addr().unwrap()).unwrap();
    let as_unix =
        safer_ring::UnixDatagram::from(std::os::unix::net::UnixDatagram::from(OwnedFd::from(u)));
    let (r, _) = ring.block_on(ring.recv_from_unix(&as_unix, Vec::with_capacity(8)));
    out.push(format!(
        "udp as unix, recv_from_unix: {}",
        outcome(&r.map(drop))
    ));
    keep.set_nonblocking(true).unwrap();
    out.push(format!(
        "udp as unix: datagram still queued: {}",
        keep.recv(&mut buf).is_ok()
    ));
    out
}

#[test]
fn wrong_datagram_sockets_refused_before_receiving() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let Some(ring) = support::ring(kind) else {
            continue;
        };
        let out = wrong_datagram_outcomes(&ring);
        assert_eq!(
            out,
            [
                "unix as udp, recv_from: Err(InvalidInput)",
                "unix as udp: datagram still queued: true",
                "udp as unix, recv_from_unix: Err(InvalidInput)",
                "udp as unix: datagram still queued: true",
            ],
            "{kind:?}"
        );
    }
}
