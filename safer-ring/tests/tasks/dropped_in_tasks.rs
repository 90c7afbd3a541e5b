//! Attacks on the drop paths that submit a dropped op's cancel at once: drops inside spawned
//! tasks and `select`, `JoinHandle::abort` of a task with many receives in flight, a ring
//! dropped with thousands of receives in flight (timed), drops while the SQ is full, drops
//! while the CQ overflows, and under `Ring::drive_on_tokio`. Each checks that what arrives
//! after the drop (sent with a plain std call, no turn in between) reaches the next receive.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnix;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};
use safer_ring::{BackendKind, Ring, SaferRingConfig, UnixStream};
use support::drops::{When, each, each_on, must_arrive};
use support::soundness::poll_once;

use crate::support;

/// `n` socket pairs: the std end to write to, the ring's end to receive on.
fn pairs(n: usize) -> Vec<(StdUnix, UnixStream)> {
    (0..n)
        .map(|_| {
            let (a, b) = StdUnix::pair().unwrap();
            (a, UnixStream::from(b))
        })
        .collect()
}

#[test]
fn recvs_dropped_by_select_in_a_spawned_task_lose_nothing_after() {
    each(|what, ring, _| {
        let r = safer_ring::RingRef::clone(ring);
        let task = ring.spawn(async move {
            for _ in 0..20 {
                let (mut a, b) = pairs(1).pop().unwrap();
                let recv = Box::pin(r.recv(&b, vec![0u8; 64]));
                let sleep = Box::pin(r.sleep(Duration::from_millis(1)));
                match select(recv, sleep).await {
                    Either::Right((_, recv)) => drop(recv),
                    Either::Left(_) => return Err("the recv finished with nothing sent"),
                }
                a.write_all(b"after the drop").unwrap();
                // Already sent: the bound only ends a lost one.
                let got = r
                    .timeout(Duration::from_secs(30), r.recv(&b, vec![0u8; 64]))
                    .await;
                match got {
                    Ok((Ok(n), buf)) if buf[..n] == b"after the drop"[..] => {}
                    _ => return Err("the bytes sent after the drop were lost"),
                }
            }
            Ok(())
        });
        ring.block_on(task)
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    });
}

#[test]
fn recvs_dropped_by_select_in_block_on_lose_nothing_after() {
    each(|what, ring, _| {
        for round in 0..20 {
            let (mut a, b) = pairs(1).pop().unwrap();
            let recv = Box::pin(ring.recv(&b, vec![0u8; 64]));
            let sleep = Box::pin(ring.sleep(Duration::from_millis(1)));
            match ring.block_on(select(recv, sleep)) {
                Either::Right((_, recv)) => drop(recv),
                Either::Left(_) => panic!("{what}: the recv finished with nothing sent"),
            }
            a.write_all(b"after the drop").unwrap();
            let (n, buf) = must_arrive(ring, what, ring.recv(&b, vec![0u8; 64]));
            assert_eq!(
                &buf[..n.unwrap()],
                b"after the drop",
                "{what}, round {round}"
            );
        }
    });
}

/// A task receiving on 64 sockets at once, aborted; then `send` bytes to each.
fn abort_task_with_64_recvs(ring: &Ring, what: &str, turn_first: bool) {
    let socks = pairs(64);
    let (mut writers, readers): (Vec<StdUnix>, Vec<UnixStream>) = socks.into_iter().unzip();
    let readers = Rc::new(readers);
    let (r, rs) = (safer_ring::RingRef::clone(ring), readers.clone());
    let task = ring.spawn(async move {
        let recvs = rs.iter().map(|b| r.recv(b, vec![0u8; 64]));
        futures_util::future::join_all(recvs).await
    });
    // Let the task push (and a turn submit) its 64 receives.
    ring.block_on(ring.sleep(Duration::from_millis(5))).unwrap();
    assert!(!task.is_finished(), "{what}");
    task.abort();
    if turn_first {
        // The aborted task is dropped at the next turn.
        let e = ring.block_on(task).unwrap_err();
        assert!(e.is_cancelled(), "{what}");
    }
    for w in &mut writers {
        w.write_all(b"after the abort").unwrap();
    }
    // Every byte was sent already: a generous bound until the first loss (the verdict), a
    // short one after it (only the count in the message, a lower bound).
    let mut lost = 0;
    for b in readers.iter() {
        let limit = Duration::from_millis(if lost == 0 { 30_000 } else { 200 });
        let got = ring.block_on(ring.timeout(limit, ring.recv(b, vec![0u8; 64])));
        match got {
            Ok((Ok(n), buf)) if buf[..n] == b"after the abort"[..] => {}
            _ => lost += 1,
        }
    }
    assert_eq!(
        lost, 0,
        "{what}: at least {lost} of 64 sockets lost the bytes sent after the abort"
    );
}

#[test]
fn bytes_after_an_aborted_and_dropped_task_reach_the_next_recvs() {
    each(|what, ring, when| {
        if let When::Queued = when {
            return; // one case per ring is enough
        }
        abort_task_with_64_recvs(ring, what, true);
    });
}

/// `abort()` drops an idle task itself: were it dropped at the next executor turn only, that
/// turn would run (complete) its receives first, and bytes sent between `abort()` and the turn
/// would be lost.
#[test]
fn bytes_right_after_abort_reach_the_next_recvs() {
    each(|what, ring, when| {
        if let When::Queued = when {
            return;
        }
        abort_task_with_64_recvs(ring, what, false);
    });
}

/// Drops the ring with `tasks` tasks each awaiting a recv (16 sockets), times the drop, then
/// checks that every byte sent after the drop is still in its socket. Returns how long the
/// drop took and how long setting up those receives took (the same machine's yardstick).
fn drop_ring_with_recvs_in_flight(
    cfg: SaferRingConfig,
    name: &str,
    tasks: usize,
) -> (Duration, Duration) {
    support::fds::raise_nofile();
    let Some(ring) = support::ring_with(cfg) else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let setup = Instant::now();
    let socks = pairs(16);
    let mut outside = Vec::new();
    let mut readers = Vec::new();
    for (a, b) in socks {
        outside.push((a, support::soundness::dup_std(&b)));
        readers.push(Rc::new(b));
    }
    for i in 0..tasks {
        let (r, b) = (ring.clone(), readers[i % 16].clone());
        drop(ring.spawn(async move {
            let _ = r.recv(&*b, vec![0u8; 64]).await;
        }));
    }
    // Every task pushes its recv; the turns submit them.
    for _ in 0..10 {
        ring.block_on(ring.sleep(Duration::from_millis(2))).unwrap();
    }
    let in_flight = ring.in_flight();
    assert!(in_flight >= tasks, "{name}: {in_flight} in flight");
    let setup = setup.elapsed();
    let t = Instant::now();
    drop(ring);
    let took = t.elapsed();
    eprintln!(
        "{name}: dropping the ring with {in_flight} recvs in flight took {took:?} (setup {setup:?})"
    );
    drop(readers);
    for (i, (a, b)) in outside.iter_mut().enumerate() {
        a.write_all(b"after the drop").unwrap();
        let mut buf = [0u8; 64];
        b.set_nonblocking_compat();
        let n = b
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: socket {i}: {e}"));
        assert_eq!(&buf[..n], b"after the drop", "{name}: socket {i}");
    }
    (took, setup)
}

trait NonBlocking {
    fn set_nonblocking_compat(&self);
}

impl NonBlocking for std::fs::File {
    fn set_nonblocking_compat(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(self.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(self.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// "Quick" on the machine's own scale: the drop does about the work of setting the receives
/// up, so it is held to a multiple of that (at least 5 s), capped far below the drain timeout,
/// which is huge so that a drop waiting for cancels that never complete cannot pass.
#[test]
fn dropping_a_ring_with_4000_recvs_in_flight_is_quick_and_loses_nothing_after() {
    let drain = Duration::from_secs(120);
    let no_defer = SaferRingConfig::for_tokio()
        .entries(256)
        .backend(BackendKind::IoUring)
        .drain_timeout(drain);
    let defer = SaferRingConfig::default()
        .entries(256)
        .backend(BackendKind::IoUring)
        .drain_timeout(drain);
    let epoll = SaferRingConfig::default()
        .backend(BackendKind::Epoll)
        .drain_timeout(drain);
    for (name, cfg) in [
        ("io_uring-no-defer", no_defer),
        ("io_uring", defer),
        ("epoll", epoll),
    ] {
        let (took, setup) = drop_ring_with_recvs_in_flight(cfg, name, 4000);
        let bound = (setup * 20).clamp(Duration::from_secs(5), drain / 2);
        assert!(
            took < bound,
            "{name}: the drop took {took:?}, over {bound:?} (20 x the setup's {setup:?})"
        );
    }
}

/// entries(2): every cancel finds the SQ full or nearly so.
#[test]
fn recvs_dropped_while_the_sq_is_full_lose_nothing_after() {
    let small =
        |cfg: SaferRingConfig| support::ring_with(cfg.entries(2).backend(BackendKind::IoUring));
    let mut rings = Vec::new();
    if let Some(r) = small(SaferRingConfig::default()) {
        rings.push(("io_uring entries(2)", r));
    }
    if let Some(r) = small(SaferRingConfig::for_tokio()) {
        rings.push(("io_uring-no-defer entries(2)", r));
    }
    rings.push(("epoll", support::ring(BackendKind::Epoll).unwrap()));
    each_on(rings, |what, ring, when| {
        let socks = pairs(32);
        let mut ops: Vec<_> = socks
            .iter()
            .map(|(_, b)| ring.recv(b, vec![0u8; 64]))
            .collect();
        for op in &mut ops {
            assert!(poll_once(op).is_pending(), "{what}");
        }
        if let When::Submitted = when {
            ring.poll_completions().unwrap();
        }
        drop(ops);
        for (a, _) in &socks {
            (&*a).write_all(b"after the drop").unwrap();
        }
        for (i, (_, b)) in socks.iter().enumerate() {
            let (n, buf) = must_arrive(ring, what, ring.recv(b, vec![0u8; 64]));
            assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}: socket {i}");
        }
    });
}

/// The CQ overflows (more completions than it holds, none reaped) when a receive is dropped:
/// an `io_uring_enter` may then refuse to submit (EBUSY on kernels before 5.19ish), and the
/// cancel must still reach the kernel before bytes sent after the drop.
#[test]
fn a_recv_dropped_while_the_cq_overflows_loses_nothing_after() {
    let small =
        |cfg: SaferRingConfig| support::ring_with(cfg.entries(2).backend(BackendKind::IoUring));
    let mut rings = Vec::new();
    if let Some(r) = small(SaferRingConfig::default()) {
        rings.push(("io_uring entries(2)", r));
    }
    if let Some(r) = small(SaferRingConfig::for_tokio()) {
        rings.push(("io_uring-no-defer entries(2)", r));
    }
    rings.push(("epoll", support::ring(BackendKind::Epoll).unwrap()));
    each_on(rings, |what, ring, _| {
        let cq = ring.info().setup.map_or(0, |s| s.cq_entries as usize);
        let fillers = pairs(cq + 8);
        let (mut va, vb) = pairs(1).pop().unwrap();
        let mut ops: Vec<_> = fillers
            .iter()
            .map(|(_, b)| ring.recv(b, vec![0u8; 8]))
            .collect();
        let mut victim = ring.recv(&vb, vec![0u8; 64]);
        for op in &mut ops {
            assert!(poll_once(op).is_pending(), "{what}");
        }
        assert!(poll_once(&mut victim).is_pending(), "{what}");
        ring.poll_completions().unwrap();
        assert!(poll_once(&mut victim).is_pending(), "{what}");
        // Every filler completes; none is reaped, so the CQ overflows.
        for (a, _) in &fillers {
            (&*a).write_all(b"x").unwrap();
        }
        drop(victim);
        va.write_all(b"after the drop").unwrap();
        let (n, buf) = must_arrive(ring, what, ring.recv(&vb, vec![0u8; 64]));
        assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
        for op in ops {
            let (n, _) = ring.block_on(op);
            assert_eq!(n.unwrap(), 1, "{what}");
        }
    });
}

#[cfg(feature = "tokio")]
#[test]
fn recvs_dropped_by_select_under_drive_on_tokio_lose_nothing_after() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let Some(ring) = support::ring_with(SaferRingConfig::for_tokio().backend(kind)) else {
            continue;
        };
        let ring = Rc::new(ring);
        support::on_local_tokio(async {
            let driver = ring.clone();
            tokio::task::spawn_local(async move { driver.drive_on_tokio().await.unwrap() });
            for round in 0..20 {
                let (mut a, b) = pairs(1).pop().unwrap();
                let recv = Box::pin(ring.recv(&b, vec![0u8; 64]));
                let sleep = Box::pin(tokio::time::sleep(Duration::from_millis(1)));
                match select(recv, sleep).await {
                    Either::Right((_, recv)) => drop(recv),
                    Either::Left(_) => panic!("{kind:?}: the recv finished with nothing sent"),
                }
                a.write_all(b"after the drop").unwrap();
                let got =
                    tokio::time::timeout(Duration::from_secs(30), ring.recv(&b, vec![0u8; 64]))
                        .await
                        .unwrap_or_else(|_| panic!("{kind:?}, round {round}: the bytes were lost"));
                let (n, buf) = got;
                assert_eq!(
                    &buf[..n.unwrap()],
                    b"after the drop",
                    "{kind:?}, round {round}"
                );
            }
            // A task dropped by tokio's abort, with its recv in flight.
            let (mut a, b) = pairs(1).pop().unwrap();
            let b = Rc::new(b);
            let (r, b2) = (ring.clone(), b.clone());
            let polled = Rc::new(std::cell::Cell::new(false));
            let polled2 = polled.clone();
            let t = tokio::task::spawn_local(async move {
                // Set in the same poll that pushes the recv.
                polled2.set(true);
                let _ = r.recv(&*b2, vec![0u8; 64]).await;
            });
            // Abort only once the recv is in flight (a sleep may end before tokio ran the task).
            while !polled.get() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            t.abort();
            let _ = t.await; // dropped now
            a.write_all(b"after the abort").unwrap();
            let got = tokio::time::timeout(Duration::from_secs(30), ring.recv(&*b, vec![0u8; 64]))
                .await
                .unwrap_or_else(|_| panic!("{kind:?}: the bytes after the abort were lost"));
            assert_eq!(&got.1[..got.0.unwrap()], b"after the abort", "{kind:?}");
        });
    }
}
