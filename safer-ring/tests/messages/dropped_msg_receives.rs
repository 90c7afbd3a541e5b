//! Attacks on "a dropped receive never takes what arrives after the drop" for the message and
//! stream receives: recv_msg with passed fds (an fd sent after the drop must reach the next
//! receive, and no copy of it may stay anywhere), read on a Unix stream, recv_from_multiple
//! and accept_multiple streams dropped mid-way, accept_up_to, recv_enhanced, and receives
//! bounded by `.timeout(d)` or inside `ring.timeout(d, ..)` dropped before their deadline.
//! Each case drops, makes the data arrive with a plain std/libc call (no turn in between),
//! then wants all of it from a fresh receive.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use safer_ring::Feature;
use support::drops::{When, arm_and_drop, each, each_on, must_arrive, rings_with};
use support::soundness::poll_once;

use crate::support;

/// Sends `data` with `fd` passed in SCM_RIGHTS on `sock` (plain sendmsg, no ring).
fn send_with_fd(sock: &impl AsRawFd, data: &[u8], fd: &impl AsRawFd) {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE is pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(4) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: zeroed msghdr is valid; its pointers are set to live locals below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one cmsg with one int.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd.as_raw_fd());
    }
    // SAFETY: msg points to live locals.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    assert_eq!(
        n,
        data.len() as isize,
        "sendmsg: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn fds_passed_after_a_dropped_recv_msg_reach_the_next_one() {
    each(|what, ring, when| {
        let (a, b) = ring.unix_pair().unwrap();
        arm_and_drop(ring, ring.recv_msg(&b, vec![0u8; 64], 4), when, what);
        let (pr, pw) = support::fds::pipe();
        send_with_fd(&a, b"fd after the drop", &pw);
        let id = support::fds::identity(&pw);
        drop(pw);
        let (m, buf) = must_arrive(ring, what, ring.recv_msg(&b, vec![0u8; 64], 4));
        let m = m.unwrap();
        assert_eq!(&buf[..m.len], b"fd after the drop", "{what}");
        assert_eq!(m.fds.len(), 1, "{what}: {m:?}");
        assert_eq!(support::fds::identity(&m.fds[0]), id, "{what}");
        drop(m);
        // No copy of the pipe's write end is left anywhere (an orphan's, a leaked one).
        assert!(
            support::fds::writers_closed(&pr),
            "{what}: a copy of the passed fd leaked"
        );
    });
}

/// The dropped recv_msg finds the fd already there (sent before the drop, no turn since): it
/// may take it (lost with the op) but must close it, never leak it.
#[test]
fn fds_taken_by_a_dropped_recv_msg_are_closed() {
    each(|what, ring, when| {
        let (a, b) = ring.unix_pair().unwrap();
        let mut op = ring.recv_msg(&b, vec![0u8; 64], 4);
        assert!(poll_once(&mut op).is_pending(), "{what}");
        if let When::Submitted = when {
            ring.poll_completions().unwrap();
            assert!(poll_once(&mut op).is_pending(), "{what}");
        }
        let (pr, pw) = support::fds::pipe();
        send_with_fd(&a, b"fd before the drop", &pw);
        drop(pw);
        drop(op);
        // Either the next receive gets it, or the orphan took it and closed it. A marker
        // behind it means the next receive always has something to take (the fd's message,
        // or the marker if the orphan took that), so no deadline decides which case ran.
        // SAFETY: send reads the live buffer.
        let n = unsafe { libc::send(a.as_raw_fd(), b"marker".as_ptr().cast(), 6, 0) };
        assert_eq!(n, 6, "send: {}", std::io::Error::last_os_error());
        let next = ring
            .block_on(ring.timeout(Duration::from_secs(30), ring.recv_msg(&b, vec![0u8; 64], 4)));
        assert!(
            next.is_ok(),
            "{what}: neither the fd's message nor the marker came"
        );
        drop(next);
        let _ = support::soundness::drive(ring, 5);
        assert!(
            support::fds::writers_closed(&pr),
            "{what}: the passed fd leaked"
        );
    });
}

#[test]
fn datagrams_sent_after_a_dropped_recv_msg_reach_the_next_one() {
    each(|what, ring, when| {
        let sock = ring.bind_udp("127.0.0.1:0").unwrap();
        let to = sock.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        arm_and_drop(ring, ring.recv_msg(&sock, vec![0u8; 64], 0), when, what);
        peer.send_to(b"after the drop", to).unwrap();
        let (m, buf) = must_arrive(ring, what, ring.recv_msg(&sock, vec![0u8; 64], 0));
        let m = m.unwrap();
        assert_eq!(&buf[..m.len], b"after the drop", "{what}");
        assert_eq!(m.peer_addr(), Some(peer.local_addr().unwrap()), "{what}");
    });
}

#[test]
fn unix_stream_bytes_after_a_dropped_read_reach_the_next_one() {
    each(|what, ring, when| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let b = safer_ring::UnixStream::from(b);
        let mut a = a;
        arm_and_drop(ring, ring.read(&b, vec![0u8; 64]), when, what);
        a.write_all(b"after the drop").unwrap();
        let (n, buf) = must_arrive(ring, what, ring.read(&b, vec![0u8; 64]));
        assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
    });
}

#[test]
fn datagrams_after_a_recv_from_multiple_stream_dropped_midway_reach_the_next_receive() {
    each_on(
        rings_with(Some(Feature::MultiShotRecvMsg)),
        |what, ring, when| {
            let sock = ring.bind_udp("127.0.0.1:0").unwrap();
            let to = sock.local_addr().unwrap();
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut stream = ring.recv_from_multiple(&sock);
            peer.send_to(b"first", to).unwrap();
            let d = must_arrive(ring, what, stream.next()).unwrap().unwrap();
            assert_eq!(d.data, b"first", "{what}");
            arm_and_drop(ring, Box::pin(stream.next()), when, what);
            drop(stream);
            peer.send_to(b"after the drop", to).unwrap();
            let (r, buf) = must_arrive(ring, what, ring.recv_from(&sock, vec![0u8; 64]));
            let (n, _) = r.unwrap();
            assert_eq!(&buf[..n], b"after the drop", "{what}");
        },
    );
}

#[test]
fn connections_after_an_accept_stream_dropped_midway_reach_the_next_accept() {
    each_on(
        rings_with(Some(Feature::MultiShotAccept)),
        |what, ring, when| {
            let l = ring.bind_tcp("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let mut stream = ring.accept_multiple(&l);
            let _c1 = std::net::TcpStream::connect(addr).unwrap();
            let _s1 = must_arrive(ring, what, stream.next()).unwrap().unwrap();
            arm_and_drop(ring, Box::pin(stream.next()), when, what);
            drop(stream);
            let mut c2 = std::net::TcpStream::connect(addr).unwrap();
            c2.write_all(b"second").unwrap();
            let (s2, peer) = must_arrive(ring, what, ring.accept(&l)).unwrap();
            assert_eq!(peer, c2.local_addr().unwrap(), "{what}");
            let (n, buf) = must_arrive(ring, what, ring.recv(&s2, vec![0u8; 8]));
            assert_eq!(&buf[..n.unwrap()], b"second", "{what}");
        },
    );
}

#[test]
fn connections_after_a_dropped_accept_up_to_reach_the_next_accept() {
    each(|what, ring, when| {
        let l = ring.bind_tcp("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let fut = Box::pin(ring.accept_up_to(&l, 4, Duration::from_secs(30)));
        arm_and_drop(ring, fut, when, what);
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (_, peer) = must_arrive(ring, what, ring.accept(&l)).unwrap();
        assert_eq!(peer, c.local_addr().unwrap(), "{what}");
    });
}

/// recv_enhanced keeps its multishot armed on the socket after a dropped call (by design): the
/// next recv_enhanced must still get what arrived after the drop.
#[test]
fn bytes_after_a_dropped_recv_enhanced_reach_the_next_one() {
    each_on(
        rings_with(Some(Feature::MultiShotRecv)),
        |what, ring, when| {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let b = safer_ring::UnixStream::from(b);
            let mut a = a;
            // A first chunk arms the multishot where there is one.
            a.write_all(b"first").unwrap();
            let (n, buf) = must_arrive(ring, what, ring.recv_enhanced(&b, vec![0u8; 64]));
            assert_eq!(&buf[..n.unwrap()], b"first", "{what}");
            arm_and_drop(
                ring,
                Box::pin(ring.recv_enhanced(&b, vec![0u8; 64])),
                when,
                what,
            );
            a.write_all(b"after the drop").unwrap();
            let (n, buf) = must_arrive(ring, what, ring.recv_enhanced(&b, vec![0u8; 64]));
            assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
        },
    );
}

#[test]
fn bytes_after_a_dropped_recv_with_a_timeout_reach_the_next_one() {
    each(|what, ring, when| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let b = safer_ring::UnixStream::from(b);
        let mut a = a;
        let op = ring
            .recv(&b, vec![0u8; 64])
            .timeout(Duration::from_secs(30));
        arm_and_drop(ring, op, when, what);
        a.write_all(b"after the drop").unwrap();
        let (n, buf) = must_arrive(ring, what, ring.recv(&b, vec![0u8; 64]));
        assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
    });
}

#[test]
fn bytes_after_a_dropped_ring_timeout_around_a_recv_reach_the_next_one() {
    each(|what, ring, when| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let b = safer_ring::UnixStream::from(b);
        let mut a = a;
        let fut = Box::pin(ring.timeout(Duration::from_secs(30), ring.recv(&b, vec![0u8; 64])));
        arm_and_drop(ring, fut, when, what);
        a.write_all(b"after the drop").unwrap();
        let (n, buf) = must_arrive(ring, what, ring.recv(&b, vec![0u8; 64]));
        assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
    });
}

/// The same, where the data arrives while the ring waits: `ring.timeout` fires first and
/// drops the recv; the data is sent right after by another thread, and must not be lost.
#[test]
fn bytes_after_a_ring_timeout_fired_reach_the_next_recv() {
    each(|what, ring, _when| {
        for round in 0..20 {
            let what = format!("{what}, round {round}");
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let b = safer_ring::UnixStream::from(b);
            let mut a = a;
            let r =
                ring.block_on(ring.timeout(Duration::from_millis(2), ring.recv(&b, vec![0u8; 64])));
            assert!(r.is_err(), "{what}: nothing was sent yet");
            a.write_all(b"after the timeout").unwrap();
            let (n, buf) = must_arrive(ring, &what, ring.recv(&b, vec![0u8; 64]));
            assert_eq!(&buf[..n.unwrap()], b"after the timeout", "{what}");
        }
    });
}

/// After a dropped recv_enhanced its multishot stays armed on the socket (by design, see
/// `recv_enhanced`'s docs), so a plain `recv` that follows may find nothing: the bytes sent
/// after the drop went to the ring's buffers. They must still not be lost: the next
/// recv_enhanced hands them out.
#[test]
fn bytes_after_a_dropped_recv_enhanced_are_never_lost_to_a_plain_recv() {
    each_on(
        rings_with(Some(Feature::MultiShotRecv)),
        |what, ring, when| {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let b = safer_ring::UnixStream::from(b);
            let mut a = a;
            a.write_all(b"first").unwrap();
            let (n, buf) = must_arrive(ring, what, ring.recv_enhanced(&b, vec![0u8; 64]));
            assert_eq!(&buf[..n.unwrap()], b"first", "{what}");
            arm_and_drop(
                ring,
                Box::pin(ring.recv_enhanced(&b, vec![0u8; 64])),
                when,
                what,
            );
            a.write_all(b"after the drop").unwrap();
            let plain = ring
                .block_on(ring.timeout(Duration::from_millis(200), ring.recv(&b, vec![0u8; 64])));
            let got = match plain {
                Ok((n, buf)) => buf[..n.unwrap()].to_vec(),
                Err(_) => {
                    let (n, buf) = must_arrive(ring, what, ring.recv_enhanced(&b, vec![0u8; 64]));
                    buf[..n.unwrap()].to_vec()
                }
            };
            assert_eq!(got, b"after the drop", "{what}");
        },
    );
}
