//! What a receive's dropped future may take: data that was already there when it dropped, never
//! data that arrives after. A dropped receive or accept whose cancel still waits in the SQ
//! would otherwise take what arrives next into an orphan and lose it:
//! - without DEFER_TASKRUN (kernels before 6.1, `SaferRingConfig::for_tokio()`), the kernel
//!   runs a ring's completion work when its thread returns from any system call;
//! - an op dropped before its SQE was submitted (the default `SubmitPolicy::Batch` submits at
//!   the next turn) is submitted together with its cancel, and runs first.
//!
//! Each case drops the op, then makes the data arrive with a plain std system call on the
//! ring's thread (no turn in between), then checks that a fresh op gets all of it.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use safer_ring::TcpStream;
use support::drops::{arm_and_drop, each, must_arrive};

use crate::support;

#[test]
fn tcp_bytes_sent_after_a_dropped_recv_reach_the_next_one() {
    each(|what, ring, when| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let server = TcpStream::from(l.accept().unwrap().0);
        arm_and_drop(ring, ring.recv(&server, vec![0u8; 64]), when, what);
        client.write_all(b"after the drop").unwrap();
        let (n, buf) = must_arrive(ring, what, ring.recv(&server, vec![0u8; 64]));
        assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
    });
}

#[test]
fn datagram_sent_after_a_dropped_recv_from_reaches_the_next_one() {
    each(|what, ring, when| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        arm_and_drop(ring, ring.recv_from(&sock, vec![0u8; 64]), when, what);
        peer.send_to(b"after the drop", to).unwrap();
        let (r, buf) = must_arrive(ring, what, ring.recv_from(&sock, vec![0u8; 64]));
        let (n, from) = r.unwrap();
        assert_eq!(&buf[..n], b"after the drop", "{what}");
        assert_eq!(from, peer.local_addr().unwrap(), "{what}");
    });
}

#[test]
fn pipe_bytes_written_after_a_dropped_read_reach_the_next_one() {
    each(|what, ring, when| {
        let (rx, tx) = ring.pipe().unwrap();
        let mut tx = support::soundness::dup_std(&tx);
        arm_and_drop(ring, ring.read(&rx, vec![0u8; 64]), when, what);
        tx.write_all(b"after the drop").unwrap();
        let (n, buf) = must_arrive(ring, what, ring.read(&rx, vec![0u8; 64]));
        assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
    });
}

#[test]
fn connection_made_after_a_dropped_accept_reaches_the_next_one() {
    each(|what, ring, when| {
        let l = ring.bind_tcp("127.0.0.1:0").unwrap();
        arm_and_drop(ring, ring.accept(&l), when, what);
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        client.write_all(b"hello").unwrap();
        let (s, peer) = must_arrive(ring, what, ring.accept(&l)).unwrap();
        assert_eq!(peer, client.local_addr().unwrap(), "{what}");
        let (n, buf) = must_arrive(ring, what, ring.recv(&s, vec![0u8; 8]));
        assert_eq!(&buf[..n.unwrap()], b"hello", "{what}");
        // The orphan accept did not take it and close it either.
        client.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let r = client.read(&mut b);
        assert!(
            r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "{what}: the client's connection is still open ({r:?})"
        );
        assert!(client.as_raw_fd() >= 0);
    });
}

#[test]
fn connection_made_after_a_dropped_accept_stream_reaches_the_next_one() {
    use futures_util::StreamExt;
    each(|what, ring, when| {
        let l = ring.bind_tcp("127.0.0.1:0").unwrap();
        arm_and_drop(ring, ring.accept_multiple(&l).into_future(), when, what);
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_, peer) = must_arrive(ring, what, ring.accept(&l)).unwrap();
        assert_eq!(peer, client.local_addr().unwrap(), "{what}");
    });
}
