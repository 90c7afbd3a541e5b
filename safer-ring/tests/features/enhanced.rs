//! Progressive enhancement: the same results on the native path, with the feature forced off,
//! and on epoll; demotion; strict mode. Each test asserts the path it expects on this kernel.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;
use std::time::Duration;

use safer_ring::features;
use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};

use crate::support;

const CONNS: usize = 1000;

/// Accepts `CONNS` connections through `accept_multiple` while tasks connect; returns the ring.
fn accept_many(ring: Ring) -> Rc<Ring> {
    let ring = Rc::new(ring);
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connected = Rc::new(Cell::new(0));
    let tasks = support::Tasks::default();
    for _ in 0..CONNS {
        let (r, c) = (ring.clone(), connected.clone());
        tasks.spawn(&ring, async move {
            let s = r.connect_tcp(addr).await.unwrap();
            let (n, _) = r.send(&s, b"x".to_vec()).await;
            n.unwrap();
            // Stay connected until the server has read our byte and answered.
            let (n, buf) = r.recv(&s, Vec::with_capacity(4)).await;
            assert_eq!((n.unwrap(), &buf[..]), (1, &b"y"[..]));
            c.set(c.get() + 1);
        });
    }
    ring.block_on(async {
        let mut stream = ring.accept_multiple(&listener);
        for _ in 0..CONNS {
            let s = stream.next().await.unwrap().unwrap();
            let (n, buf) = ring.recv(&s, Vec::with_capacity(4)).await;
            assert_eq!((n.unwrap(), &buf[..]), (1, &b"x"[..]));
            let (n, _) = ring.send(&s, b"y".to_vec()).await;
            n.unwrap();
        }
        while connected.get() < CONNS {
            tasks.check();
            ring.sleep(Duration::from_millis(1)).await.unwrap();
        }
    });
    assert_eq!(connected.get(), CONNS);
    ring
}

fn expect_path(ring: &Ring, native: bool) {
    let s = ring.enhancement_stats(Feature::MultiShotAccept);
    if native {
        assert_eq!((s.native, s.fallback), (CONNS as u64, 0), "{s:?}");
    } else {
        assert_eq!((s.native, s.fallback), (0, CONNS as u64), "{s:?}");
    }
}

#[test]
fn accept_multiple_native_where_the_kernel_has_it() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    // From detection: no test in this binary demotes a feature the ring uses (features.rs
    // demotes ExtArg, which it does not; tests/demotion.rs demotes, in its own process).
    let native = features::detected()
        .available
        .contains(Feature::MultiShotAccept);
    assert!(!features::is_demoted(Feature::MultiShotAccept));
    let version = features::detected().inputs.version.unwrap();
    // The kernel decides: 5.19+ (or a backport that the probe/try saw) runs natively.
    assert_eq!(
        ring.uses_native(Feature::MultiShotAccept),
        native,
        "on {version}"
    );
    let ring = accept_many(ring);
    expect_path(&ring, native);
    eprintln!("accept_multiple on {version}: native={native}");
}

#[test]
fn accept_multiple_with_the_feature_forced_off() {
    let off = support::uring_wishing(Feature::MultiShotAccept, Some(false));
    let Some(ring) = support::ring_with(off) else {
        return;
    };
    assert!(!ring.uses_native(Feature::MultiShotAccept));
    expect_path(&accept_many(ring), false);
}

#[test]
fn accept_multiple_on_epoll() {
    let ring = support::ring(BackendKind::Epoll).unwrap();
    assert!(ring.features().is_empty(), "epoll uses no io_uring feature");
    expect_path(&accept_many(ring), false);
}

backend_test!(dropping_the_stream_closes_later_connections, |ring| {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    ring.block_on(async {
        let mut stream = ring.accept_multiple(&listener);
        let mut first = std::net::TcpStream::connect(addr).unwrap();
        let s = stream.next().await.unwrap().unwrap();
        // Two more connections arrive; the stream is dropped before handing them out.
        let mut late: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        for _ in 0..5 {
            ring.sleep(Duration::from_millis(2)).await.unwrap();
        }
        drop(stream);
        for _ in 0..5 {
            ring.sleep(Duration::from_millis(2)).await.unwrap();
        }
        // Connections the kernel accepted for the dropped stream were closed (EOF), or are
        // still in the backlog (never accepted). A silent one is only allowed if the listener
        // can still accept it: an fd leaked by the dropped stream would be silent and gone
        // from the backlog.
        let mut in_backlog = Vec::new();
        for c in &mut late {
            c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut b = [0u8; 1];
            match c.read(&mut b) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => in_backlog.push(c),
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut accepted = Vec::new();
        for _ in 0..in_backlog.len() {
            // In the backlog: the bound only ends the wait for a leaked one.
            let s = ring
                .timeout(Duration::from_secs(30), ring.accept(&listener))
                .await
                .expect("a silent connection is neither closed nor in the backlog: leaked")
                .unwrap();
            accepted.push(s);
        }
        drop(accepted);
        for c in in_backlog {
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let r = c.read(&mut [0u8; 1]);
            assert!(
                matches!(&r, Ok(0))
                    || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
                "closed once accepted and dropped: {r:?}"
            );
        }
        drop(s);
        first
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(
            first.read(&mut [0u8; 1]).unwrap(),
            0,
            "the handed-out stream closes on drop"
        );
    });
    // One more turn reaps the timers the accept timeouts above cancelled.
    ring.block_on(ring.nop()).unwrap();
    assert_eq!(ring.in_flight(), 0, "multishot cancelled and drained");
});

#[test]
fn fallback_timeout_reports_timed_out_and_goes_on() {
    let pe = ProgressiveEnhancementConfig::default()
        .feature(Feature::MultiShotAccept, Some(false))
        .fallback_timeout(Duration::from_millis(30));
    let rings = [BackendKind::IoUring, BackendKind::Epoll]
        .into_iter()
        .filter_map(|b| {
            support::ring_with(
                SaferRingConfig::default()
                    .backend(b)
                    .enhancement(pe.clone()),
            )
        });
    for ring in rings {
        let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        ring.block_on(async {
            let mut stream = ring.accept_multiple(&listener);
            let t = std::time::Instant::now();
            let e = stream.next().await.unwrap().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{}", ring.backend());
            assert!(
                t.elapsed() >= Duration::from_millis(25),
                "{:?}",
                t.elapsed()
            );
            let _c = std::net::TcpStream::connect(addr).unwrap();
            stream
                .next()
                .await
                .unwrap()
                .expect("accepting goes on after the timeout");
        });
    }
}

// Three connected, asked for ten: all three come and the timeout ends the wait. A slow machine
// may need longer than the first deadline for the three accepts: a call that ran out its
// deadline with fewer is retried with twice the time; one that returned early with fewer fails.
backend_test!(accept_up_to_collects_within_timeout, |ring| {
    let mut timeout = Duration::from_millis(200);
    loop {
        let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let t = std::time::Instant::now();
        let got = ring
            .block_on(ring.accept_up_to(&listener, 10, timeout))
            .unwrap();
        let took = t.elapsed();
        if got.len() == 3 {
            assert!(
                took >= timeout,
                "returned after {took:?}, before {timeout:?}"
            );
            break;
        }
        assert!(
            took >= timeout && timeout < Duration::from_secs(20),
            "{} of 3 connections in {took:?} with a timeout of {timeout:?}",
            got.len()
        );
        timeout *= 2;
    }
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    ring.block_on(async {
        let got = ring
            .accept_up_to(&listener, 0, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(got.is_empty());
    });
});

#[test]
fn strict_mode_fails_where_the_feature_is_missing() {
    let pe = ProgressiveEnhancementConfig::default()
        .feature(Feature::MultiShotAccept, Some(true))
        .strict(true);
    let cfg = SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .enhancement(pe);
    let have = features::detected()
        .available
        .contains(Feature::MultiShotAccept);
    match Ring::with_config(cfg) {
        Ok(r) => {
            assert!(have, "strict ring created without the feature");
            assert!(r.uses_native(Feature::MultiShotAccept));
        }
        Err(safer_ring::SaferRingError::BackendUnavailable { .. }) => {
            assert!(features::detected().io_uring_available().is_err());
        }
        Err(e) => {
            assert!(!have, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("MultiShotAccept") && msg.contains("5.19.0"),
                "{msg}"
            );
            eprintln!("strict mode: {msg}");
        }
    }
    // On epoll the feature is never there: strict fails everywhere.
    let pe = ProgressiveEnhancementConfig::default()
        .feature(Feature::MultiShotAccept, Some(true))
        .strict(true);
    let e = Ring::with_config(
        SaferRingConfig::default()
            .backend(BackendKind::Epoll)
            .enhancement(pe),
    )
    .unwrap_err();
    assert!(e.to_string().contains("epoll"), "{e}");
}

#[test]
fn registered_ring_fd_where_available() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let have = features::is_available(Feature::RegisteredRingFd);
    assert_eq!(
        ring.registered_ring_fd().is_some(),
        have,
        "kernel {:?}",
        features::detected().inputs.version
    );
    // Every enter now goes through the registered index: the ring still works.
    ring.block_on(async {
        for _ in 0..100 {
            ring.nop().await.unwrap();
        }
        ring.sleep(Duration::from_millis(1)).await.unwrap();
    });
    // Two rings on one thread get distinct indexes; dropping one unregisters it.
    if let (Some(a), Some(b)) = (
        ring.registered_ring_fd(),
        Ring::new(4).unwrap().registered_ring_fd(),
    ) {
        assert_ne!(a, b);
    }
    let plain = Ring::with_config(support::uring_wishing(
        Feature::RegisteredRingFd,
        Some(false),
    ))
    .unwrap();
    assert_eq!(plain.registered_ring_fd(), None);
    plain.block_on(async { plain.nop().await.unwrap() });
    let epoll = support::ring(BackendKind::Epoll).unwrap();
    assert_eq!(epoll.registered_ring_fd(), None);
}

const TEN_MB: usize = 10 * 1024 * 1024;

/// Echoes `size` bytes over loopback TCP: the server receives with `recv_enhanced` if
/// `enhanced_recv` and sends back with `send_enhanced` if `enhanced_send`; the client sends the
/// same way. Returns the ring, what was sent and what came back.
fn echo(
    ring: Ring,
    size: usize,
    enhanced_send: bool,
    enhanced_recv: bool,
) -> (Rc<Ring>, Vec<u8>, Vec<u8>) {
    async fn send_with(
        ring: &Ring,
        s: &safer_ring::TcpStream,
        b: Vec<u8>,
        enhanced: bool,
    ) -> (std::io::Result<usize>, Vec<u8>) {
        if enhanced {
            ring.send_enhanced(s, b).await
        } else {
            ring.send(s, b).await
        }
    }
    let ring = Rc::new(ring);
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let r2 = ring.clone();
    let server = ring.spawn(async move {
        let (s, _) = r2.accept(&listener).await.unwrap();
        let mut buf = Vec::with_capacity(256 * 1024);
        loop {
            let (n, b) = if enhanced_recv {
                r2.recv_enhanced(&s, buf).await
            } else {
                r2.recv(&s, buf).await
            };
            if n.unwrap() == 0 {
                break;
            }
            let (w, b) = send_with(&r2, &s, b, enhanced_send).await;
            assert_eq!(w.unwrap(), b.len(), "loopback sends whole chunks");
            buf = b;
        }
        r2.shutdown(&s, std::net::Shutdown::Write).await.unwrap();
    });
    let sent = data.clone();
    let back = ring.block_on(async {
        let c = Rc::new(ring.connect_tcp(addr).await.unwrap());
        let (rc, c2) = (ring.clone(), c.clone());
        let sender = ring.spawn(async move {
            let mut off = 0;
            let mut chunk = Vec::with_capacity(1 << 20);
            while off < sent.len() {
                chunk.clear();
                chunk.extend_from_slice(&sent[off..(off + (1 << 20)).min(sent.len())]);
                let (n, b) = send_with(&rc, &c2, chunk, enhanced_send).await;
                off += n.unwrap();
                chunk = b;
            }
            rc.shutdown(&*c2, std::net::Shutdown::Write).await.unwrap();
        });
        let mut back = Vec::with_capacity(size);
        loop {
            let (n, b) = ring.recv(&*c, Vec::with_capacity(256 * 1024)).await;
            if n.unwrap() == 0 {
                break;
            }
            back.extend_from_slice(&b);
        }
        sender.await.unwrap();
        server.await.unwrap();
        back
    });
    (ring, data, back)
}

fn echo_10mb(ring: Ring) -> (Rc<Ring>, Vec<u8>, Vec<u8>) {
    echo(ring, TEN_MB, true, false)
}

#[test]
fn send_enhanced_native_where_available() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let native = features::detected()
        .available
        .contains(Feature::SendZeroCopy);
    assert_eq!(ring.uses_native(Feature::SendZeroCopy), native);
    let (ring, data, back) = echo_10mb(ring);
    assert!(back == data, "10 MB echoed byte-exact");
    let s = ring.enhancement_stats(Feature::SendZeroCopy);
    if native {
        assert!(s.native > 0, "{s:?}");
    } else {
        assert_eq!(s.native, 0, "{s:?}");
    }
}

#[test]
fn send_enhanced_forced_off_and_on_epoll() {
    for ring in support::fallback_rings(Feature::SendZeroCopy) {
        let (ring, data, back) = echo_10mb(ring);
        assert!(
            back == data,
            "10 MB echoed byte-exact on {}",
            ring.backend()
        );
        let s = ring.enhancement_stats(Feature::SendZeroCopy);
        assert_eq!(s.native, 0);
        assert!(s.fallback > 0);
    }
}

#[test]
fn send_enhanced_on_unix_socket_falls_back() {
    // Unix sockets refuse zero-copy (EOPNOTSUPP): the fallback sends the same bytes.
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let (a, b) = ring.unix_pair().unwrap();
    let payload = vec![7u8; 64 * 1024];
    ring.block_on(async {
        let (n, back) = ring.send_enhanced(&a, payload.clone()).await;
        assert_eq!(n.unwrap(), back.len());
        let mut got = Vec::new();
        while got.len() < payload.len() {
            let (n, buf) = ring.recv(&b, Vec::with_capacity(128 * 1024)).await;
            n.unwrap();
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, payload);
    });
    let s = ring.enhancement_stats(Feature::SendZeroCopy);
    assert_eq!(s.native + s.fallback, 1, "{s:?}");
}

/// Echo 2 MB where the server reads with `recv_enhanced`; returns the ring and both sides.
fn echo_recv_enhanced(ring: Ring) -> (Rc<Ring>, Vec<u8>, Vec<u8>) {
    echo(ring, 2 * 1024 * 1024, false, true)
}

#[test]
fn recv_enhanced_native_forced_off_and_epoll() {
    if let Some(ring) = support::ring(BackendKind::IoUring) {
        // From detection, not from the ring: a demotion elsewhere in this process must not
        // quietly turn this into a fallback test (demoting tests live in tests/demotion.rs).
        let detected = |f| features::detected().available.contains(f);
        let rings = detected(Feature::BufferRings);
        let multi = rings && detected(Feature::MultiShotRecv);
        assert_eq!(ring.uses_native(Feature::BufferRings), rings);
        assert_eq!(ring.uses_native(Feature::MultiShotRecv), multi);
        let (ring, data, back) = echo_recv_enhanced(ring);
        assert!(back == data, "byte-exact");
        // Tier 1: multishot recv; tier 2: one buffer-select recv per call.
        let m = ring.enhancement_stats(Feature::MultiShotRecv);
        let b = ring.enhancement_stats(Feature::BufferRings);
        assert_eq!(m.native > 0, multi, "{m:?}");
        assert_eq!(b.native > 0, rings && !multi, "{b:?}");
    }
    for ring in support::fallback_rings(Feature::BufferRings) {
        let (ring, data, back) = echo_recv_enhanced(ring);
        assert!(back == data, "byte-exact on {}", ring.backend());
        assert_eq!(ring.enhancement_stats(Feature::BufferRings).native, 0);
        assert_eq!(ring.enhancement_stats(Feature::MultiShotRecv).native, 0);
    }
}

/// Tier 2 on its own: multishot recv off, one buffer-select recv per call (the 5.19 path).
#[test]
fn recv_enhanced_buffer_select_tier() {
    let Some(ring) =
        support::ring_with(support::uring_wishing(Feature::MultiShotRecv, Some(false)))
    else {
        return;
    };
    let rings = ring.uses_native(Feature::BufferRings);
    let (ring, data, back) = echo_recv_enhanced(ring);
    assert!(back == data, "byte-exact");
    assert_eq!(ring.enhancement_stats(Feature::MultiShotRecv).native, 0);
    let b = ring.enhancement_stats(Feature::BufferRings);
    assert_eq!(b.native > 0, rings, "{b:?}");
}

#[test]
fn dropped_recv_enhanced_returns_its_buffer() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::BufferRings) {
        support::skip("no buffer rings on this kernel: recv_enhanced is a plain recv here");
        return;
    }
    let (a, b) = ring.unix_pair().unwrap();
    ring.block_on(async {
        // 200 receives that get data but are dropped before reading it: each consumed a
        // provided buffer (64 in the ring), which must go back or later receives starve.
        for i in 0..200u32 {
            let (n, _) = ring.send(&b, i.to_le_bytes().to_vec()).await;
            n.unwrap();
            let mut f = std::pin::pin!(ring.recv_enhanced(&a, Vec::with_capacity(16)));
            let _ = std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await;
            ring.nop().await.unwrap(); // let the completion arrive while nobody reads it
        }
        let before = ring.enhancement_stats(Feature::BufferRings);
        for _ in 0..100 {
            let (n, _) = ring.send(&b, b"x".to_vec()).await;
            n.unwrap();
            let (n, buf) = ring.recv_enhanced(&a, Vec::with_capacity(16)).await;
            assert!(n.unwrap() >= 1 && !buf.is_empty());
        }
        let after = ring.enhancement_stats(Feature::BufferRings);
        assert_eq!(
            after.fallback, before.fallback,
            "no ENOBUFS fallback: buffers were recycled"
        );
    });
}

use std::future::Future;

#[test]
fn fallback_failure_names_both_paths_and_feature_info() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::SendZeroCopy) {
        support::skip("SendZeroCopy not native here: the native-failure path cannot run");
        return;
    }
    let (res, buf) = ring.block_on(ring.execute_with_fallback(
        Feature::SendZeroCopy,
        vec![1u8],
        |b| async move {
            (
                Err::<(), _>(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
                b,
            )
        },
        |b| async move { (Err(std::io::Error::from_raw_os_error(libc::EPIPE)), b) },
    ));
    let e = res.unwrap_err();
    assert_eq!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe,
        "the fallback's kind is kept"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("SendZeroCopy") && msg.contains("fallback failed"),
        "{msg}"
    );
    assert_eq!(buf, [1], "buffer back");

    let info = ring.feature_info(Feature::SendZeroCopy);
    assert!(info.native && info.backend_offers && info.status.available);
    assert_eq!(info.required, safer_ring::KernelVersion::new(6, 0, 0));
    let epoll = support::ring(BackendKind::Epoll).unwrap();
    assert!(!epoll.feature_info(Feature::SendZeroCopy).backend_offers);
}

#[test]
fn dropping_a_socket_cancels_its_multishot_recv() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    if !(ring.uses_native(Feature::MultiShotRecv) && ring.uses_native(Feature::BufferRings)) {
        support::skip("no multishot recv here: nothing stays armed on a socket");
        return;
    }
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    ring.block_on(async {
        let (s, _) = ring.accept(&listener).await.unwrap();
        std::io::Write::write_all(&mut client, &[9u8; 40_000]).unwrap();
        // One small read arms the multishot; more data stays queued in provided buffers.
        let (n, buf) = ring.recv_enhanced(&s, Vec::with_capacity(100)).await;
        assert_eq!((n.unwrap(), buf[0]), (100, 9));
        assert!(ring.in_flight() >= 1, "multishot armed");
        drop(s);
        // By the clock, generously: a cancel that never lands is what fails.
        let t = std::time::Instant::now();
        while ring.in_flight() > 0 && t.elapsed() < Duration::from_secs(30) {
            ring.sleep(Duration::from_millis(2)).await.unwrap();
        }
        assert_eq!(ring.in_flight(), 0, "multishot cancelled");
    });
    // The kernel no longer holds the socket: the peer sees it closed.
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut b = [0u8; 16];
    match client.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("socket still open: {other:?}"),
    }
    // Buffers held by the queued chunks went back: the ring still serves 64+ receives.
    let (a, b2) = ring.unix_pair().unwrap();
    ring.block_on(async {
        for _ in 0..100 {
            let (n, _) = ring.send(&b2, b"y".to_vec()).await;
            n.unwrap();
            let (n, _) = ring.recv_enhanced(&a, Vec::with_capacity(8)).await;
            assert!(n.unwrap() >= 1);
        }
    });
    assert_eq!(
        ring.enhancement_stats(Feature::MultiShotRecv).fallback,
        0,
        "no ENOBUFS"
    );
}

// Receive bundles (IORING_RECVSEND_BUNDLE, Linux 6.10+) under `recv_enhanced`: one multishot
// recv completion fills several provided buffers in ring order. Large loopback TCP streams come
// out byte-exact with bundles on, switched off, and on epoll; a reader dropped in the middle of
// a bundle leaves no buffer out. The kernel matrix runs this file on 6.1 (no bundles): there
// the fallback (one buffer per completion) must give the same bytes.
mod bundles {

    use std::io::{ErrorKind, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use safer_ring::{BackendKind, Feature, Ring, features};

    use super::support::{self, pattern};

    const MIB: usize = 1024 * 1024;

    /// A writer thread sends `data` over loopback TCP (in large writes, so the reader finds
    /// several buffers' worth queued); the ring receives it with `recv_enhanced`, cycling through
    /// user buffer sizes that do not divide the provided buffers' 16 KiB (so partly read buffers
    /// are carried over from call to call, across a bundle's buffers). Reads at most `stop_after`
    /// bytes, then drops the connection and waits until every provided buffer is back (the
    /// dropped multishot's cancel completes on a later turn of the ring). Returns what was received
    /// and how many provided buffers were out (read partly, or queued) when the reader stopped.
    fn receive(ring: &Ring, data: &[u8], stop_after: usize) -> (Vec<u8>, usize) {
        let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let send = data.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_write_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                let mut rest = &send[..];
                // A reader that stopped early (the dropped-reader test) reads no more: give up then.
                while !rest.is_empty() && !stop.load(Ordering::Relaxed) {
                    match c.write(&rest[..rest.len().min(256 * 1024)]) {
                        Ok(n) => rest = &rest[n..],
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => return, // the reader hung up
                    }
                }
            }
        });
        let (got, out_at_drop) = ring.block_on(async {
            let (s, _) = ring.accept(&listener).await.unwrap();
            // Data piles up before the first receive is armed, so its first completion finds more
            // than one buffer's worth queued (by construction, not by a deadline).
            let want = data.len().min(48 * 1024); // three buffers, well inside a fresh socket's receive window
            let deadline = Instant::now() + Duration::from_secs(10);
            while queued(&s) < want {
                assert!(
                    Instant::now() < deadline,
                    "the writer never queued {want} bytes"
                );
                ring.sleep(Duration::from_millis(1)).await.unwrap();
            }
            let sizes = [1000, 64 * 1024, 5000, 40_000, 16 * 1024 + 1];
            let mut got = Vec::with_capacity(data.len());
            let mut out_at_drop = 0;
            for i in 0.. {
                if got.len() >= stop_after {
                    out_at_drop = ring.provided_buffers_out();
                    break;
                }
                let (n, buf) = ring
                    .recv_enhanced(&s, Vec::with_capacity(sizes[i % sizes.len()]))
                    .await;
                let n = n.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            (got, out_at_drop)
        });
        stop.store(true, Ordering::Relaxed);
        wait_all_buffers_back(ring);
        writer.join().unwrap();
        (got, out_at_drop)
    }

    /// Bytes queued for reading on `s`.
    fn queued(s: &impl std::os::fd::AsRawFd) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer we pass.
        let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
        assert_eq!(r, 0, "FIONREAD: {}", std::io::Error::last_os_error());
        n as usize
    }

    /// Turns the ring until every provided buffer is back with the kernel (the cancel of a dropped
    /// reader's multishot completes asynchronously); panics after 5 s.
    fn wait_all_buffers_back(ring: &Ring) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while ring.provided_buffers_out() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} provided buffers never given back",
                ring.provided_buffers_out()
            );
            ring.block_on(ring.sleep(Duration::from_millis(5))).unwrap();
        }
    }

    /// Whether this kernel has bundles (from detection: a demotion elsewhere must not turn this
    /// into a fallback test unnoticed).
    fn kernel_has_bundles() -> bool {
        let a = &features::detected().available;
        a.contains(Feature::RecvSendBundle)
            && a.contains(Feature::MultiShotRecv)
            && a.contains(Feature::BufferRings)
    }

    #[test]
    fn bundles_receive_a_large_stream_byte_exact() {
        let Some(ring) = support::ring(BackendKind::IoUring) else {
            return;
        };
        let bundles = kernel_has_bundles();
        assert_eq!(ring.uses_native(Feature::RecvSendBundle), bundles);
        if !bundles {
            // Not a skip: the stream below is then the fallback's (one buffer per completion).
            eprintln!("no receive bundles on this kernel (6.10+): checking the fallback");
        }
        let data = pattern(8 * MIB, 1);
        let (got, _) = receive(&ring, &data, usize::MAX);
        assert!(
            got == data,
            "byte-exact ({} of {} bytes)",
            got.len(),
            data.len()
        );
        let b = ring.enhancement_stats(Feature::RecvSendBundle);
        let m = ring.enhancement_stats(Feature::MultiShotRecv);
        if bundles {
            // `native` counts completions that filled more than one buffer: none without the
            // bundle flag on the SQE (a plain multishot recv fills one buffer per completion).
            assert!(b.native > 0, "no completion filled several buffers: {b:?}");
            assert_eq!(b.fallback, 0, "{b:?}");
            assert!(m.native > 0, "{m:?}");
            // Fewer completions than buffers: 8 MiB fills at least 512 buffers of 16 KiB; the
            // calls that read a multi-buffer completion are counted, and each spans 2+ buffers.
            eprintln!("bundles: {b:?}; multishot recv: {m:?}");
        } else {
            assert_eq!(b.native, 0, "{b:?}");
        }
    }

    #[test]
    fn bundles_switched_off_give_the_same_bytes() {
        let cfg = support::uring_wishing(Feature::RecvSendBundle, Some(false));
        let mut rings: Vec<Ring> = support::ring_with(cfg).into_iter().collect();
        rings.extend(support::ring(BackendKind::Epoll));
        for ring in rings {
            assert!(!ring.uses_native(Feature::RecvSendBundle));
            let data = pattern(6 * MIB, 2);
            let (got, _) = receive(&ring, &data, usize::MAX);
            assert!(got == data, "byte-exact on {}", ring.backend());
            assert_eq!(ring.provided_buffers_out(), 0);
            let b = ring.enhancement_stats(Feature::RecvSendBundle);
            assert_eq!(b.native, 0, "{}: {b:?}", ring.backend());
            // On io_uring with multishot recv, the plain (one buffer per completion) path ran.
            if ring.uses_native(Feature::MultiShotRecv) && ring.uses_native(Feature::BufferRings) {
                assert!(b.fallback > 0, "{b:?}");
                assert!(ring.enhancement_stats(Feature::MultiShotRecv).native > 0);
            }
        }
    }

    /// A reader dropped in the middle of a stream (mid-bundle: it read with small buffers) gives
    /// every buffer back, those it was reading, those queued and those still arriving; the next
    /// connection on the same ring receives byte-exact with bundles again.
    #[test]
    fn bundles_dropped_reader_mid_stream_leaves_no_buffer_out() {
        let Some(ring) = support::ring(BackendKind::IoUring) else {
            return;
        };
        if !ring.uses_native(Feature::MultiShotRecv) || !ring.uses_native(Feature::BufferRings) {
            support::skip("no multishot recv over buffer rings here");
            return;
        }
        let mut most_out = 0;
        for round in 0..3u32 {
            let data = pattern(4 * MIB, 10 + round);
            let stop = 300_000 + round as usize * 77_777;
            let (got, out) = receive(&ring, &data, stop);
            most_out = most_out.max(out);
            assert!(
                got.len() >= stop && got[..] == data[..got.len()],
                "prefix byte-exact"
            );
            // `receive` returned only once every buffer was back (or panicked).
            assert_eq!(ring.provided_buffers_out(), 0);
        }
        // Dropped with buffers in hand: a partly read completion (a bundle's, where the kernel has
        // them) and/or queued completions.
        assert!(most_out > 0, "the reader never stopped with buffers out");
        let before = ring.enhancement_stats(Feature::RecvSendBundle).native;
        let data = pattern(3 * MIB, 99);
        let (got, _) = receive(&ring, &data, usize::MAX);
        assert!(got == data, "the next connection is byte-exact");
        assert_eq!(ring.provided_buffers_out(), 0);
        if ring.uses_native(Feature::RecvSendBundle) {
            let after = ring.enhancement_stats(Feature::RecvSendBundle).native;
            assert!(after > before, "bundles still used after the drops");
        }
    }
}
