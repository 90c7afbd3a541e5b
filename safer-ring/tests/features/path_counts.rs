//! `enhancement_stats` counts the path that really ran: every `io_uring_enter` under
//! `RegisteredRingFd`, and each `recv_enhanced` under the feature that chose its tier.

use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};

use crate::support;

/// An io_uring ring with `feature` set to `wish` (the `Some(true)` form fails where the kernel
/// lacks it, so callers check availability first).
fn uring(feature: Feature, wish: Option<bool>) -> Option<Ring> {
    support::ring_with(
        SaferRingConfig::default()
            .entries(64)
            .backend(BackendKind::IoUring)
            .enhancement(ProgressiveEnhancementConfig::default().feature(feature, wish)),
    )
}

fn nops(ring: &Ring, n: usize) {
    ring.block_on(async {
        for _ in 0..n {
            ring.nop().await.unwrap();
        }
    });
}

#[test]
fn registered_ring_fd_counts_enter_calls() {
    if !safer_ring::features::is_available(Feature::RegisteredRingFd) {
        return support::skip("no registered ring fd on this kernel");
    }
    let Some(on) = uring(Feature::RegisteredRingFd, Some(true)) else {
        return;
    };
    assert!(on.registered_ring_fd().is_some());
    nops(&on, 100);
    let s = on.enhancement_stats(Feature::RegisteredRingFd);
    // Each awaited NOP needs at least one enter to submit it and reap its completion.
    assert!(s.native >= 100, "{s:?}");
    assert_eq!(s.fallback, 0, "{s:?}");

    let Some(off) = uring(Feature::RegisteredRingFd, Some(false)) else {
        return;
    };
    assert_eq!(off.registered_ring_fd(), None);
    nops(&off, 100);
    let s = off.enhancement_stats(Feature::RegisteredRingFd);
    assert!(s.fallback >= 100, "{s:?}");
    assert_eq!(s.native, 0, "{s:?}");
}

#[test]
fn enter_counts_grow_with_the_work_and_epoll_counts_none() {
    if let Some(ring) = uring(Feature::RegisteredRingFd, None) {
        let count = |r: &Ring| {
            let s = r.enhancement_stats(Feature::RegisteredRingFd);
            s.native + s.fallback
        };
        let before = count(&ring);
        nops(&ring, 50);
        let mid = count(&ring);
        nops(&ring, 50);
        let after = count(&ring);
        assert!(
            mid >= before + 50 && after >= mid + 50,
            "{before} {mid} {after}"
        );
    }
    let epoll = support::ring(BackendKind::Epoll).unwrap();
    nops(&epoll, 50);
    let s = epoll.enhancement_stats(Feature::RegisteredRingFd);
    assert_eq!((s.native, s.fallback), (0, 0), "{s:?}");
}

/// Sends `total` bytes over a loopback TCP pair and reads them with `recv_enhanced`; returns the
/// number of `recv_enhanced` calls.
fn recv_calls(ring: &Ring, total: usize) -> u64 {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tx = ring.block_on(ring.connect_tcp(addr)).unwrap();
    let (rx, _) = ring.block_on(ring.accept(&listener)).unwrap();
    let r = safer_ring::RingRef::clone(ring);
    let sender = ring.spawn(async move {
        let (res, _) = r.write_all(&tx, vec![3u8; total]).await;
        res.unwrap();
    });
    let calls = ring.block_on(async {
        let (mut got, mut calls, mut buf) = (0, 0, Vec::with_capacity(8192));
        while got < total {
            buf.clear();
            let (n, b) = ring.recv_enhanced(&rx, buf).await;
            buf = b;
            let n = n.unwrap();
            assert!(n > 0 && buf.iter().all(|&x| x == 3), "bytes {got}..");
            got += n;
            calls += 1;
        }
        calls
    });
    ring.block_on(sender).unwrap();
    calls
}

#[test]
fn recv_enhanced_counts_under_the_deciding_feature() {
    let available = |f| safer_ring::features::is_available(f);
    if !available(Feature::BufferRings) {
        return support::skip("no buffer rings on this kernel: both recv tiers are plain recvs");
    }
    // Multishot forced off, buffer rings on: the buffer-select tier decides every call.
    let Some(ring) = uring(Feature::MultiShotRecv, Some(false)) else {
        return;
    };
    let calls = recv_calls(&ring, 1 << 20);
    let m = ring.enhancement_stats(Feature::MultiShotRecv);
    let b = ring.enhancement_stats(Feature::BufferRings);
    assert_eq!((m.native, m.fallback), (0, 0), "{m:?}");
    assert!(b.native > 0, "{b:?}");
    // One count per call (ENOBUFS may send a few to the plain recv, counted as fallback).
    assert_eq!(b.native + b.fallback, calls, "{b:?}");

    if available(Feature::MultiShotRecv) {
        let ring = uring(Feature::MultiShotRecv, Some(true)).unwrap();
        let calls = recv_calls(&ring, 1 << 20);
        let m = ring.enhancement_stats(Feature::MultiShotRecv);
        let b = ring.enhancement_stats(Feature::BufferRings);
        assert!(m.native > 0, "{m:?}");
        assert_eq!((b.native, b.fallback), (0, 0), "{b:?}");
        assert_eq!(m.native + m.fallback, calls, "{m:?}");
    }

    // Both off: plain recvs, counted as BufferRings' fallback.
    let ring = support::ring_with(
        SaferRingConfig::default()
            .backend(BackendKind::IoUring)
            .enhancement(
                ProgressiveEnhancementConfig::default()
                    .feature(Feature::MultiShotRecv, Some(false))
                    .feature(Feature::BufferRings, Some(false)),
            ),
    )
    .unwrap();
    let calls = recv_calls(&ring, 1 << 18);
    let b = ring.enhancement_stats(Feature::BufferRings);
    assert_eq!((b.native, b.fallback), (0, calls), "{b:?}");
}
