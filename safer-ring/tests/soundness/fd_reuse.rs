//! Attacks on fd lifetime (defect 4): multishot ops name their fd by number without holding it,
//! so once the I/O value is dropped and the number reused, the queued multishot SQE acts on an
//! unrelated fd.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::task::Waker;
use std::time::{Duration, Instant};

use safer_ring::Feature;
use support::soundness::*;

use crate::support;

// Defect 4(a): arm `accept_multiple` (with the default Batch policy its SQE only sits in the
// SQ), drop the stream and the listener, bind a new listener (same fd number) and connect to
// it. Correct: the new listener accepts that connection itself; the stale multishot accept
// never steals (and closes) it.
backend_test!(
    stale_multishot_accept_does_not_steal_from_new_listener,
    |ring| {
        let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
        let old_fd = listener.as_raw_fd();
        let mut stream = ring.accept_multiple(&listener);
        assert!(poll_next_with(&mut stream, Waker::noop()).is_pending());
        let native = stream.is_native();
        drop(stream);
        drop(listener);
        let l2 = ring.bind_tcp("127.0.0.1:0").unwrap();
        eprintln!(
            "multishot accept native: {native}; old listener fd {old_fd}, new listener fd {}",
            l2.as_raw_fd()
        );
        let client = std::net::TcpStream::connect(l2.local_addr().unwrap()).unwrap();
        let _ = drive(&ring, 20);
        // The connection is in the backlog already: the bounds only catch a lost one.
        let mut accept = ring.accept(&l2).timeout(Duration::from_secs(20));
        match run_for(&ring, &mut accept, Duration::from_secs(40)) {
            Some(Ok((_s, peer))) => assert_eq!(peer, client.local_addr().unwrap()),
            other => panic!(
                "the new listener lost its connection to a stale multishot accept (fd {old_fd} \
             reused: {}): {other:?}",
                old_fd == l2.as_raw_fd()
            ),
        }
    }
);

// Defect 4(b): arm a multishot recv with `recv_enhanced`, drop the future and the socket,
// create a new socketpair (same fd number) and write 34 bytes into it. Correct: all 34 bytes
// can be read from the new socket; the stale multishot recv never consumes them.
backend_test!(stale_multishot_recv_does_not_eat_new_socket_data, |ring| {
    let native = ring.uses_native(Feature::MultiShotRecv) && ring.uses_native(Feature::BufferRings);
    let (a, _b) = ring.unix_pair().unwrap();
    let old_fd = a.as_raw_fd();
    let mut f = Box::pin(ring.recv_enhanced(&a, vec![0u8; 64]));
    assert!(poll_once(&mut f).is_pending());
    drop(f);
    drop(a);
    let (mut na, mut nb) = std::os::unix::net::UnixStream::pair().unwrap();
    eprintln!(
        "multishot recv native: {native}; old socket fd {old_fd}, new socket fd {}",
        na.as_raw_fd()
    );
    nb.write_all(&[0x5A; 34]).unwrap();
    let _ = drive(&ring, 20);
    na.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < 34 && t.elapsed() < Duration::from_millis(500) {
        let mut b = [0u8; 64];
        match na.read(&mut b) {
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        got.len(),
        34,
        "bytes written to a new socket were consumed by a stale multishot recv (fd {old_fd} \
         reused: {})",
        old_fd == na.as_raw_fd()
    );
});
