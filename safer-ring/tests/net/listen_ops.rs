//! Listeners made through the ring (`listen_tcp`, `listen_unix`: OP_SOCKET, OP_BIND, OP_LISTEN
//! where the kernel has them) on io_uring, on io_uring with the features forced off (their
//! syscalls), and on epoll: the same listeners and errors on every path.

use std::io::{ErrorKind, Read, Write};

use safer_ring::{Feature, Ring};
use support::TempPath;

use crate::support;

fn check(ring: &Ring) {
    // TCP: a std client reaches it; the bytes arrive.
    let l = ring
        .block_on(ring.listen_tcp("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = l.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    let (s, peer) = ring.block_on(ring.accept(&l)).unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    ring.block_on(ring.send(&s, b"tcp".to_vec())).0.unwrap();
    let mut b = [0u8; 3];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"tcp");
    // EADDRINUSE as std reports it.
    let std_err = std::net::TcpListener::bind(addr).unwrap_err();
    let err = ring.block_on(ring.listen_tcp(addr)).unwrap_err();
    assert_eq!(
        (err.kind(), err.raw_os_error()),
        (ErrorKind::AddrInUse, std_err.raw_os_error())
    );
    // Unix.
    let path = TempPath::new("lu");
    let ul = ring.block_on(ring.listen_unix(&path.0)).unwrap();
    assert_eq!(ul.local_addr().unwrap().as_pathname(), Some(&*path.0));
    let mut uc = std::os::unix::net::UnixStream::connect(&path.0).unwrap();
    let (us, _) = ring.block_on(ring.accept_unix(&ul)).unwrap();
    uc.write_all(b"unix").unwrap();
    let (_, buf) = ring.block_on(ring.recv(&us, Vec::with_capacity(8)));
    assert_eq!(buf, b"unix");
    let err = ring.block_on(ring.listen_unix(&path.0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    let err = ring.block_on(ring.listen_unix("")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// Each listener counts one socket and, when it got that far, one bind+listen.
fn counts(ring: &Ring, f: Feature) -> (u64, u64) {
    let s = ring.enhancement_stats(f);
    (s.native, s.fallback)
}

backend_test!(listeners_through_the_ring, |ring| {
    check(&ring);
    // Sockets: TCP ok, TCP in use, Unix ok, Unix in use (the empty path fails before).
    // Bind+listen counted only when both succeed: one TCP, one Unix.
    let native_sock = ring.uses_native(Feature::SocketOp);
    let native_bl = ring.uses_native(Feature::BindListen);
    let want = |native: bool, n| if native { (n, 0) } else { (0, n) };
    assert_eq!(counts(&ring, Feature::SocketOp), want(native_sock, 4));
    assert_eq!(counts(&ring, Feature::BindListen), want(native_bl, 2));
});

#[test]
fn listeners_on_the_syscall_fallback() {
    let cfg = support::uring_wishing(Feature::BindListen, Some(false)).enhancement(
        safer_ring::ProgressiveEnhancementConfig::default()
            .feature(Feature::BindListen, Some(false))
            .feature(Feature::SocketOp, Some(false)),
    );
    let rings = support::ring_with(cfg)
        .into_iter()
        .chain(support::ring(safer_ring::BackendKind::Epoll));
    for ring in rings {
        assert!(!ring.uses_native(Feature::BindListen) && !ring.uses_native(Feature::SocketOp));
        check(&ring);
        assert_eq!(
            counts(&ring, Feature::SocketOp),
            (0, 4),
            "{:?}",
            ring.backend()
        );
        assert_eq!(
            counts(&ring, Feature::BindListen),
            (0, 2),
            "{:?}",
            ring.backend()
        );
    }
}
