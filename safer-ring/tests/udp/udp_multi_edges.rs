//! Attacks on multishot UDP receive (`recv_from_multiple`): datagrams the paths could tell
//! apart wrongly (empty ones, exactly the room, one byte more), IPv6 and IPv4-mapped senders,
//! two streams on one socket from two rings, a stream dropped and re-made on the same socket.
//! Each runs on io_uring (native where the kernel has it), io_uring with `MultiShotRecvMsg`
//! off, and epoll; all must give the same datagrams.

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::time::Duration;

use safer_ring::{BackendKind, DATAGRAM_ROOM, Feature, Ring, SaferRingConfig};

use crate::support;

/// The three rings (those this kernel can run).
fn rings() -> Vec<(&'static str, Ring)> {
    let mut out = Vec::new();
    if let Some(r) = support::ring(BackendKind::IoUring) {
        out.push(("io_uring", r));
    }
    let off = support::uring_wishing(Feature::MultiShotRecvMsg, Some(false)).entries(64);
    if let Some(r) = support::ring_with(off) {
        out.push(("io_uring-off", r));
    }
    let plain = SaferRingConfig::for_tokio()
        .backend(BackendKind::IoUring)
        .entries(64);
    if let Some(r) = support::ring_with(plain) {
        out.push(("io_uring-no-defer", r));
    }
    out.push(("epoll", support::ring(BackendKind::Epoll).unwrap()));
    out
}

/// Receives `n` datagrams (all sent already: the bound only ends a lost one) from a fresh
/// stream on `sock`; (data length, first byte, sender, truncated) each.
fn take(ring: &Ring, sock: &safer_ring::UdpSocket, n: usize) -> Vec<(usize, u8, SocketAddr, bool)> {
    ring.block_on(async {
        let mut stream = ring.recv_from_multiple(sock);
        let mut got = Vec::new();
        while got.len() < n {
            let d = ring
                .timeout(Duration::from_secs(30), stream.next())
                .await
                .unwrap_or_else(|_| panic!("a datagram within 30 s ({} so far)", got.len()))
                .expect("the stream does not end")
                .unwrap();
            got.push((
                d.data.len(),
                d.data.first().copied().unwrap_or(0),
                d.from,
                d.truncated,
            ));
        }
        got
    })
}

// Empty datagrams are datagrams: each yields an empty `data`, in order among the others, on
// every path (a zero-length payload must not read as "no datagram" or end of stream).
#[test]
fn empty_datagrams_are_yielded() {
    let mut results = Vec::new();
    for (name, ring) in rings() {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = StdUdp::bind("127.0.0.1:0").unwrap();
        let sizes = [0usize, 5, 0, 0, 1, 0];
        for (i, &n) in sizes.iter().enumerate() {
            peer.send_to(&vec![i as u8 + 1; n], to).unwrap();
        }
        let got = take(&ring, &sock, sizes.len());
        let from = peer.local_addr().unwrap();
        let want: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, if n == 0 { 0 } else { i as u8 + 1 }, from, false))
            .collect();
        assert_eq!(got, want, "{name}");
        results.push(got.iter().map(|g| (g.0, g.1, g.3)).collect::<Vec<_>>());
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
}

// Sizes at the room's edge: exactly DATAGRAM_ROOM arrives whole, one byte more is cut to it
// and flagged, on every path.
#[test]
fn room_edges_same_on_every_path() {
    for (name, ring) in rings() {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = StdUdp::bind("127.0.0.1:0").unwrap();
        let from = peer.local_addr().unwrap();
        for n in [DATAGRAM_ROOM - 1, DATAGRAM_ROOM, DATAGRAM_ROOM + 1, 65_507] {
            peer.send_to(&vec![7u8; n], to).unwrap();
        }
        let got = take(&ring, &sock, 4);
        let want = vec![
            (DATAGRAM_ROOM - 1, 7, from, false),
            (DATAGRAM_ROOM, 7, from, false),
            (DATAGRAM_ROOM, 7, from, true),
            (DATAGRAM_ROOM, 7, from, true),
        ];
        assert_eq!(got, want, "{name}");
    }
}

// IPv6: the sender's address (with its port) from a v6 socket, and from an IPv4 sender on a
// dual-stack socket (an IPv4-mapped address), the same on every path.
#[test]
fn ipv6_and_mapped_senders() {
    let mut seen = Vec::new();
    for (name, ring) in rings() {
        let Ok(sock) = ring.bind_udp("[::1]:0") else {
            support::skip("no IPv6 loopback");
            return;
        };
        let to = sock.local_addr().unwrap();
        let peer = StdUdp::bind("[::1]:0").unwrap();
        peer.send_to(b"six", to).unwrap();
        let got = take(&ring, &sock, 1);
        assert_eq!(
            got,
            vec![(3, b's', peer.local_addr().unwrap(), false)],
            "{name}"
        );
        // Dual stack: [::] takes IPv4 too (unless the system sets bindv6only, where nothing
        // would come: skipped rather than waited for).
        let v6only =
            std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "1");
        let dual = ring.bind_udp("[::]:0").unwrap();
        let port = dual.local_addr().unwrap().port();
        let v4 = StdUdp::bind("127.0.0.1:0").unwrap();
        if !v6only && v4.send_to(b"four", ("127.0.0.1", port)).is_ok() {
            let got = ring.block_on(async {
                let mut s = ring.recv_from_multiple(&dual);
                ring.timeout(Duration::from_secs(30), s.next()).await
            });
            if let Ok(Some(d)) = got {
                let d = d.unwrap();
                assert_eq!(&d.data[..], b"four", "{name}");
                seen.push(d.from.ip().to_string());
                assert_eq!(d.from.port(), v4.local_addr().unwrap().port(), "{name}");
            }
        }
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

// A stream dropped while armed, then a new one on the same socket: no datagram is lost
// between them beyond what the first had already taken (here: none, as none was sent before
// the drop), and a stream on a second ring for the same socket while the first ring's stream
// is armed gets every datagram the first does not.
#[test]
fn streams_replaced_and_shared_across_rings() {
    for (name, ring) in rings() {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = StdUdp::bind("127.0.0.1:0").unwrap();
        // Armed on an empty socket, then dropped.
        ring.block_on(async {
            let mut s = ring.recv_from_multiple(&sock);
            let r = ring.timeout(Duration::from_millis(20), s.next()).await;
            assert!(r.is_err(), "{name}: nothing was sent");
        });
        for i in 0..10u8 {
            peer.send_to(&[i; 3], to).unwrap();
        }
        // (Without DEFER_TASKRUN these sends run the kernel's completion work for the ring:
        // the dropped stream's cancel must be in by then, or its recvmsg takes one.)
        let got = take(&ring, &sock, 10);
        let firsts: Vec<u8> = got.iter().map(|g| g.1).collect();
        assert_eq!(
            firsts,
            (0..10).collect::<Vec<_>>(),
            "{name}: after a re-made stream"
        );
    }
    // The same socket read by streams of two io_uring rings at once: together they see each
    // datagram exactly once.
    let (Some(a), Some(b)) = (
        support::ring(BackendKind::IoUring),
        support::ring(BackendKind::IoUring),
    ) else {
        return;
    };
    let sock = a.bind_udp("127.0.0.1:0").unwrap();
    let to = sock.local_addr().unwrap();
    let peer = StdUdp::bind("127.0.0.1:0").unwrap();
    let mut sa = a.recv_from_multiple(&sock);
    let mut sb = b.recv_from_multiple(&sock);
    let mut seen = Vec::new();
    for i in 0..20u8 {
        peer.send_to(&[i; 2], to).unwrap();
        // Alternate: whichever stream has it.
        let d = if i % 2 == 0 {
            a.block_on(a.timeout(Duration::from_millis(200), sa.next()))
        } else {
            b.block_on(b.timeout(Duration::from_millis(200), sb.next()))
        };
        if let Ok(Some(d)) = d {
            seen.push(d.unwrap().data[0]);
        }
    }
    // Drain whatever is left on either, until all 20 came (a duplicate shows in the count)
    // or for a long while: an idle round proves nothing on a slow machine.
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 20 && std::time::Instant::now() < end {
        for (r, s) in [(&a, &mut sa), (&b, &mut sb)] {
            if let Ok(Some(d)) = r.block_on(r.timeout(Duration::from_millis(20), s.next())) {
                seen.push(d.unwrap().data[0]);
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..20).collect::<Vec<_>>(),
        "each datagram exactly once"
    );
}

// Ten datagrams queued; a stream takes one and is dropped; a new stream then gets the rest.
// The stream's documentation says natively the datagrams its multishot already placed in the
// ring's buffers are dropped with it, while the other paths leave them in the socket.
#[test]
#[ignore = "DEFECT (documented design): natively a dropped recv_from_multiple stream discards the datagrams its multishot already took; the other paths keep them queued"]
fn dropped_stream_keeps_unread_datagrams() {
    let mut report = Vec::new();
    for (name, ring) in rings() {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = StdUdp::bind("127.0.0.1:0").unwrap();
        for i in 0..10u8 {
            peer.send_to(&[i; 4], to).unwrap();
        }
        let first = take(&ring, &sock, 1);
        let rest = ring.block_on(async {
            let mut s = ring.recv_from_multiple(&sock);
            let mut n = 0;
            while let Ok(Some(_)) = ring.timeout(Duration::from_millis(100), s.next()).await {
                n += 1;
            }
            n
        });
        report.push(format!("{name}: {} then {rest}", first.len()));
    }
    eprintln!("{report:#?}");
    for r in &report {
        assert!(r.ends_with("1 then 9"), "{report:#?}");
    }
}
