//! Dropping futures mid-flight, timeouts, and dropping the ring with work in flight.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::support;
use crate::support::soundness::{dup_std, pending};

const SIZE: usize = 4096;

backend_test!(dropped_read_never_writes_into_freed_memory, |ring| {
    let (r, w) = ring.pipe().unwrap();
    let mut op = ring.read(&r, vec![0u8; SIZE]);
    assert!(pending(&mut op), "read on an empty pipe must pend");
    ring.poll_completions().unwrap();
    drop(op); // buffer moves into the ring; a cancel is queued
    let fresh = vec![0u8; SIZE]; // likely reuses the freed size class, if it were freed
    dup_std(&w).write_all(&[0xAB; SIZE]).unwrap();
    // Until the read's completion is in, by the clock: where an io-wq worker runs it (5.10),
    // it ends when that thread gets to run, which a count of turns does not wait for.
    let t = std::time::Instant::now();
    while ring.in_flight() > 0 && t.elapsed() < Duration::from_secs(30) {
        ring.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    ring.block_on(async { ring.nop().await.unwrap() });
    assert!(
        fresh.iter().all(|&b| b == 0),
        "new allocation was written by a cancelled read"
    );
    assert_eq!(
        ring.in_flight(),
        0,
        "the cancelled read completed and its slot was freed"
    );
    // What the cancelled read did not take is still in the pipe. Usually that is everything,
    // but the cancel can lose the race (5.10 runs pipe reads on an io-wq worker, which the
    // write may wake first): then the read took some bytes into its own, still owned, buffer.
    let mut got = vec![0u8; SIZE];
    let mut rs = dup_std(&r);
    // Non-blocking, so an emptied pipe answers WouldBlock (io_uring rings use blocking fds).
    // SAFETY: fcntl on an fd we own, no pointers.
    unsafe {
        let fl = libc::fcntl(rs.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(rs.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut total = 0;
    loop {
        match rs.read(&mut got[total..]) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        if total == SIZE {
            break;
        }
    }
    assert!(got[..total].iter().all(|&b| b == 0xAB));
    if total < SIZE {
        eprintln!(
            "the cancel lost the race: the read took {} bytes",
            SIZE - total
        );
    }
});

backend_test!(ring_dropped_with_orphaned_ops_drains_them, |ring| {
    let (r, w) = ring.pipe().unwrap();
    let mut ops: Vec<_> = (0..8).map(|_| ring.read(&r, vec![0u8; SIZE])).collect();
    for op in &mut ops {
        assert!(pending(op));
    }
    drop(ops); // all orphaned, none completed yet
    drop(ring); // cancels and waits for every one of them
    let fresh: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; SIZE]).collect();
    let mut ws = dup_std(&w);
    ws.write_all(&[0xCD; SIZE]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(fresh.iter().all(|v| v.iter().all(|&b| b == 0)));
    // The orphans' clones of the read end were released: closing ours leaves no reader.
    drop(r);
    let e = ws.write_all(b"x").unwrap_err();
    assert_eq!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe,
        "a dropped op kept the fd open"
    );
});

backend_test!(ring_dropped_with_forgotten_op_in_flight, |ring| {
    let (r, w) = ring.pipe().unwrap();
    let mut op = ring.read(&r, vec![0u8; SIZE]);
    assert!(pending(&mut op));
    std::mem::forget(op); // its buffer is leaked, so the kernel may keep it
    assert_eq!(ring.in_flight(), 1);
    drop(ring); // must cancel and drain, not hang
    dup_std(&w).write_all(b"after").unwrap();
    let mut got = [0u8; 5];
    dup_std(&r).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"after", "the cancelled read consumed nothing");
});

backend_test!(accept_completed_after_drop_is_closed, |ring| {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The connection is already in the backlog, so the accept succeeds whatever the cancel does.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    let mut op = ring.accept(&listener);
    pending(&mut op); // accepted in the kernel or inline; never seen by us
    drop(op);
    // By the clock, generously: the cancel's completion may take long on a slow machine.
    let t = std::time::Instant::now();
    while ring.in_flight() > 0 && t.elapsed() < Duration::from_secs(30) {
        ring.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ring.in_flight(), 0);
    // The server side was closed: the client reads EOF (or a reset).
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    match client.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected EOF, got {other:?}"),
    }
});

backend_test!(op_timeout_returns_timed_out_and_buffer, |ring| {
    let (a, _b) = ring.unix_pair().unwrap();
    ring.block_on(async {
        let t = std::time::Instant::now();
        let (res, buf) = ring
            .recv(&a, vec![9u8; 16])
            .timeout(Duration::from_millis(30))
            .await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(buf.len(), 16, "buffer handed back");
        assert!(t.elapsed() >= Duration::from_millis(25));
        // An op that finishes in time is unaffected by its timeout.
        let (res, _) = ring
            .send(&a, b"x".to_vec())
            .timeout(Duration::from_secs(5))
            .await;
        assert_eq!(res.unwrap(), 1);
    });
});

backend_test!(sleep_waits, |ring| {
    ring.block_on(async {
        let t = std::time::Instant::now();
        ring.sleep(Duration::from_millis(40)).await.unwrap();
        let e = t.elapsed();
        // The lower bound is exact (a timer never fires early); the upper one only catches a
        // sleep that never ends or is off by orders of magnitude, not a slow machine.
        assert!(
            e >= Duration::from_millis(39) && e < Duration::from_secs(20),
            "{e:?}"
        );
    });
});

backend_test!(dropped_sleep_is_cancelled, |ring| {
    let mut s = ring.sleep(Duration::from_secs(3600));
    assert!(pending(&mut s));
    drop(s);
    let t = std::time::Instant::now();
    while ring.in_flight() > 0 {
        ring.poll_completions().unwrap();
        // A cancel that never lands keeps the hour-long sleep: any bound far below it does.
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "cancel did not complete"
        );
    }
});

backend_test!(flood_of_nops_with_tiny_queues_loses_nothing, |ring| {
    drop(ring);
    let cfg = safer_ring::SaferRingConfig::default()
        .entries(4)
        .cq_entries(4);
    for kind in [
        safer_ring::BackendKind::IoUring,
        safer_ring::BackendKind::Epoll,
    ] {
        let Some(ring) = support::ring_with(cfg.clone().backend(kind)) else {
            continue;
        };
        let ring = std::rc::Rc::new(ring);
        let done = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let tasks = support::Tasks::default();
        for _ in 0..2000 {
            let (r, d) = (ring.clone(), done.clone());
            tasks.spawn(&ring, async move {
                // Two CQEs per op on io_uring (op + link timeout): overflows a 4-entry CQ.
                // None may time out: a hang bound, as 2000 nops through a 4-entry queue can
                // take long on a slow machine.
                r.nop().timeout(Duration::from_secs(120)).await.unwrap();
                d.set(d.get() + 1);
            });
        }
        ring.block_on(async {
            while done.get() < 2000 {
                tasks.check();
                ring.nop().await.unwrap();
            }
        });
        assert_eq!(ring.in_flight(), 0);
    }
});
