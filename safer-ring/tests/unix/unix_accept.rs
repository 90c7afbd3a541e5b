//! `accept_multiple` / `accept_up_to` on Unix listeners, on three rings each: io_uring
//! (multishot accept where the kernel has it), io_uring with `MultiShotAccept` forced off (a
//! loop of single accepts on io_uring), and epoll. Real sockets under the temp dir.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream as StdUnix;
use std::time::Duration;

use safer_ring::{Feature, Ring};

use crate::support;

// The kernel matrix selects these tests by their module name (`-- unix_accept`).

fn stats_match(ring: &Ring, n: u64) {
    let s = ring.enhancement_stats(Feature::MultiShotAccept);
    if ring.uses_native(Feature::MultiShotAccept) {
        assert_eq!((s.native, s.fallback), (n, 0), "{s:?}");
    } else {
        assert_eq!((s.native, s.fallback), (0, n), "{s:?}");
    }
}

// Five clients, each told its own number over the connection the stream accepted for it.
three_rings_test!(accepts_each_client, Feature::MultiShotAccept, |ring| {
    let path = support::TempPath::new("uam");
    let listener = ring.bind_unix(&path.0).unwrap();
    let mut clients: Vec<StdUnix> = (0..5).map(|_| StdUnix::connect(&path.0).unwrap()).collect();
    ring.block_on(async {
        let mut conns = ring.accept_multiple(&listener);
        for i in 0..5u8 {
            let conn = conns
                .next()
                .await
                .expect("the stream does not end")
                .unwrap();
            assert_eq!(
                conns.is_native(),
                ring.uses_native(Feature::MultiShotAccept)
            );
            ring.send(&conn, vec![b'a' + i; 3]).await.0.unwrap();
        }
    });
    // Connections are accepted in the order the clients connected.
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = [0u8; 3];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, [b'a' + i as u8; 3], "client {i}");
    }
    stats_match(&ring, 5);
});

// The accepted stream carries data both ways, and a client arriving while the stream waits is
// accepted too.
three_rings_test!(accepts_a_late_client, Feature::MultiShotAccept, |ring| {
    let path = support::TempPath::new("uaml");
    let listener = ring.bind_unix(&path.0).unwrap();
    let p = path.0.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let mut c = StdUnix::connect(p).unwrap();
        c.write_all(b"late").unwrap();
        c
    });
    ring.block_on(async {
        let mut conns = ring.accept_multiple(&listener);
        let conn = conns.next().await.unwrap().unwrap();
        let (n, buf) = ring.recv(&conn, Vec::with_capacity(8)).await;
        assert_eq!((n.unwrap(), &buf[..]), (4, &b"late"[..]));
    });
    t.join().unwrap();
});

three_rings_test!(
    accept_up_to_collects_what_comes,
    Feature::MultiShotAccept,
    |ring| {
        let path = support::TempPath::new("uamu");
        let listener = ring.bind_unix(&path.0).unwrap();
        let _clients: Vec<StdUnix> = (0..3).map(|_| StdUnix::connect(&path.0).unwrap()).collect();
        // Fewer than `max` wait: each call returns what came within its 100 ms; a slow
        // machine may need several calls for the three, never more than three in all.
        let mut conns = Vec::new();
        let t = std::time::Instant::now();
        while conns.len() < 3 && t.elapsed() < Duration::from_secs(20) {
            conns.extend(
                ring.block_on(ring.accept_up_to(&listener, 8, Duration::from_millis(100)))
                    .unwrap(),
            );
        }
        assert_eq!(conns.len(), 3);
        let conns = ring
            .block_on(ring.accept_up_to(&listener, 8, Duration::from_millis(20)))
            .unwrap();
        assert!(conns.is_empty());
    }
);

// A listener of another family is refused before the kernel accepts anything, as for TCP:
// the client's connection stays in the backlog, and std accepts it afterwards.
three_rings_test!(refuses_a_tcp_listener, Feature::MultiShotAccept, |ring| {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
    let fd = std::os::fd::AsFd::as_fd(&tcp).try_clone_to_owned().unwrap();
    let wrong = safer_ring::UnixListener::from_owned_fd(fd);
    let err = ring
        .block_on(ring.accept_multiple(&wrong).next())
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("UnixListener"), "{err}");
    let err = ring
        .block_on(ring.accept_up_to(&wrong, 4, Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    drop(wrong);
    tcp.set_nonblocking(true).unwrap();
    tcp.accept()
        .expect("the connection was left in the backlog");
});

// Dropping the stream with connections accepted and not handed out closes them (clients see
// EOF), and the listener keeps serving.
three_rings_test!(
    dropped_stream_closes_unclaimed_connections,
    Feature::MultiShotAccept,
    |ring| {
        let path = support::TempPath::new("uamd");
        let listener = ring.bind_unix(&path.0).unwrap();
        let mut clients: Vec<StdUnix> =
            (0..4).map(|_| StdUnix::connect(&path.0).unwrap()).collect();
        let kept = ring.block_on(async {
            let mut conns = ring.accept_multiple(&listener);
            conns.next().await.unwrap().unwrap()
        });
        // Natively the dropped stream's multishot had taken the others: closed. On the single
        // path they are still in the backlog: all three are served (however many 100 ms
        // windows a slow machine needs), else a client would wait for nothing.
        let backlog = if ring.uses_native(Feature::MultiShotAccept) {
            0
        } else {
            3
        };
        ring.block_on(async {
            let (mut served, t) = (0, std::time::Instant::now());
            loop {
                let again = ring
                    .accept_up_to(&listener, 3 - served, Duration::from_millis(100))
                    .await
                    .unwrap();
                served += again.len();
                for c in again {
                    ring.send(&c, b"x".to_vec()).await.0.unwrap();
                }
                if served >= backlog || t.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
        });
        ring.block_on(ring.send(&kept, b"k".to_vec())).0.unwrap();
        let mut b = [0u8; 1];
        clients[0]
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        clients[0].read_exact(&mut b).unwrap();
        assert_eq!(&b, b"k");
        for c in &mut clients[1..] {
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            // Either served ("x") or closed (EOF): never left hanging.
            let n = c.read(&mut b).unwrap();
            assert!(n == 0 || &b == b"x", "{n} {b:?}");
        }
        let _late = StdUnix::connect(&path.0).unwrap();
        let conns = ring
            .block_on(ring.accept_up_to(&listener, 1, Duration::from_secs(20)))
            .unwrap();
        assert_eq!(conns.len(), 1);
    }
);
