//! Multishot UDP receive (`recv_from_multiple`) and UDP GSO/GRO over real loopback sockets, on
//! three rings each: io_uring (multishot recvmsg where the kernel has it), io_uring with
//! `MultiShotRecvMsg` forced off (the recvmsg loop on io_uring), and epoll.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_core::Stream;

use safer_ring::ops::MsgOut;
use safer_ring::{DATAGRAM_ROOM, Feature, Ring};

// The kernel matrix selects these tests by their module name (`-- udp_multi`).

/// Whether `ring` promises the native path for the stream.
fn native(ring: &Ring) -> bool {
    ring.uses_native(Feature::MultiShotRecvMsg) && ring.uses_native(Feature::BufferRings)
}

/// Datagram `i`'s bytes: its length and content both depend on `i`.
fn payload(i: usize) -> Vec<u8> {
    (0..20 + i % 50).map(|k| (i * 7 + k) as u8).collect()
}

fn sender() -> StdUdp {
    StdUdp::bind("127.0.0.1:0").unwrap()
}

// 140 datagrams from two senders, all queued before the stream is first polled: more than the
// ring's 64 provided buffers, so natively the multishot ends with ENOBUFS and is re-armed.
three_rings_test!(
    burst_arrives_whole_in_order,
    Feature::MultiShotRecvMsg,
    |ring| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let (a, b) = (sender(), sender());
        const N: usize = 140;
        let mut want = Vec::new();
        for i in 0..N {
            let s = if i % 3 == 0 { &b } else { &a };
            s.send_to(&payload(i), to).unwrap();
            want.push((payload(i), s.local_addr().unwrap()));
        }
        let got: Vec<(Vec<u8>, SocketAddr)> = ring.block_on(async {
            let mut stream = ring.recv_from_multiple(&sock);
            let mut got = Vec::new();
            while got.len() < N {
                let d = stream
                    .next()
                    .await
                    .expect("the stream does not end")
                    .unwrap();
                assert!(!d.truncated);
                got.push((d.data, d.from));
            }
            assert_eq!(stream.is_native(), native(&ring));
            got
        });
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "datagram {i}");
        }
        let s = ring.enhancement_stats(Feature::MultiShotRecvMsg);
        if native(&ring) {
            assert_eq!((s.native, s.fallback), (N as u64, 0), "{s:?}");
        } else {
            assert_eq!((s.native, s.fallback), (0, N as u64), "{s:?}");
        }
    }
);

// Datagrams arriving while the stream waits (the multishot armed on an empty socket).
three_rings_test!(
    waits_for_datagrams_sent_later,
    Feature::MultiShotRecvMsg,
    |ring| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = sender();
        let from = peer.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            for i in 0..10 {
                std::thread::sleep(Duration::from_millis(5));
                peer.send_to(&payload(i), to).unwrap();
            }
        });
        ring.block_on(async {
            let mut stream = ring.recv_from_multiple(&sock);
            for i in 0..10 {
                let d = stream.next().await.unwrap().unwrap();
                assert_eq!((d.data, d.from), (payload(i), from), "datagram {i}");
            }
        });
        t.join().unwrap();
    }
);

// The stream armed (its multishot submitted) on an empty socket, then a burst of 140 sent while
// nobody reads: natively the kernel fills all 64 provided buffers, ends the multishot with
// ENOBUFS, and the stream re-arms once it has handed those out.
three_rings_test!(
    burst_into_an_armed_stream_rearms,
    Feature::MultiShotRecvMsg,
    |ring| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = sender();
        let from = peer.local_addr().unwrap();
        const N: usize = 140;
        let mut stream = ring.recv_from_multiple(&sock);
        ring.block_on(async {
            let first = std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut stream).poll_next(cx).is_pending())
            })
            .await;
            assert!(first, "nothing was sent yet");
            ring.sleep(Duration::from_millis(20)).await.unwrap(); // the ring submits the multishot
        });
        for i in 0..N {
            peer.send_to(&payload(i), to).unwrap();
        }
        ring.block_on(async {
            for i in 0..N {
                let d = stream.next().await.unwrap().unwrap();
                assert_eq!((d.data, d.from), (payload(i), from), "datagram {i}");
            }
        });
        let s = ring.enhancement_stats(Feature::MultiShotRecvMsg);
        if native(&ring) {
            assert_eq!((s.native, s.fallback), (N as u64, 0), "{s:?}");
        } else {
            assert_eq!((s.native, s.fallback), (0, N as u64), "{s:?}");
        }
    }
);

// A datagram longer than the room is cut and flagged the same way on every path; the next one
// is whole.
three_rings_test!(
    long_datagram_is_reported_truncated,
    Feature::MultiShotRecvMsg,
    |ring| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = sender();
        let long: Vec<u8> = (0..DATAGRAM_ROOM + 300).map(|k| (k % 251) as u8).collect();
        peer.send_to(&long, to).unwrap();
        peer.send_to(b"after", to).unwrap();
        ring.block_on(async {
            let mut stream = ring.recv_from_multiple(&sock);
            let d = stream.next().await.unwrap().unwrap();
            assert!(d.truncated);
            assert_eq!(d.data.len(), DATAGRAM_ROOM);
            assert_eq!(d.data, long[..DATAGRAM_ROOM]);
            let d = stream.next().await.unwrap().unwrap();
            assert_eq!((&d.data[..], d.truncated), (&b"after"[..], false));
        });
    }
);

// The stream dropped mid-burst, then the ring: nothing hangs, the socket's fd stays open and
// keeps working (the op's slot held its own clone until the kernel was done).
three_rings_test!(
    dropped_mid_burst_then_ring_dropped,
    Feature::MultiShotRecvMsg,
    |ring| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = sender();
        for i in 0..100 {
            peer.send_to(&payload(i), to).unwrap();
        }
        ring.block_on(async {
            let mut stream = ring.recv_from_multiple(&sock);
            for i in 0..10 {
                assert_eq!(stream.next().await.unwrap().unwrap().data, payload(i));
            }
        });
        // A turn submits the cancel (the marker must not go to the cancelled multishot).
        ring.block_on(ring.sleep(Duration::from_millis(10)))
            .unwrap();
        // The socket still receives on this ring: what is left of the burst comes in order (the
        // datagrams the dropped multishot had taken are gone), then the marker.
        peer.send_to(b"marker", to).unwrap();
        ring.block_on(async {
            let mut last = 9;
            loop {
                let (r, buf) = ring.recv_from(&sock, Vec::with_capacity(256)).await;
                r.unwrap();
                if buf == b"marker" {
                    break;
                }
                let i = (last + 1..100)
                    .find(|&i| payload(i) == buf)
                    .expect("a datagram of the burst, in order");
                last = i;
            }
        });
        let mut stream_again = ring.recv_from_multiple(&sock);
        peer.send_to(b"armed again", to).unwrap();
        let d = ring.block_on(stream_again.next()).unwrap().unwrap();
        assert_eq!(d.data, b"armed again");
        drop(stream_again);
        drop(ring); // cancels and drains what the dropped stream left armed
        // The fd is ours and open: std reads from it after the ring is gone.
        let fd = std::os::fd::AsFd::as_fd(&sock)
            .try_clone_to_owned()
            .unwrap();
        let std_sock = StdUdp::from(fd);
        std_sock.set_nonblocking(false).unwrap();
        std_sock
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        peer.send_to(b"after the ring", to).unwrap();
        let mut buf = [0u8; 64];
        // Anything the cancelled multishot did not take may still be queued first.
        loop {
            let n = std_sock.recv(&mut buf).unwrap();
            if &buf[..n] == b"after the ring" {
                break;
            }
        }
    }
);

// recv_enhanced on a socket a stream's multishot recvmsg is armed on is refused (its
// buffers hold datagrams with headers), not handed header bytes as data; after the stream
// is dropped it receives normally.
three_rings_test!(
    recv_enhanced_refuses_a_streamed_socket,
    Feature::MultiShotRecvMsg,
    |ring| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = sender();
        let mut stream = ring.recv_from_multiple(&sock);
        peer.send_to(b"one", to).unwrap();
        let d = ring.block_on(stream.next()).unwrap().unwrap();
        assert_eq!(d.data, b"one");
        if stream.is_native() {
            let (r, _) = ring.block_on(ring.recv_enhanced(&sock, Vec::with_capacity(64)));
            let e = r.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ResourceBusy, "{e}");
            assert!(e.to_string().contains("recv_from_multiple"), "{e}");
        }
        drop(stream);
        // A turn submits the cancel: "two" must not go to the cancelled multishot.
        ring.block_on(ring.sleep(Duration::from_millis(10)))
            .unwrap();
        peer.send_to(b"two", to).unwrap();
        let (r, buf) = ring.block_on(ring.recv_enhanced(&sock, Vec::with_capacity(64)));
        r.unwrap();
        assert_eq!(buf, b"two");
    }
);

// A socket of another family is refused before anything is received.
three_rings_test!(refuses_a_non_ip_socket, Feature::MultiShotRecvMsg, |ring| {
    let (a, _b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let sock = safer_ring::UdpSocket::from_owned_fd(a.into());
    let err = ring
        .block_on(ring.recv_from_multiple(&sock).next())
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("UdpSocket"), "{err}");
});

/// 10 000 bytes, no two consecutive segments alike.
fn gso_payload() -> Vec<u8> {
    (0..10_000u32).map(|k| (k * 13 / 7 % 253) as u8).collect()
}

// One GSO send of 10 000 bytes in segments of 1000 arrives as 10 datagrams on a plain receiver.
three_rings_test!(
    gso_send_arrives_as_ten_datagrams,
    Feature::MultiShotRecvMsg,
    |ring| {
        let a = ring.bind_udp("127.0.0.1:0").unwrap();
        let b = ring.bind_udp("127.0.0.1:0").unwrap();
        let data = gso_payload();
        ring.block_on(async {
            let msg = MsgOut::new().to(b.local_addr().unwrap()).segment_size(1000);
            let (n, _) = ring.send_msg(&a, data.clone(), msg).await;
            assert_eq!(n.unwrap(), 10_000);
            for i in 0..10 {
                let (r, buf) = ring.recv_from(&b, Vec::with_capacity(4096)).await;
                let (n, from) = r.unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                assert_eq!(
                    (n, &buf[..]),
                    (1000, &data[i * 1000..(i + 1) * 1000]),
                    "segment {i}"
                );
            }
        });
    }
);

// With GRO on, the receiver may get the segments coalesced (segment size 1000 reported) or
// one by one (loopback does not promise to coalesce): either way the bytes are exact.
three_rings_test!(
    gro_reports_the_segment_size,
    Feature::MultiShotRecvMsg,
    |ring| {
        let a = ring.bind_udp("127.0.0.1:0").unwrap();
        let b = ring.bind_udp("127.0.0.1:0").unwrap();
        assert!(!b.gro().unwrap());
        b.set_gro(true).unwrap();
        assert!(b.gro().unwrap());
        let data = gso_payload();
        ring.block_on(async {
            let msg = MsgOut::new().to(b.local_addr().unwrap()).segment_size(1000);
            assert_eq!(
                ring.send_msg(&a, data.clone(), msg).await.0.unwrap(),
                10_000
            );
            let mut got = Vec::new();
            while got.len() < data.len() {
                let (m, buf) = ring.recv_msg(&b, Vec::with_capacity(65_536), 0).await;
                let m = m.unwrap();
                assert!(!m.truncated && !m.control_truncated);
                assert_eq!(m.peer_addr(), Some(a.local_addr().unwrap()));
                match m.segment_size() {
                    Some(seg) => {
                        assert_eq!(seg, 1000);
                        assert_eq!(m.len % 1000, 0, "coalesced whole segments: {}", m.len);
                    }
                    None => assert_eq!(m.len, 1000),
                }
                got.extend_from_slice(&buf);
            }
            assert_eq!(got, data);
        });
    }
);

// Bad GSO input: a clear error naming the value, and nothing sent.
three_rings_test!(gso_refuses_bad_sizes, Feature::MultiShotRecvMsg, |ring| {
    let a = ring.bind_udp("127.0.0.1:0").unwrap();
    let b = ring.bind_udp("127.0.0.1:0").unwrap();
    let to = b.local_addr().unwrap();
    ring.block_on(async {
        for (len, seg, words) in [
            (1000, 0u16, "segment size 0"),
            (1000, 1001, "1001 is larger than the 1000-byte buffer"),
            (70_000, 1000, "70000 bytes in one UDP GSO send"),
        ] {
            let msg = MsgOut::new().to(to).segment_size(seg);
            let (n, buf) = ring.send_msg(&a, vec![0u8; len], msg).await;
            let e = n.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains(words), "{e}");
            assert_eq!(buf.len(), len, "the buffer comes back");
        }
        // Nothing was sent: the next datagram is the first.
        ring.send_to(&a, b"first".to_vec(), to).await.0.unwrap();
        let (r, buf) = ring.recv_from(&b, Vec::with_capacity(64)).await;
        r.unwrap();
        assert_eq!(buf, b"first");
    });
});
