//! Attacks on `accept_up_to` / `accept_multiple` (TCP and Unix listeners): connections beyond
//! what the caller asked for must stay in the backlog (for the next accept), not be accepted
//! by a multishot and closed; the same on io_uring (native multishot), io_uring with
//! `MultiShotAccept` off, and epoll.

use std::io::Read;
use std::os::unix::net::UnixStream as StdUnix;
use std::time::Duration;

use safer_ring::{BackendKind, Feature, Ring};

use crate::support;

// Every connection awaited is already in the backlog: a deadline this long only ends a wait
// for connections that were lost (the test then fails on the count), never a slow accept.
const PATIENT: Duration = Duration::from_secs(30);

fn rings() -> Vec<(&'static str, Ring)> {
    let mut out = Vec::new();
    if let Some(r) = support::ring(BackendKind::IoUring) {
        out.push(("io_uring", r));
    }
    let off = support::uring_wishing(Feature::MultiShotAccept, Some(false)).entries(64);
    if let Some(r) = support::ring_with(off) {
        out.push(("io_uring-off", r));
    }
    out.push(("epoll", support::ring(BackendKind::Epoll).unwrap()));
    out
}

// Five clients wait; `accept_up_to(1)` takes one. The other four must still be there for the
// next accept (and none of them may find its connection closed by the server side), as with
// one `accept` call, or as on the single-accept paths.
#[test]
fn accept_up_to_leaves_the_rest_in_the_backlog() {
    let mut report = Vec::new();
    for (name, ring) in rings() {
        let path = support::TempPath::new("attack-accept");
        let listener = ring.bind_unix(&path.0).unwrap();
        let mut clients: Vec<StdUnix> =
            (0..5).map(|_| StdUnix::connect(&path.0).unwrap()).collect();
        let first = ring
            .block_on(ring.accept_up_to(&listener, 1, PATIENT))
            .unwrap();
        assert_eq!(first.len(), 1, "{name}");
        let rest = ring
            .block_on(ring.accept_up_to(&listener, 4, PATIENT))
            .unwrap();
        // Clients whose connection the server side closed see EOF at once.
        let mut closed = 0;
        for c in &mut clients {
            c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            if matches!(c.read(&mut [0u8; 1]), Ok(0)) {
                closed += 1;
            }
        }
        report.push(format!(
            "{name}: first 1, then {}, {closed} closed",
            rest.len()
        ));
        drop((first, rest));
    }
    eprintln!("{report:#?}");
    for r in &report {
        assert!(r.ends_with("then 4, 0 closed"), "{report:#?}");
    }
}

// The same with a TCP listener and a bound of zero: `accept_up_to(0)` accepts nothing and
// closes nothing.
#[test]
fn accept_up_to_zero_takes_nothing() {
    for (name, ring) in rings() {
        let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients: Vec<std::net::TcpStream> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let none = ring
            .block_on(ring.accept_up_to(&listener, 0, Duration::from_millis(50)))
            .unwrap();
        assert!(none.is_empty(), "{name}");
        let all = ring
            .block_on(ring.accept_up_to(&listener, 3, PATIENT))
            .unwrap();
        assert_eq!(all.len(), 3, "{name}: accept_up_to(0) lost connections");
        for c in &mut clients {
            c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            assert!(!matches!(c.read(&mut [0u8; 1]), Ok(0)), "{name}: closed");
        }
    }
}

// The same over TCP.
#[test]
fn accept_up_to_leaves_the_rest_in_the_backlog_tcp() {
    let mut report = Vec::new();
    for (name, ring) in rings() {
        let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients: Vec<std::net::TcpStream> = (0..5)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let first = ring
            .block_on(ring.accept_up_to(&listener, 1, PATIENT))
            .unwrap();
        let rest = ring
            .block_on(ring.accept_up_to(&listener, 4, PATIENT))
            .unwrap();
        let mut closed = 0;
        for c in &mut clients {
            c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            if matches!(c.read(&mut [0u8; 1]), Ok(0)) {
                closed += 1;
            }
        }
        report.push(format!(
            "{name}: first {}, then {}, {closed} closed",
            first.len(),
            rest.len()
        ));
    }
    eprintln!("{report:#?}");
    for r in &report {
        assert!(r.ends_with("first 1, then 4, 0 closed"), "{report:#?}");
    }
}
