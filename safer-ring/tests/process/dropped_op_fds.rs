//! Fds the kernel creates for an op whose future was dropped (OP_SOCKET, accept on a Unix
//! listener, listen_tcp/listen_unix half-way, recvmsg with SCM_RIGHTS) are closed, not leaked:
//! hundreds of dropped ops leave the process's fd count where it was. Serialized with the other
//! tests of this binary, so that none opens fds meanwhile.

use std::time::Duration;

use safer_ring::BackendKind;
use safer_ring::ops::MsgOut;
use support::soundness::{drive, poll_once};

use crate::support;

fn churn(ring: &safer_ring::Ring) {
    let path = support::TempPath::new("attack-leak");
    let listener = ring.bind_unix(&path.0).unwrap();
    let (a, b) = ring.unix_datagram_pair().unwrap();
    for i in 0..300 {
        // A socket future polled once (on io_uring the SQE completes at once) and dropped.
        let mut s = Box::pin(ring.socket(libc::AF_INET, libc::SOCK_STREAM, 0));
        let _ = poll_once(&mut s);
        drop(s);
        // listen_tcp dropped after its first step.
        let mut l = Box::pin(ring.listen_tcp("127.0.0.1:0".parse().unwrap()));
        let _ = poll_once(&mut l);
        drop(l);
        // An accept with a client waiting, dropped.
        let _c = std::os::unix::net::UnixStream::connect(&path.0).unwrap();
        let mut acc = ring.accept_unix(&listener);
        let _ = poll_once(&mut acc);
        if i % 2 == 0 {
            let _ = ring.poll_completions();
        }
        drop(acc);
        // A receive with fds, dropped after the datagram was sent.
        let mut r = ring.recv_msg(&b, Vec::with_capacity(8), 4);
        let _ = poll_once(&mut r);
        let (pr, pw) = std::io::pipe().unwrap();
        let msg = MsgOut::new().fd(pw).fd(pr);
        let (n, _) = ring.block_on(ring.send_msg(&a, b"x".to_vec(), msg));
        n.unwrap();
        drop(r);
        // Whatever the dropped receive did not take is still queued: take it, drop it.
        let mut again = ring.recv_msg(&b, Vec::with_capacity(8), 4);
        let _ = support::soundness::run_for(ring, &mut again, Duration::from_millis(5));
    }
    let _ = drive(ring, 10);
    // Connections the dropped accepts did not take are in the backlog: the listener's drop
    // closes them.
    drop(listener);
}

#[test]
fn dropped_ops_leak_no_fds() {
    let _serial = support::serial();
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let Some(ring) = support::ring(kind) else {
            continue;
        };
        churn(&ring); // warm-up: lazily created fds (io-wq, caches) are counted before
        let before = support::fd_count();
        churn(&ring);
        let after = support::fd_count();
        assert!(
            after <= before + 2,
            "{kind:?}: {before} fds before, {after} after 300 rounds of dropped ops"
        );
    }
}
