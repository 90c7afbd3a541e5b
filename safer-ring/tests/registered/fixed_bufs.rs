//! Registered buffers (`register_buffers`, `read_fixed_at`, `write_fixed_at`): the same bytes
//! natively, with the feature off and on epoll; buffers return to their pool on completion and
//! after a dropped future; a pool registered with one ring works (as plain I/O) on another.

use std::future::Future;
use std::io::Write;
use std::task::Poll;
use std::time::Duration;

use safer_ring::{BackendKind, Feature, FixedBufPool, OpenOptions, Ring, SaferRingError};
use support::{fallback_rings, ring};

use crate::support;

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("safer-ring-fixed-{name}-{}", std::process::id()))
}

/// A pattern that differs per offset, so a misplaced block shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Writes `blocks` blocks of 4096 bytes with fixed buffers (out of order), reads them back
/// with fixed buffers and compares with std's view of the file.
fn round_trip(ring: &Ring, name: &str) {
    const BLOCK: usize = 4096;
    let blocks = 16;
    let path = tmp(name);
    let pool = ring.register_buffers(4, BLOCK).unwrap();
    let want = pattern(BLOCK * blocks, 7);
    ring.block_on(async {
        let file = ring
            .open(
                &path,
                &OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true),
            )
            .await
            .unwrap();
        for b in (0..blocks).rev() {
            let mut buf = pool.try_take().unwrap();
            buf.extend_from_slice(&want[b * BLOCK..][..BLOCK]).unwrap();
            let (n, buf) = ring
                .write_fixed_at(&file, buf, Some((b * BLOCK) as u64))
                .await;
            assert_eq!(n.unwrap(), BLOCK);
            assert_eq!(buf.len(), BLOCK);
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            want,
            "the file as std reads it"
        );
        for b in 0..blocks {
            let (n, buf) = ring
                .read_fixed_at(&file, pool.try_take().unwrap(), Some((b * BLOCK) as u64))
                .await;
            assert_eq!(n.unwrap(), BLOCK);
            assert_eq!(&buf[..], &want[b * BLOCK..][..BLOCK], "block {b}");
        }
        // At the end of the file: a short read, then 0.
        let (n, buf) = ring
            .read_fixed_at(
                &file,
                pool.try_take().unwrap(),
                Some((want.len() - 10) as u64),
            )
            .await;
        assert_eq!((n.unwrap(), &buf[..]), (10, &want[want.len() - 10..]));
        let (n, buf) = ring
            .read_fixed_at(&file, buf, Some(want.len() as u64))
            .await;
        assert_eq!((n.unwrap(), buf.len()), (0, 0));
    });
    assert_eq!(pool.available(), 4, "every buffer came back");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn fixed_reads_and_writes_move_the_same_bytes_natively() {
    let Some(ring) = ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::RegisteredBuffers) {
        support::skip("RegisteredBuffers not detected on this kernel");
        return;
    }
    round_trip(&ring, "native");
    let s = ring.enhancement_stats(Feature::RegisteredBuffers);
    assert_eq!(
        (s.native, s.fallback),
        (34, 0),
        "every op took READ/WRITE_FIXED"
    );
}

#[test]
fn fixed_reads_and_writes_fall_back_to_plain_ones() {
    for ring in fallback_rings(Feature::RegisteredBuffers) {
        assert!(!ring.uses_native(Feature::RegisteredBuffers));
        round_trip(&ring, &format!("fallback-{:?}", ring.backend()));
        let s = ring.enhancement_stats(Feature::RegisteredBuffers);
        assert_eq!((s.native, s.fallback), (0, 34), "{:?}", ring.backend());
    }
}

backend_test!(pipes_and_the_current_position, |ring| {
    let pool = ring.register_buffers(2, 64).unwrap();
    let (rx, tx) = ring.pipe().unwrap();
    let mut buf = pool.try_take().unwrap();
    buf.extend_from_slice(b"through a pipe").unwrap();
    let (n, buf) = ring.block_on(ring.write_fixed_at(&tx, buf, None));
    assert_eq!(n.unwrap(), 14);
    drop(buf);
    let (n, buf) = ring.block_on(ring.read_fixed_at(&rx, pool.try_take().unwrap(), None));
    assert_eq!((n.unwrap(), &buf[..]), (14, &b"through a pipe"[..]));
});

// A pool registered with ring A used on ring B: B's kernel table has no such index, so B must
// run a plain read of the same memory (never READ_FIXED with A's index).
backend_test!(a_pool_of_another_ring_runs_as_plain_io, |ring| {
    let other = Ring::new(8).unwrap();
    let pool = other.register_buffers(1, 32).unwrap();
    // This ring registers a pool of its own, so an index mix-up would hit real buffers.
    let own = ring.register_buffers(1, 32).unwrap();
    let (rx, tx) = ring.pipe().unwrap();
    let mut mine = own.try_take().unwrap();
    mine.extend_from_slice(b"own buffer, untouched").unwrap();
    let mut buf = pool.try_take().unwrap();
    buf.extend_from_slice(b"borrowed pool").unwrap();
    let (n, buf) = ring.block_on(ring.write_fixed_at(&tx, buf, None));
    assert_eq!(n.unwrap(), 13);
    let (n, buf) = ring.block_on(ring.read_fixed_at(&rx, buf, None));
    assert_eq!((n.unwrap(), &buf[..]), (13, &b"borrowed pool"[..]));
    assert_eq!(&mine[..], b"own buffer, untouched");
    let s = ring.enhancement_stats(Feature::RegisteredBuffers);
    assert_eq!(s.native, 0, "a foreign pool never takes the fixed opcode");
    assert_eq!(s.fallback, 2);
});

// A read future dropped while the kernel holds the buffer: the buffer stays with the ring
// until the cancel completes, then returns to the pool; the kernel never writes into memory
// that was handed out again.
backend_test!(a_dropped_read_returns_its_buffer_after_the_kernel, |ring| {
    let pool = ring.register_buffers(1, 4096).unwrap();
    let (rx, tx) = ring.pipe().unwrap();
    let mut fut = Box::pin(ring.read_fixed_at(&rx, pool.try_take().unwrap(), None));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let _ = ring.block_on(ring.sleep(Duration::from_millis(5)));
    assert_eq!(pool.available(), 0, "the kernel holds the buffer");
    drop(fut);
    // The ring turns until the cancel's completion has been reaped (by the clock, generously:
    // where an io-wq worker runs the read, that thread must get to run first).
    let t = std::time::Instant::now();
    while pool.available() == 0 {
        let _ = ring.block_on(ring.sleep(Duration::from_millis(1)));
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the buffer never came back"
        );
    }
    // Handed out again and filled: a late kernel write from the dropped read would show.
    let mut again = pool.try_take().unwrap();
    again.extend_from_slice(&[0xAB; 4096]).unwrap();
    let mut std_tx = std::fs::File::from(tx.into_owned_fd().unwrap());
    std_tx.write_all(b"late bytes").unwrap();
    let _ = ring.block_on(ring.sleep(Duration::from_millis(20)));
    assert!(
        again.iter().all(|&b| b == 0xAB),
        "the kernel wrote into a reused buffer"
    );
    drop(rx);
});

// Ring dropped with a fixed read in flight: the pool's memory must outlive the kernel's use
// (the ring drains or leaks); afterwards the pool still works as plain buffers elsewhere.
backend_test!(a_ring_dropped_mid_read_keeps_the_memory_valid, |ring| {
    let pool = ring.register_buffers(2, 256).unwrap();
    let (rx, tx) = ring.pipe().unwrap();
    let mut fut = Box::pin(ring.read_fixed_at(&rx, pool.try_take().unwrap(), None));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Pending));
    drop(fut);
    drop((rx, tx));
    drop(ring);
    assert_eq!(pool.available(), 2, "the cancelled read's buffer came back");
    let other = support::ring(BackendKind::Epoll).unwrap();
    let (rx, tx) = other.pipe().unwrap();
    let mut buf = pool.try_take().unwrap();
    buf.extend_from_slice(b"after").unwrap();
    other
        .block_on(other.write_fixed_at(&tx, buf, None))
        .0
        .unwrap();
    let (n, buf) = other.block_on(other.read_fixed_at(&rx, pool.try_take().unwrap(), None));
    assert_eq!((n.unwrap(), &buf[..]), (5, &b"after"[..]));
});

backend_test!(bad_pools_are_refused_with_the_value, |ring| {
    let field = |r: Result<FixedBufPool, SaferRingError>| match r {
        Err(SaferRingError::InvalidConfig { field, value, .. }) => format!("{field}={value}"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(field(ring.register_buffers(0, 64)), "count=0");
    assert_eq!(field(ring.register_buffers(16385, 64)), "count=16385");
    assert_eq!(field(ring.register_buffers(1, 0)), "size=0");
    assert_eq!(
        field(ring.register_buffers(1, (1 << 30) + 1)),
        "size=1073741825"
    );
    // Refused input does not use up the ring's one pool.
    let pool = ring.register_buffers(1, 8).unwrap();
    let msg = ring.register_buffers(1, 8).unwrap_err().to_string();
    assert!(msg.contains("one buffer pool per ring"), "{msg}");
    let mut buf = pool.try_take().unwrap();
    let err = buf.extend_from_slice(&[0; 9]).unwrap_err().to_string();
    assert!(err.contains("data length = 9"), "{err}");
    assert_eq!(buf.len(), 0, "a refused append changes nothing");
    assert!(buf.set_len(9).is_err() && buf.set_len(8).is_ok());
});
