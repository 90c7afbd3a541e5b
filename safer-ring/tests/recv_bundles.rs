//! Receive bundles (IORING_RECVSEND_BUNDLE, Linux 6.10+) under `recv_enhanced`: one multishot
//! recv completion fills several provided buffers in ring order. Large loopback TCP streams come
//! out byte-exact with bundles on, switched off, and on epoll; a reader dropped in the middle of
//! a bundle leaves no buffer out. The kernel matrix runs this file on 6.1 (no bundles): there
//! the fallback (one buffer per completion) must give the same bytes.

mod common;

use std::io::{ErrorKind, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use safer_ring::{BackendKind, Feature, Ring, features};

const MIB: usize = 1024 * 1024;

/// `len` bytes that reveal a reordered, repeated or missing 16 KiB buffer.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

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
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
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
    let Some(ring) = common::ring(BackendKind::IoUring) else {
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
    let cfg = common::uring_wishing(Feature::RecvSendBundle, Some(false));
    let mut rings: Vec<Ring> = common::ring_with(cfg).into_iter().collect();
    rings.extend(common::ring(BackendKind::Epoll));
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
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::MultiShotRecv) || !ring.uses_native(Feature::BufferRings) {
        common::skip("no multishot recv over buffer rings here");
        return;
    }
    let mut most_out = 0;
    for round in 0..3u64 {
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
