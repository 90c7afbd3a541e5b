//! UDP over loopback on both backends: datagram boundaries and bytes, addresses compared with
//! what std reports, errors as std maps them, socket options through `AsFd`.

use std::io::ErrorKind;
use std::time::Duration;

use crate::support;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

backend_test!(connected_pair_keeps_datagrams, |ring| {
    let a = ring.bind_udp("127.0.0.1:0").unwrap();
    let b = ring.bind_udp("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    let sizes = [1usize, 512, 1472, 9000, 65_507, 0];
    ring.block_on(async {
        for (i, &len) in sizes.iter().enumerate() {
            let (n, _) = ring.send(&a, pattern(len, i as u8)).await;
            assert_eq!(n.unwrap(), len);
        }
        for (i, &len) in sizes.iter().enumerate() {
            let (n, buf) = ring.recv(&b, Vec::with_capacity(65_536)).await;
            assert_eq!(n.unwrap(), len, "datagram {i}");
            assert_eq!(buf, pattern(len, i as u8), "datagram {i}");
        }
        ring.send(&b, b"reply".to_vec()).await.0.unwrap();
        let (_, buf) = ring.recv(&a, Vec::with_capacity(16)).await;
        assert_eq!(buf, b"reply");
        // Longer than the buffer: recv(2) keeps the head and drops the rest of that datagram.
        ring.send(&a, pattern(300, 9)).await.0.unwrap();
        ring.send(&a, b"after".to_vec()).await.0.unwrap();
        let (n, buf) = ring.recv(&b, Vec::with_capacity(100)).await;
        assert_eq!((n.unwrap(), &buf[..]), (100, &pattern(300, 9)[..100]));
        let (_, buf) = ring.recv(&b, Vec::with_capacity(100)).await;
        assert_eq!(buf, b"after");
    });
});

backend_test!(addresses_and_std_interop, |ring| {
    let sock = ring.bind_udp("127.0.0.1:0").unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.connect(peer.local_addr().unwrap()).unwrap();
    assert_eq!(sock.peer_addr().unwrap(), peer.local_addr().unwrap());
    ring.block_on(ring.send(&sock, b"to std".to_vec()))
        .0
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to std");
    assert_eq!(
        from,
        sock.local_addr().unwrap(),
        "std sees the address we report"
    );
    peer.send_to(b"from std", sock.local_addr().unwrap())
        .unwrap();
    let (_, got) = ring.block_on(ring.recv(&sock, Vec::with_capacity(64)));
    assert_eq!(got, b"from std");
    // Adopted from std: the same socket, the same addresses.
    let adopted = safer_ring::UdpSocket::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    assert_ne!(adopted.local_addr().unwrap().port(), 0);
    assert_eq!(
        adopted.peer_addr().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
});

backend_test!(ipv6_loopback, |ring| {
    let a = match ring.bind_udp("[::1]:0") {
        Ok(a) => a,
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => {
            return support::skip(format_args!("no IPv6 loopback here: {e}"));
        }
        Err(e) => panic!("bind [::1]: {e}"),
    };
    let b = ring.bind_udp("[::1]:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    assert!(a.local_addr().unwrap().is_ipv6());
    ring.block_on(ring.send(&a, b"six".to_vec())).0.unwrap();
    let (_, buf) = ring.block_on(ring.recv(&b, Vec::with_capacity(8)));
    assert_eq!(buf, b"six");
});

backend_test!(errors_as_std, |ring| {
    // EADDRINUSE on a taken port.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let std_err = std::net::UdpSocket::bind(taken.local_addr().unwrap()).unwrap_err();
    let err = ring.bind_udp(taken.local_addr().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert_eq!(err.raw_os_error(), std_err.raw_os_error());
    // ECONNREFUSED: a connected socket's datagram to a port nobody has comes back as ICMP
    // port unreachable, reported by the next receive (as std's recv reports it).
    let gone = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let sock = ring.bind_udp("127.0.0.1:0").unwrap();
    sock.connect(gone).unwrap();
    ring.block_on(async {
        ring.send(&sock, b"anyone?".to_vec()).await.0.unwrap();
        let (n, _) = ring.recv(&sock, Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    });
    // No address to connect to.
    let no_addrs: &[std::net::SocketAddr] = &[];
    assert_eq!(
        sock.connect(no_addrs).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
});

backend_test!(socket_options_through_as_fd, |ring| {
    let sock = ring.bind_udp("127.0.0.1:0").unwrap();
    let r = socket2::SockRef::from(&sock);
    r.set_broadcast(true).unwrap();
    assert!(r.broadcast().unwrap());
    r.set_recv_buffer_size(128 * 1024).unwrap();
    assert!(r.recv_buffer_size().unwrap() >= 128 * 1024);
    assert_eq!(r.r#type().unwrap(), socket2::Type::DGRAM);
});

backend_test!(send_to_recv_from_unconnected, |ring| {
    let a = ring.bind_udp("127.0.0.1:0").unwrap();
    let b = ring.bind_udp("127.0.0.1:0").unwrap();
    let std_peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    std_peer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    ring.block_on(async {
        for (i, len) in [1usize, 1472, 65_507].into_iter().enumerate() {
            let (n, _) = ring
                .send_to(&a, pattern(len, i as u8), b.local_addr().unwrap())
                .await;
            assert_eq!(n.unwrap(), len);
            let (r, buf) = ring.recv_from(&b, Vec::with_capacity(65_536)).await;
            let (n, from) = r.unwrap();
            assert_eq!((n, from), (len, a.local_addr().unwrap()));
            assert_eq!(buf, pattern(len, i as u8));
        }
        // From std: the address recv_from reports is the one std's socket is bound to.
        std_peer
            .send_to(b"std here", b.local_addr().unwrap())
            .unwrap();
        let (r, buf) = ring.recv_from(&b, Vec::with_capacity(64)).await;
        assert_eq!(r.unwrap(), (8, std_peer.local_addr().unwrap()));
        assert_eq!(buf, b"std here");
        // To std: std's recv_from reports the address we report.
        ring.send_to(&b, b"ring here".to_vec(), std_peer.local_addr().unwrap())
            .await
            .0
            .unwrap();
    });
    let mut buf = [0u8; 64];
    let (n, from) = std_peer.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"ring here"[..], b.local_addr().unwrap())
    );
});

backend_test!(recv_msg_reports_truncation, |ring| {
    let a = ring.bind_udp("127.0.0.1:0").unwrap();
    let b = ring.bind_udp("127.0.0.1:0").unwrap();
    let to = b.local_addr().unwrap();
    ring.block_on(async {
        ring.send_to(&a, pattern(300, 1), to).await.0.unwrap();
        ring.send_to(&a, pattern(100, 2), to).await.0.unwrap();
        let (m, buf) = ring.recv_msg(&b, Vec::with_capacity(100), 0).await;
        let m = m.unwrap();
        assert!(m.truncated, "300 bytes into 100");
        assert!(!m.control_truncated);
        assert_eq!((m.len, &buf[..]), (100, &pattern(300, 1)[..100]));
        assert_eq!(m.peer_addr(), Some(a.local_addr().unwrap()));
        let (m, buf) = ring.recv_msg(&b, Vec::with_capacity(100), 0).await;
        let m = m.unwrap();
        assert!(!m.truncated, "exactly 100 bytes fit");
        assert_eq!(buf, pattern(100, 2));
        // recv_from cuts the same way, as recvfrom(2) does.
        ring.send_to(&a, pattern(300, 3), to).await.0.unwrap();
        let (r, buf) = ring.recv_from(&b, Vec::with_capacity(10)).await;
        assert_eq!(r.unwrap().0, 10);
        assert_eq!(buf, pattern(300, 3)[..10]);
        // Bad input: errors naming the limit, nothing submitted.
        let (m, _) = ring.recv_msg(&b, Vec::with_capacity(10), 1000).await;
        let e = m.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("253"), "{e}");
    });
});

/// Creates a UDP socket with `Ring::socket`, binds it, and moves a datagram through it.
fn socket_through(ring: &safer_ring::Ring) {
    use std::net::SocketAddr;
    let fd = ring
        .block_on(ring.socket(libc::AF_INET, libc::SOCK_DGRAM, 0))
        .unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket2::SockRef::from(&fd).bind(&any.into()).unwrap();
    let sock = safer_ring::UdpSocket::from_owned_fd(fd);
    let peer = ring.bind_udp("127.0.0.1:0").unwrap();
    ring.block_on(async {
        ring.send_to(
            &sock,
            b"made by the ring".to_vec(),
            peer.local_addr().unwrap(),
        )
        .await
        .0
        .unwrap();
        let (r, buf) = ring.recv_from(&peer, Vec::with_capacity(32)).await;
        assert_eq!(r.unwrap().1, sock.local_addr().unwrap());
        assert_eq!(buf, b"made by the ring");
    });
    let err = ring
        .block_on(ring.socket(libc::AF_INET, libc::SOCK_DGRAM | 0x4000_0000, 0))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // Bad arguments fail as socket(2) fails them, on either path.
    let err = ring
        .block_on(ring.socket(-1, libc::SOCK_DGRAM, 0))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAFNOSUPPORT));
}

backend_test!(socket_creation, |ring| {
    socket_through(&ring);
    let s = ring.enhancement_stats(safer_ring::Feature::SocketOp);
    if ring.uses_native(safer_ring::Feature::SocketOp) {
        assert_eq!(
            (s.native, s.fallback),
            (2, 0),
            "OP_SOCKET where the kernel has it"
        );
    } else {
        assert_eq!((s.native, s.fallback), (0, 2), "socket(2) elsewhere");
    }
});

#[test]
fn socket_creation_fallback_on_io_uring() {
    for ring in support::fallback_rings(safer_ring::Feature::SocketOp) {
        socket_through(&ring);
        let s = ring.enhancement_stats(safer_ring::Feature::SocketOp);
        assert_eq!((s.native, s.fallback), (0, 2), "{:?}", ring.backend());
    }
}
