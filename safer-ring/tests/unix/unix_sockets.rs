//! Unix sockets on both backends: listeners, connect by path and abstract name, datagram
//! sockets, addresses compared with what std reports, errors mapped as std maps them, and the
//! listener family check (a Unix socket adopted as `TcpListener` is refused up front).

use std::io::{ErrorKind, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;

use safer_ring::{Ring, TcpListener, UnixListener, UnixStream};
use support::TempPath;

use crate::support;

/// std's `SocketAddr` has no `PartialEq`: compare what it names.
fn same(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.is_unnamed() == b.is_unnamed()
        && a.as_pathname() == b.as_pathname()
        && a.as_abstract_name() == b.as_abstract_name()
}

/// A pattern that shows any reordered, lost or duplicated byte.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Sends all of `data` on `to` while receiving exactly that many bytes on `from`.
fn pump(ring: &Ring, to: &UnixStream, from: &UnixStream, data: &[u8]) -> Vec<u8> {
    ring.block_on(async {
        let send = async {
            let mut off = 0;
            while off < data.len() {
                let (n, _) = ring.send(to, data[off..].to_vec()).await;
                off += n.unwrap();
            }
        };
        let recv = async {
            let mut got = Vec::with_capacity(data.len());
            while got.len() < data.len() {
                let (n, buf) = ring.recv(from, Vec::with_capacity(64 * 1024)).await;
                assert_ne!(n.unwrap(), 0, "early EOF after {} bytes", got.len());
                got.extend_from_slice(&buf);
            }
            got
        };
        join(send, recv).await.1
    })
}

backend_test!(listener_by_path, |ring| {
    let path = TempPath::new("ul");
    let listener = ring.bind_unix(&path.0).unwrap();
    assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(&*path.0));
    let (client, (server, peer)) = ring.block_on(async {
        let (c, a) = join(ring.connect_unix(&path.0), ring.accept_unix(&listener)).await;
        (c.unwrap(), a.unwrap())
    });
    // The addresses agree with what the kernel tells std about the same sockets.
    let std_client = std::os::unix::net::UnixStream::from(client.into_owned_fd().unwrap());
    assert!(same(&peer, &std_client.local_addr().unwrap()));
    assert!(peer.is_unnamed());
    assert!(same(
        &server.local_addr().unwrap(),
        &std_client.peer_addr().unwrap()
    ));
    assert!(server.peer_addr().unwrap().is_unnamed());
    let client = UnixStream::from(std_client);
    assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(&*path.0));
    // 1 MiB each way, byte-exact.
    let data = pattern(1 << 20);
    assert_eq!(pump(&ring, &client, &server, &data), data);
    assert_eq!(pump(&ring, &server, &client, &data), data);
    drop(client);
    let (n, _) = ring.block_on(ring.recv(&server, Vec::with_capacity(8)));
    assert_eq!(n.unwrap(), 0, "EOF once the client is gone");
});

backend_test!(listener_by_abstract_name, |ring| {
    let name = format!(
        "safer-ring-test-abs-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = ring.bind_unix_addr(&addr).unwrap();
    assert_eq!(
        listener.local_addr().unwrap().as_abstract_name(),
        Some(name.as_bytes())
    );
    // A std client connects to the name the ring bound; a ring client to one std bound.
    let std_client = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    let (server, peer) = ring.block_on(ring.accept_unix(&listener)).unwrap();
    assert!(same(&peer, &std_client.local_addr().unwrap()));
    let data = pattern(100_000);
    let (mut c, d) = (std_client, data.clone());
    let writer = std::thread::spawn(move || c.write_all(&d).map(|()| c));
    let mut got = Vec::new();
    ring.block_on(async {
        while got.len() < data.len() {
            let (n, buf) = ring.recv(&server, Vec::with_capacity(8192)).await;
            assert_ne!(n.unwrap(), 0);
            got.extend_from_slice(&buf);
        }
    });
    assert_eq!(got, data);
    drop(writer.join().unwrap().unwrap());

    let name2 = format!("{name}-std");
    let addr2 = SocketAddr::from_abstract_name(name2.as_bytes()).unwrap();
    let std_listener = std::os::unix::net::UnixListener::bind_addr(&addr2).unwrap();
    let client = ring.block_on(ring.connect_unix_addr(&addr2)).unwrap();
    assert_eq!(
        client.peer_addr().unwrap().as_abstract_name(),
        Some(name2.as_bytes())
    );
    let (mut accepted, _) = std_listener.accept().unwrap();
    ring.block_on(ring.send(&client, b"to std".to_vec()))
        .0
        .unwrap();
    let mut buf = [0u8; 6];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"to std");
});

backend_test!(connect_errors_as_std, |ring| {
    // Nothing at the path: ENOENT, as std reports it.
    let missing = TempPath::new("missing");
    let std_err = std::os::unix::net::UnixStream::connect(&missing.0).unwrap_err();
    let err = ring.block_on(ring.connect_unix(&missing.0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.raw_os_error(), std_err.raw_os_error());
    // A socket file nobody listens on any more: ECONNREFUSED.
    let stale = TempPath::new("stale");
    drop(std::os::unix::net::UnixListener::bind(&stale.0).unwrap());
    let std_err = std::os::unix::net::UnixStream::connect(&stale.0).unwrap_err();
    let err = ring.block_on(ring.connect_unix(&stale.0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(err.raw_os_error(), std_err.raw_os_error());
    // Binding where a socket file exists: EADDRINUSE, for listeners and datagram sockets.
    let std_err = std::os::unix::net::UnixListener::bind(&stale.0).unwrap_err();
    let err = ring.bind_unix(&stale.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert_eq!(err.raw_os_error(), std_err.raw_os_error());
    let err = ring.bind_unix_datagram(&stale.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // Bad input: clear errors, no panic, no syscall.
    let long = std::path::PathBuf::from("/tmp/".to_string() + &"x".repeat(200));
    let err = ring.block_on(ring.connect_unix(&long)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("205 bytes"), "{err}");
    assert!(err.to_string().contains("107"), "{err}");
    let err = ring.bind_unix("").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let unnamed = ring.unix_datagram_unbound().unwrap().local_addr().unwrap();
    let err = ring.block_on(ring.connect_unix_addr(&unnamed)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
});

backend_test!(unix_socket_adopted_as_tcp_listener_is_refused, |ring| {
    let path = TempPath::new("fam");
    let std_listener = std::os::unix::net::UnixListener::bind(&path.0).unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&path.0).unwrap();
    client.write_all(b"still here").unwrap();
    let tcp = TcpListener::from_owned_fd(std_listener.into());
    // Single accept and the stream of accepts: the same clear error on both backends, before
    // the kernel is asked to accept anything.
    let err = ring.block_on(ring.accept(&tcp)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("TcpListener holds a Unix (AF_UNIX) socket"),
        "{err}"
    );
    let err = ring
        .block_on(async { ring.accept_multiple(&tcp).next().await })
        .expect("an item")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // The pending connection was not consumed: std accepts it and reads the client's bytes.
    let std_listener = std::os::unix::net::UnixListener::from(tcp.into_owned_fd().unwrap());
    std_listener.set_nonblocking(false).unwrap();
    let (mut accepted, _) = std_listener.accept().unwrap();
    let mut buf = [0u8; 10];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
});

backend_test!(tcp_socket_adopted_as_unix_listener_is_refused, |ring| {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let unix = UnixListener::from_owned_fd(std_listener.into());
    let err = ring.block_on(ring.accept_unix(&unix)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("UnixListener holds an IPv4"),
        "{err}"
    );
    let std_listener = std::net::TcpListener::from(unix.into_owned_fd().unwrap());
    std_listener.set_nonblocking(false).unwrap();
    let (_, peer) = std_listener.accept().unwrap();
    assert!(peer.ip().is_loopback());
});

backend_test!(datagrams_by_path_and_pair, |ring| {
    let (pa, pb) = (TempPath::new("da"), TempPath::new("db"));
    let a = ring.bind_unix_datagram(&pa.0).unwrap();
    let b = ring.bind_unix_datagram(&pb.0).unwrap();
    a.connect(&pb.0).unwrap();
    b.connect(&pa.0).unwrap();
    assert_eq!(a.local_addr().unwrap().as_pathname(), Some(&*pa.0));
    assert_eq!(a.peer_addr().unwrap().as_pathname(), Some(&*pb.0));
    // Boundaries kept, bytes exact, both directions.
    let sizes = [1usize, 1000, 60_000, 0, 7];
    ring.block_on(async {
        for &len in &sizes {
            let (n, _) = ring.send(&a, pattern(len)).await;
            assert_eq!(n.unwrap(), len);
        }
        for &len in &sizes {
            let (n, buf) = ring.recv(&b, Vec::with_capacity(65_536)).await;
            assert_eq!(n.unwrap(), len);
            assert_eq!(buf, pattern(len));
        }
        ring.send(&b, b"back".to_vec()).await.0.unwrap();
        let (_, buf) = ring.recv(&a, Vec::with_capacity(16)).await;
        assert_eq!(buf, b"back");
        // A datagram longer than the buffer: the rest is dropped, as recv(2) does.
        ring.send(&a, pattern(100)).await.0.unwrap();
        let (n, buf) = ring.recv(&b, Vec::with_capacity(10)).await;
        assert_eq!((n.unwrap(), &buf[..]), (10, &pattern(100)[..10]));
        ring.send(&a, b"next".to_vec()).await.0.unwrap();
        let (_, buf) = ring.recv(&b, Vec::with_capacity(16)).await;
        assert_eq!(buf, b"next");
    });
    // An unbound socket sends to a bound one.
    let u = ring.unix_datagram_unbound().unwrap();
    assert!(u.local_addr().unwrap().is_unnamed());
    assert_eq!(u.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    // `a` is connected to `b`: the kernel refuses datagrams from anyone else (EPERM).
    assert_eq!(
        u.connect(&pa.0).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    let pc = TempPath::new("dc");
    let c = ring.bind_unix_datagram(&pc.0).unwrap();
    u.connect(&pc.0).unwrap();
    ring.block_on(ring.send(&u, b"anon2".to_vec())).0.unwrap();
    let (_, buf) = ring.block_on(ring.recv(&c, Vec::with_capacity(16)));
    assert_eq!(buf, b"anon2");
    // Connect errors as std maps them.
    let missing = TempPath::new("dmissing");
    let err = u.connect(&missing.0).unwrap_err();
    let std_err = std::os::unix::net::UnixDatagram::unbound()
        .unwrap()
        .connect(&missing.0)
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.raw_os_error()),
        (ErrorKind::NotFound, std_err.raw_os_error())
    );
    // A pair.
    let (x, y) = ring.unix_datagram_pair().unwrap();
    assert!(x.local_addr().unwrap().is_unnamed());
    ring.block_on(async {
        ring.send(&x, pattern(3000)).await.0.unwrap();
        let (n, buf) = ring.recv(&y, Vec::with_capacity(4096)).await;
        assert_eq!((n.unwrap(), buf), (3000, pattern(3000)));
    });
});

backend_test!(datagram_abstract_and_std_interop, |ring| {
    let name = format!(
        "safer-ring-test-dabs-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = ring.bind_unix_datagram_addr(&addr).unwrap();
    assert_eq!(
        sock.local_addr().unwrap().as_abstract_name(),
        Some(name.as_bytes())
    );
    let std_sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    std_sock.send_to_addr(b"from std", &addr).unwrap();
    let (_, buf) = ring.block_on(ring.recv(&sock, Vec::with_capacity(16)));
    assert_eq!(buf, b"from std");
    // The ring's socket connected to std's abstract name.
    let name2 = format!("{name}-std");
    let addr2 = SocketAddr::from_abstract_name(name2.as_bytes()).unwrap();
    let std_bound = std::os::unix::net::UnixDatagram::bind_addr(&addr2).unwrap();
    sock.connect_addr(&addr2).unwrap();
    ring.block_on(ring.send(&sock, b"to std".to_vec()))
        .0
        .unwrap();
    let mut b = [0u8; 16];
    let (n, from) = std_bound.recv_from(&mut b).unwrap();
    assert_eq!(&b[..n], b"to std");
    assert!(same(&from, &sock.local_addr().unwrap()));
});

backend_test!(socket_options_through_as_fd, |ring| {
    let (a, _b) = ring.unix_datagram_pair().unwrap();
    let sock = socket2::SockRef::from(&a);
    sock.set_send_buffer_size(64 * 1024).unwrap();
    // Linux doubles the value for bookkeeping; what matters is that it reached this socket.
    assert!(sock.send_buffer_size().unwrap() >= 64 * 1024);
    let (s, _t) = ring.unix_pair().unwrap();
    assert_eq!(
        socket2::SockRef::from(&s).r#type().unwrap(),
        socket2::Type::STREAM
    );
});

/// Polls two futures concurrently.
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    use std::future::poll_fn;
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}

backend_test!(send_to_recv_from_unix, |ring| {
    let (ps, pc) = (TempPath::new("srv"), TempPath::new("cli"));
    let server = ring.bind_unix_datagram(&ps.0).unwrap();
    let client = ring.bind_unix_datagram(&pc.0).unwrap();
    let anon = ring.unix_datagram_unbound().unwrap();
    ring.block_on(async {
        let (n, _) = ring.send_to_unix(&client, pattern(5000), &ps.0).await;
        assert_eq!(n.unwrap(), 5000);
        let (r, buf) = ring.recv_from_unix(&server, Vec::with_capacity(8192)).await;
        let (n, from) = r.unwrap();
        assert_eq!((n, from.as_pathname()), (5000, Some(&*pc.0)));
        assert_eq!(buf, pattern(5000));
        // The reply goes to the address recv_from reported.
        ring.send_to_unix_addr(&server, b"reply".to_vec(), &from)
            .await
            .0
            .unwrap();
        let (r, buf) = ring.recv_from_unix(&client, Vec::with_capacity(16)).await;
        assert_eq!(r.unwrap().1.as_pathname(), Some(&*ps.0));
        assert_eq!(buf, b"reply");
        ring.send_to_unix(&anon, b"anon".to_vec(), &ps.0)
            .await
            .0
            .unwrap();
        let (r, _) = ring.recv_from_unix(&server, Vec::with_capacity(16)).await;
        assert!(r.unwrap().1.is_unnamed());
        // Errors as std maps them.
        let missing = TempPath::new("nobody");
        let (n, _) = ring.send_to_unix(&anon, b"x".to_vec(), &missing.0).await;
        let std_err = std::os::unix::net::UnixDatagram::unbound()
            .unwrap()
            .send_to(b"x", &missing.0)
            .unwrap_err();
        let e = n.unwrap_err();
        assert_eq!(
            (e.kind(), e.raw_os_error()),
            (ErrorKind::NotFound, std_err.raw_os_error())
        );
    });
    // std's view of the same exchange.
    let std_sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    std_sock.send_to(b"from std", &ps.0).unwrap();
    let (r, _) = ring.block_on(ring.recv_from_unix(&server, Vec::with_capacity(16)));
    assert!(same(&r.unwrap().1, &std_sock.local_addr().unwrap()));
});

/// Reads what is left in a pipe until EOF; EOF means no write end is open anywhere.
fn drain(mut r: std::io::PipeReader) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

fn cloexec(fd: &impl std::os::fd::AsRawFd) -> bool {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap()
        .trim();
    u32::from_str_radix(flags, 8).unwrap() & 0o2000000 != 0
}

backend_test!(fd_passing_over_unix_sockets, |ring| {
    use safer_ring::ops::MsgOut;
    let (sa, sb) = ring.unix_pair().unwrap();
    let (da, db) = ring.unix_datagram_pair().unwrap();
    // Three pipes' write ends in one message, over a stream and over a datagram socket.
    fn exchange<S: safer_ring::AsIoFd>(ring: &Ring, tx: &S, rx: &S) {
        let pipes: Vec<_> = (0..3).map(|_| std::io::pipe().unwrap()).collect();
        let mut readers = Vec::new();
        let mut msg = MsgOut::new();
        for (r, w) in pipes {
            readers.push(r);
            msg = msg.fd(w);
        }
        let m = ring.block_on(async {
            let (n, _) = ring.send_msg(tx, b"three fds".to_vec(), msg).await;
            assert_eq!(n.unwrap(), 9);
            let (m, buf) = ring.recv_msg(rx, Vec::with_capacity(16), 3).await;
            assert_eq!(buf, b"three fds");
            m.unwrap()
        });
        assert!(!m.control_truncated && !m.truncated);
        assert_eq!(m.fds.len(), 3);
        for (i, fd) in m.fds.into_iter().enumerate() {
            assert!(cloexec(&fd), "received fd {i} is close-on-exec");
            let mut w = std::fs::File::from(fd);
            w.write_all(format!("through fd {i}").as_bytes()).unwrap();
        }
        // The received fds are dropped and the sender's copies were closed after the send:
        // each read end sees the bytes, then EOF.
        for (i, r) in readers.into_iter().enumerate() {
            assert_eq!(drain(r), format!("through fd {i}").as_bytes());
        }
    }
    exchange(&ring, &sa, &sb);
    exchange(&ring, &da, &db);
});

backend_test!(fd_passing_reports_ctrunc, |ring| {
    use safer_ring::ops::MsgOut;
    let (a, b) = ring.unix_datagram_pair().unwrap();
    let pipes: Vec<_> = (0..4).map(|_| std::io::pipe().unwrap()).collect();
    let mut readers = Vec::new();
    let mut msg = MsgOut::new();
    for (r, w) in pipes {
        readers.push(r);
        msg = msg.fd(w);
    }
    ring.block_on(async {
        ring.send_msg(&a, b"4".to_vec(), msg).await.0.unwrap();
        // Room for one fd (the kernel's cmsg rounding may fit two): the rest is cut.
        let (m, _) = ring.recv_msg(&b, Vec::with_capacity(4), 1).await;
        let m = m.unwrap();
        assert!(m.control_truncated, "4 fds cannot fit");
        assert!(!m.fds.is_empty() && m.fds.len() < 4, "{} fds", m.fds.len());
        let got = m.fds.len();
        drop(m);
        // Every write end is closed now (received ones by us, cut ones by the kernel): all
        // read ends reach EOF, nothing leaked into this process.
        for r in readers {
            assert!(drain(r).is_empty());
        }
        // No room at all: reported too.
        let (r, w) = std::io::pipe().unwrap();
        ring.send_msg(&a, b"1".to_vec(), MsgOut::new().fd(w))
            .await
            .0
            .unwrap();
        let (m, _) = ring.recv_msg(&b, Vec::with_capacity(4), 0).await;
        let m = m.unwrap();
        assert!(m.control_truncated && m.fds.is_empty());
        assert!(drain(r).is_empty());
        assert!(got >= 1);
    });
    // Too many fds for one message: refused before sending, with the limit named.
    let mut msg = MsgOut::new();
    for _ in 0..254 {
        msg = msg.fd(std::os::fd::OwnedFd::from(std::io::pipe().unwrap().1));
    }
    let (n, _) = ring.block_on(ring.send_msg(&a, b"x".to_vec(), msg));
    let e = n.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("254 fds"), "{e}");
});

backend_test!(dropped_recv_msg_loses_nothing, |ring| {
    use safer_ring::ops::MsgOut;
    use std::time::Duration;
    let (a, b) = ring.unix_datagram_pair().unwrap();
    ring.block_on(async {
        // A recv_msg in flight, dropped by its timeout: cancelled, its header freed later.
        let r = ring
            .timeout(
                Duration::from_millis(20),
                ring.recv_msg(&b, Vec::with_capacity(8), 2),
            )
            .await;
        assert!(r.is_err(), "nothing was sent yet");
        let (read_end, w) = std::io::pipe().unwrap();
        ring.send_msg(&a, b"late".to_vec(), MsgOut::new().fd(w))
            .await
            .0
            .unwrap();
        let (m, buf) = ring.recv_msg(&b, Vec::with_capacity(8), 2).await;
        let mut m = m.unwrap();
        assert_eq!((buf.as_slice(), m.fds.len()), (&b"late"[..], 1));
        std::fs::File::from(m.fds.pop().unwrap())
            .write_all(b"ok")
            .unwrap();
        assert_eq!(drain(read_end), b"ok");
    });
});
