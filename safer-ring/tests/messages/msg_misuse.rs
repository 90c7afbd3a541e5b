//! Attacks on sendmsg/recvmsg and fd passing through the public API, on both backends:
//! receives dropped mid-flight with their memory reused, fds arriving for a dropped op, control
//! truncation with many fds, sends with fds dropped mid-flight, edge-sized and bad input.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use safer_ring::ops::MsgOut;
use safer_ring::{BackendKind, Feature, Ring, UnixDatagram};
use support::fds::{identity, outcome, pipe, raise_nofile, writers_closed};
use support::soundness::{FreshOnDrop, SIZE, drive, poll_once, scribbled, take_fresh};

use crate::support;

/// Every fd a receive handed out refers to `want` (the pipe's write end), never to another file.
fn all_are(fds: &[OwnedFd], want: (u64, u64)) {
    for fd in fds {
        assert_eq!(identity(fd), want, "a received fd names another file");
    }
}

/// What is left in `b`: one datagram's fds (none if empty). Whether one is queued is asked
/// first (a non-blocking peek), so the receive's bound never decides it: it only ends the
/// wait if a dropped op still in flight takes the datagram meanwhile.
fn leftover_fds(ring: &Ring, b: &UnixDatagram) -> Vec<OwnedFd> {
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    // SAFETY: a zero-length peek: recv writes no buffer.
    let queued = unsafe { libc::recv(b.as_raw_fd(), std::ptr::null_mut(), 0, flags) } >= 0;
    if !queued {
        return Vec::new();
    }
    let mut op = ring.recv_msg(b, Vec::with_capacity(SIZE), 253);
    match support::soundness::run_for(ring, &mut op, Duration::from_secs(30)) {
        Some((r, _)) => r.expect("leftover datagram").fds,
        None => Vec::new(),
    }
}

// A recv_msg dropped while waiting: its buffer, header, address and control memory stay with
// the ring; the datagram then sent (SIZE bytes of 0xAB plus an fd) must never land in the
// fresh allocations that reuse freed chunks, and the passed fd is either still queued or
// closed with the orphan: in the end no copy of it is left anywhere.
backend_test!(recv_msg_dropped_then_reused, |ring| {
    let (a, b) = ring.unix_datagram_pair().unwrap();
    let (pr, pw) = pipe();
    let pipe_id = identity(&pw);
    {
        let _fresh = FreshOnDrop; // allocates right after the op's memory would be freed
        let mut op = ring.recv_msg(&b, Vec::with_capacity(SIZE), 4);
        assert!(poll_once(&mut op).is_pending());
    }
    let fresh = take_fresh().unwrap();
    // Sent from a second ring: the victim ring is not driven until the drive below.
    let other = support::ring(ring.backend()).unwrap();
    let a2 =
        UnixDatagram::from_owned_fd(std::os::fd::AsFd::as_fd(&a).try_clone_to_owned().unwrap());
    let (n, _) = other.block_on(other.send_msg(&a2, vec![0xAB; SIZE], MsgOut::new().fd(pw)));
    assert_eq!(n.unwrap(), SIZE);
    let _ = drive(&ring, 20);
    assert_eq!(
        scribbled(&fresh),
        0,
        "the kernel wrote into freed recvmsg memory"
    );
    let fds = leftover_fds(&ring, &b);
    all_are(&fds, pipe_id);
    drop(fds);
    drop((a, a2));
    assert!(
        writers_closed(&pr),
        "a passed fd leaked (kept open somewhere)"
    );
});

// The datagram with fds arrives (on io_uring: queued as task work) before the op is dropped:
// whatever wins — the cancel or the receive — the fds end closed or still queued, never lost.
backend_test!(fds_arrive_for_dropped_op, |ring| {
    for round in 0..20 {
        let (a, b) = ring.unix_datagram_pair().unwrap();
        let (pr, pw) = pipe();
        let pipe_id = identity(&pw);
        let mut op = ring.recv_msg(&b, Vec::with_capacity(64), 8);
        assert!(poll_once(&mut op).is_pending());
        let other = support::ring(ring.backend()).unwrap();
        let a2 =
            UnixDatagram::from_owned_fd(std::os::fd::AsFd::as_fd(&a).try_clone_to_owned().unwrap());
        let msg = MsgOut::new()
            .fd(pw.try_clone().unwrap())
            .fd(pw.try_clone().unwrap());
        drop(pw);
        let (n, _) = other.block_on(other.send_msg(&a2, b"fd".to_vec(), msg));
        assert_eq!(n.unwrap(), 2);
        if round % 2 == 1 {
            let _ = ring.poll_completions();
        }
        drop(op);
        let _ = drive(&ring, 2);
        let fds = leftover_fds(&ring, &b);
        all_are(&fds, pipe_id);
        drop(fds);
        drop((a, a2, b));
        let _ = drive(&ring, 1);
        assert!(writers_closed(&pr), "round {round}: a passed fd leaked");
    }
});

// 253 fds (SCM_MAX_FD) into room for 1: MSG_CTRUNC is reported, the ones that fit are ours and
// the kernel closes the rest. Room for 253 gets all of them. 254 is refused with a clear error
// and those fds are closed.
backend_test!(ctrunc_and_scm_max_fd, |ring| {
    raise_nofile();
    let (a, b) = ring.unix_datagram_pair().unwrap();
    let (pr, pw) = pipe();
    let id = identity(&pw);
    let many = |n: usize| (0..n).fold(MsgOut::new(), |m, _| m.fd(pw.try_clone().unwrap()));
    ring.block_on(async {
        let (n, _) = ring.send_msg(&a, b"x".to_vec(), many(253)).await;
        assert_eq!(n.unwrap(), 1);
        let (m, _) = ring.recv_msg(&b, Vec::with_capacity(8), 1).await;
        let m = m.unwrap();
        assert!(m.control_truncated, "253 fds into room for 1: MSG_CTRUNC");
        // CMSG_SPACE rounds the room up to 8 bytes: two 4-byte fds fit where one was asked.
        assert!(
            (1..=2).contains(&m.fds.len()),
            "{} fds in room for 1",
            m.fds.len()
        );
        all_are(&m.fds, id);

        let (n, _) = ring.send_msg(&a, b"y".to_vec(), many(253)).await;
        assert_eq!(n.unwrap(), 1);
        let (m, _) = ring.recv_msg(&b, Vec::with_capacity(8), 253).await;
        let m = m.unwrap();
        assert!(!m.control_truncated);
        assert_eq!(m.fds.len(), 253);
        all_are(&m.fds, id);

        let (n, buf) = ring.send_msg(&a, b"z".to_vec(), many(254)).await;
        let e = n.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("254"), "{e}");
        assert_eq!(buf, b"z");

        let (m, _) = ring.recv_msg(&b, Vec::with_capacity(8), 254).await;
        let e = m.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("254"), "{e}");
    });
    drop(pw);
    assert!(writers_closed(&pr), "a passed fd leaked");
});

// A send_msg with an fd, blocked on a full socket, dropped: the fd must stay open while the
// kernel may still take it (fds opened meanwhile must not be sent in its place), and in the
// end be closed everywhere.
backend_test!(send_msg_with_fd_dropped_mid_flight, |ring| {
    let (a_std, b_std) = std::os::unix::net::UnixDatagram::pair().unwrap();
    a_std.set_nonblocking(true).unwrap();
    let mut queued = 0;
    while a_std.send(&[1u8; 512]).is_ok() {
        queued += 1;
    }
    assert!(queued > 0);
    let a = UnixDatagram::from(a_std);
    let (pr, pw) = pipe();
    let id = identity(&pw);
    let mut op = ring.send_msg(&a, vec![2u8; 512], MsgOut::new().fd(pw));
    assert!(
        poll_once(&mut op).is_pending(),
        "the socket's queue is full"
    );
    drop(op);
    // Take any fd number that was freed.
    let decoys: Vec<std::fs::File> = (0..32)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    // Room in the queue: the orphan, if not cancelled yet, sends now.
    b_std.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    for _ in 0..50 {
        let _ = drive(&ring, 1);
        let mut buf = [0u8; 512];
        let mut ancillary = [0u8; 64];
        loop {
            let r = recv_with_fds(&b_std, &mut buf, &mut ancillary);
            match r {
                Some(fds) => got.extend(fds),
                None => break,
            }
        }
    }
    all_are(&got, id);
    drop(got);
    drop(decoys);
    drop(a);
    let _ = drive(&ring, 1);
    assert!(writers_closed(&pr), "the passed fd leaked");
});

/// One recvmsg (non-blocking) on a std socket: the fds passed with it, `None` when empty.
fn recv_with_fds(
    s: &std::os::unix::net::UnixDatagram,
    buf: &mut [u8],
    control: &mut [u8],
) -> Option<Vec<OwnedFd>> {
    use std::os::fd::FromRawFd;
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data.
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    h.msg_control = control.as_mut_ptr().cast();
    h.msg_controllen = control.len() as _;
    // SAFETY: every pointer in `h` is a live local buffer of the stated length.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut h, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return None;
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel wrote `msg_controllen` bytes of cmsgs into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&h);
        while !c.is_null() {
            if (*c).cmsg_type == libc::SCM_RIGHTS {
                let k = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let d = libc::CMSG_DATA(c).cast::<libc::c_int>();
                for i in 0..k {
                    fds.push(OwnedFd::from_raw_fd(d.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&h, c);
        }
    }
    Some(fds)
}

/// Zero-length datagrams, empty buffers, fds with no bytes, bad destinations: the outcomes
/// on `ring`, reduced to comparable strings.
fn edge_outcomes(ring: &Ring) -> Vec<String> {
    let mut out = Vec::new();
    let u1 = ring.bind_udp("127.0.0.1:0").unwrap();
    let u2 = ring.bind_udp("127.0.0.1:0").unwrap();
    let (d1, d2) = ring.unix_datagram_pair().unwrap();
    let (s1, s2) = ring.unix_pair().unwrap();
    let (pr, pw) = pipe();
    ring.block_on(async {
        // Zero-length UDP datagram, received into a zero-capacity and a real buffer.
        let (n, _) = ring
            .send_to(&u1, Vec::new(), u2.local_addr().unwrap())
            .await;
        out.push(format!("udp send empty: {}", outcome(&n)));
        let (r, buf) = ring.recv_from(&u2, Vec::with_capacity(16)).await;
        let from_ok = r.as_ref().map(|(_, a)| *a == u1.local_addr().unwrap()).ok();
        out.push(format!(
            "udp recv empty: {} {buf:?} from sender: {from_ok:?}",
            outcome(&r.map(|x| x.0))
        ));
        let (n, _) = ring
            .send_to(&u1, b"12345".to_vec(), u2.local_addr().unwrap())
            .await;
        out.push(format!("udp send 5: {}", outcome(&n)));
        let (r, buf) = ring.recv_from(&u2, Vec::new()).await;
        out.push(format!(
            "udp recv into 0: {} {buf:?}",
            outcome(&r.map(|x| x.0))
        ));

        // Unix datagram: empty, into nothing (truncated), an fd with no bytes.
        let (n, _) = ring.send_msg(&d1, Vec::new(), MsgOut::new()).await;
        out.push(format!("unix dgram send empty: {}", outcome(&n)));
        let (m, _) = ring.recv_msg(&d2, Vec::new(), 0).await;
        out.push(format!(
            "unix dgram recv empty: {}",
            outcome(&m.map(|m| (m.len, m.truncated, m.control_truncated)))
        ));
        let (n, _) = ring.send_msg(&d1, b"abc".to_vec(), MsgOut::new()).await;
        out.push(format!("unix dgram send 3: {}", outcome(&n)));
        let (m, _) = ring.recv_msg(&d2, Vec::new(), 0).await;
        out.push(format!(
            "unix dgram recv into 0: {}",
            outcome(&m.map(|m| (m.len, m.truncated, m.control_truncated)))
        ));
        let (n, _) = ring
            .send_msg(&d1, Vec::new(), MsgOut::new().fd(pw.try_clone().unwrap()))
            .await;
        out.push(format!("unix dgram send fd, no bytes: {}", outcome(&n)));
        let (m, _) = ring.recv_msg(&d2, Vec::with_capacity(4), 2).await;
        out.push(format!(
            "unix dgram recv fd, no bytes: {}",
            outcome(&m.map(|m| (m.len, m.fds.len())))
        ));
        // An fd over a stream socket with no bytes: sendmsg sends nothing (fd closed by us).
        let (n, _) = ring
            .send_msg(&s1, Vec::new(), MsgOut::new().fd(pw.try_clone().unwrap()))
            .await;
        out.push(format!("unix stream send fd, no bytes: {}", outcome(&n)));
        drop(s1);
        let (m, _) = ring.recv_msg(&s2, Vec::with_capacity(4), 2).await;
        out.push(format!(
            "unix stream recv after: {}",
            outcome(&m.map(|m| (m.len, m.fds.len())))
        ));

        // Bad destinations and inputs.
        let v6 = "[::1]:9".parse().unwrap();
        let (n, _) = ring.send_to(&u1, b"x".to_vec(), v6).await;
        out.push(format!("udp v4 socket to v6: {}", outcome(&n)));
        let (n, _) = ring
            .send_msg(
                &u1,
                b"x".to_vec(),
                MsgOut::new()
                    .to(u2.local_addr().unwrap())
                    .fd(pw.try_clone().unwrap()),
            )
            .await;
        out.push(format!("fd over udp: {}", outcome(&n)));
        let (n, _) = ring
            .send_to_unix(&d1, b"x".to_vec(), "/nonexistent/safer-ring-attack")
            .await;
        out.push(format!("unix to missing path: {}", outcome(&n)));
        let (n, _) = ring.send_to_unix(&d1, b"x".to_vec(), "bad\0path").await;
        let nul = n.as_ref().map_err(|e| e.to_string().contains("NUL"));
        out.push(format!(
            "unix to NUL path: {} names NUL: {nul:?}",
            outcome(&n)
        ));
        let long = "/tmp/".to_string() + &"l".repeat(200);
        let (n, _) = ring.send_to_unix(&d1, b"x".to_vec(), &long).await;
        let msg = n.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
        out.push(format!("unix to 205-byte path: {}", outcome(&n)));
        assert!(msg.len() > 20, "the error says why: {msg:?}");
        let (n, _) = ring.send_to_unix(&d1, b"x".to_vec(), "").await;
        out.push(format!("unix to empty path: {}", outcome(&n)));
        // recvmsg on a socket that cannot receive (a UDP socket after shutdown is fine, a
        // listening Unix stream socket is not connected).
        let path = support::TempPath::new("attack-msg-listen");
        let l = ring.bind_unix(&path.0).unwrap();
        let (m, _) = ring.recv_msg(&l, Vec::with_capacity(4), 0).await;
        out.push(format!(
            "recvmsg on a listener: {}",
            outcome(&m.map(|m| m.len))
        ));
    });
    drop(pw);
    let _ = drive(ring, 1);
    assert!(writers_closed(&pr), "a passed fd leaked");
    out
}

// The same edge cases give the same outcomes on io_uring (native sendmsg/recvmsg), io_uring
// with SendRecvMsg off (still the opcode: it has no syscall fallback row) and epoll (the
// syscalls); nothing panics.
#[test]
fn edge_cases_same_on_every_path() {
    let epoll = edge_outcomes(&support::ring(BackendKind::Epoll).unwrap());
    println!("epoll: {epoll:#?}");
    let Some(uring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let native = edge_outcomes(&uring);
    assert_eq!(native, epoll, "io_uring and epoll differ");
    let off =
        support::ring_with(support::uring_wishing(Feature::SendRecvMsg, Some(false))).unwrap();
    assert!(!off.uses_native(Feature::SendRecvMsg));
    assert_eq!(
        edge_outcomes(&off),
        epoll,
        "io_uring with SendRecvMsg off and epoll differ"
    );
}

/// A Unix socket of `ty` bound to `path` with the full 108-byte `sun_path` and no NUL (Linux
/// accepts it; std's `bind` cannot make one).
fn bound_full_length(ty: i32, path: &[u8]) -> OwnedFd {
    use std::os::fd::FromRawFd;
    assert_eq!(path.len(), 108);
    // SAFETY: socket takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: `fd` is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain old data.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `sun` is a live sockaddr_un of `len` bytes.
    let r = unsafe { libc::bind(fd.as_raw_fd(), (&raw const sun).cast(), len) };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

/// A 108-byte path in the temp dir, removed on drop.
fn full_length_path(tag: &str) -> support::TempPath {
    let base = support::TempPath::new(tag);
    let mut s = base.0.as_os_str().as_encoded_bytes().to_vec();
    assert!(s.len() < 108);
    s.resize(108, b'p');
    support::TempPath(std::path::PathBuf::from(std::ffi::OsString::from_vec(s)))
}

use std::os::unix::ffi::OsStringExt;

// A peer bound to a path that fills sun_path (108 bytes, no NUL: valid on Linux; std's own
// `UnixDatagram::recv_from` reports it). Its datagram must be received, not consumed and
// dropped with an error the sender never learns of.
fn datagram_from_full_length_path(ring: Ring) {
    let long = full_length_path("attack-sun");
    let peer = bound_full_length(libc::SOCK_DGRAM, long.0.as_os_str().as_encoded_bytes());
    let server_path = support::TempPath::new("attack-sun-srv");
    let server = ring.bind_unix_datagram(&server_path.0).unwrap();
    let peer = std::os::unix::net::UnixDatagram::from(peer);
    peer.send_to(b"from a long name", &server_path.0).unwrap();
    let (r, buf) = ring.block_on(ring.recv_from_unix(&server, Vec::with_capacity(32)));
    let r = r.map_err(|e| {
        let left = ring
            .block_on(
                ring.recv_msg(&server, Vec::with_capacity(32), 0)
                    .timeout(Duration::from_millis(50)),
            )
            .0;
        format!("{e}; datagram still queued afterwards: {}", left.is_ok())
    });
    let (n, from) = r.expect("a datagram from a peer with a 108-byte name");
    assert_eq!(&buf[..n], b"from a long name");
    // std cannot build this address from its bytes: reported unnamed, the datagram kept.
    assert!(from.is_unnamed(), "{from:?}");
}

// The same peer connecting: accept_unix must hand out the connection (std's
// `UnixListener::accept` does), not accept it, close it and report an error.
fn connection_from_full_length_path(ring: Ring) {
    let long = full_length_path("attack-sun-c");
    let lpath = support::TempPath::new("attack-sun-l");
    let listener = ring.bind_unix(&lpath.0).unwrap();
    let client = bound_full_length(libc::SOCK_STREAM, long.0.as_os_str().as_encoded_bytes());
    let client = std::os::unix::net::UnixStream::from(client);
    let addr = std::os::unix::net::SocketAddr::from_pathname(&lpath.0).unwrap();
    connect_std(&client, &addr);
    let r = ring.block_on(ring.accept_unix(&listener)).map_err(|e| {
        let mut b = [0u8; 1];
        let closed = matches!(std::io::Read::read(&mut &client, &mut b), Ok(0));
        format!("{e}; the client's connection was closed: {closed}")
    });
    let (s, peer_addr) = r.expect("a connection from a peer with a 108-byte name");
    assert_eq!(peer_addr.as_pathname(), Some(long.0.as_path()));
    drop(s);
}

// Found by this file: `SocketAddr::from_pathname` refuses a 108-byte sun_path, and
// recv_from_unix / accept_unix used to fail after taking the datagram / connection.

#[test]
fn datagram_from_full_length_path_io_uring() {
    if let Some(r) = support::ring(BackendKind::IoUring) {
        datagram_from_full_length_path(r)
    }
}

#[test]
fn datagram_from_full_length_path_epoll() {
    datagram_from_full_length_path(support::ring(BackendKind::Epoll).unwrap())
}

#[test]
fn connection_from_full_length_path_io_uring() {
    if let Some(r) = support::ring(BackendKind::IoUring) {
        connection_from_full_length_path(r)
    }
}

#[test]
fn connection_from_full_length_path_epoll() {
    connection_from_full_length_path(support::ring(BackendKind::Epoll).unwrap())
}

fn connect_std(s: &std::os::unix::net::UnixStream, addr: &std::os::unix::net::SocketAddr) {
    // The std socket is already bound; connect it with libc (std has no connect on an
    // existing UnixStream).
    let path = addr.as_pathname().unwrap().as_os_str().as_encoded_bytes();
    // SAFETY: sockaddr_un is plain old data.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `sun` is a live sockaddr_un of `len` bytes.
    let r = unsafe { libc::connect(s.as_raw_fd(), (&raw const sun).cast(), len) };
    assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
}

/// `recv` dropped after one poll on `ring`; then SIZE bytes of 0xAB arrive from `send`. The
/// fresh allocations made right after the drop must stay zero.
fn dropped_recv_probe<O: std::future::Future + Unpin>(ring: &Ring, recv: O, send: impl FnOnce()) {
    {
        let _fresh = FreshOnDrop; // dropped after `op`: allocates right after its memory goes
        let mut op = recv;
        assert!(poll_once(&mut op).is_pending());
    }
    let fresh = take_fresh().unwrap();
    send();
    let _ = drive(ring, 20);
    assert_eq!(scribbled(&fresh), 0, "the kernel wrote into freed memory");
}

// recv_from (UDP) and recv_msg dropped while their SQE is still queued, not submitted (a
// `Batch` ring submits at the next turn, after the drop): the kernel reads the header and
// writes the datagram and the sender's address after the future is gone.
#[test]
fn receives_dropped_before_submit() {
    use safer_ring::{SaferRingConfig, SubmitPolicy};
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        for policy in [SubmitPolicy::Batch, SubmitPolicy::Eager] {
            let cfg = SaferRingConfig::default()
                .backend(kind)
                .submit_policy(policy);
            let Some(ring) = support::ring_with(cfg) else {
                continue;
            };
            let u = ring.bind_udp("127.0.0.1:0").unwrap();
            let to = u.local_addr().unwrap();
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            dropped_recv_probe(&ring, ring.recv_from(&u, Vec::with_capacity(SIZE)), || {
                peer.send_to(&[0xAB; SIZE], to).unwrap();
            });
            let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
            let b = UnixDatagram::from(b);
            dropped_recv_probe(
                &ring,
                ring.recv_msg(&b, Vec::with_capacity(SIZE), 4),
                || {
                    a.send(&[0xAB; SIZE]).unwrap();
                },
            );
        }
    }
}
