//! Attacks on registered buffers (`FixedBufPool`, `FixedBuf`, `read_fixed_at`,
//! `write_fixed_at`) through the public API: buffers of one ring's pool on another ring, after
//! their ring dropped, handed out again while the kernel may still write, pools dropped under
//! an in-flight read, lengths and offsets at the edges.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io::Write;
use std::time::Duration;

use safer_ring::{BackendKind, Feature, OpenOptions, Ring};
use support::fds::outcome;
use support::soundness::{drive, dup_std, poll_once};

use crate::support;

// A buffer of ring A's registered pool, read into on ring B, which registered its own pool:
// B must not take A's index for one of its own registered buffers (B's buffer 0 keeps its
// bytes, A's buffer 0 gets the data).
backend_test!(foreign_pool_on_another_ring, |ring| {
    let other = support::ring(ring.backend()).unwrap();
    let pa = ring.register_buffers(1, 4096).unwrap();
    let pb = other.register_buffers(1, 4096).unwrap();
    let a0 = pa.try_take().unwrap();
    let mut b0 = pb.try_take().unwrap();
    assert_eq!((a0.index(), b0.index()), (0, 0));
    b0.extend_from_slice(&[b'Z'; 100]).unwrap();
    let (rx, tx) = other.pipe().unwrap();
    dup_std(&tx).write_all(&[b'Q'; 100]).unwrap();
    let (n, a0) = other.block_on(other.read_fixed_at(&rx, a0, None));
    assert_eq!(n.unwrap(), 100);
    assert_eq!(&a0[..], &[b'Q'; 100][..]);
    assert_eq!(
        &b0[..],
        &[b'Z'; 100][..],
        "the other ring's registered buffer was written"
    );
    dup_std(&tx).write_all(b"back home").unwrap();
    let (n, b0) = other.block_on(other.read_fixed_at(&rx, b0, None));
    assert_eq!((n.unwrap(), &b0[..]), (9, &b"back home"[..]));
});

// A pool outliving the ring that registered it: its buffers work on another ring (plain
// reads), the dead ring refuses new work with a clear error and its buffer back, and a second
// registration on the dead ring is an error, not a panic.
backend_test!(pool_outlives_its_ring, |ring| {
    let kind = ring.backend();
    let pool = ring.register_buffers(2, 64).unwrap();
    let dead = (*ring).clone();
    drop(ring);
    let buf = pool.try_take().unwrap();
    let (rx, tx) = std::io::pipe().unwrap();
    let (rx, _tx) = (
        safer_ring::Pipe::from_owned_fd(rx.into()),
        safer_ring::Pipe::from_owned_fd(tx.try_clone().unwrap().into()),
    );
    let (n, buf) = dead.block_on_ref_or_fail(&rx, buf);
    let e = n.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    assert_eq!(buf.index(), 0, "the buffer comes back");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dead.register_buffers(1, 64)
    }));
    match r {
        Ok(Err(e)) => println!("register_buffers on a dropped ring: {e}"),
        Ok(Ok(_)) => panic!("register_buffers on a dropped ring succeeded"),
        Err(_) => panic!("register_buffers on a dropped ring panicked"),
    }
    // A ring dropped before any registration: refused the same way, no panic.
    let never = support::ring(kind).unwrap();
    let never_ref = (*never).clone();
    drop(never);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        never_ref.register_buffers(1, 64).map(|_| ())
    }));
    match r {
        // Ok (a pool no ring registered: its ops fail with BrokenPipe there) or an error.
        Ok(r) => println!("register_buffers on a ring dropped unregistered: {r:?}"),
        Err(_) => panic!("register_buffers on a dropped ring panicked"),
    }
    let new = support::ring(BackendKind::Epoll).unwrap();
    (&tx).write_all(b"still good").unwrap();
    let (n, buf) = new.block_on(new.read_fixed_at(&rx, buf, None));
    assert_eq!((n.unwrap(), &buf[..]), (10, &b"still good"[..]));
    drop(buf);
    assert_eq!(pool.available(), 2);
});

/// Polls a read on a ring whose owner is gone: it must fail at once, with the buffer.
trait FailOnDead {
    fn block_on_ref_or_fail(
        &self,
        rx: &safer_ring::Pipe,
        buf: safer_ring::FixedBuf,
    ) -> (std::io::Result<usize>, safer_ring::FixedBuf);
}

impl FailOnDead for safer_ring::RingRef {
    fn block_on_ref_or_fail(
        &self,
        rx: &safer_ring::Pipe,
        buf: safer_ring::FixedBuf,
    ) -> (std::io::Result<usize>, safer_ring::FixedBuf) {
        let mut op = self.read_fixed_at(rx, buf, None);
        match poll_once(&mut op) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => panic!("an op on a dropped ring is pending"),
        }
    }
}

// A read into the pool's only buffer, dropped while waiting: the buffer must not be handed
// out again while the kernel may still write into it. Whoever takes it afterwards keeps its
// bytes when the data then arrives.
backend_test!(buffer_not_reissued_while_kernel_owns_it, |ring| {
    let pool = ring.register_buffers(1, 512).unwrap();
    let (rx, tx) = ring.pipe().unwrap();
    let mut op = ring.read_fixed_at(&rx, pool.try_take().unwrap(), None);
    assert!(poll_once(&mut op).is_pending());
    drop(op);
    if ring.backend() == BackendKind::IoUring {
        assert_eq!(
            pool.available(),
            0,
            "handed out again while the kernel may write it"
        );
    }
    // The cancel may complete on an io-wq worker (a signal away): wait for it by the clock,
    // generously, not by a count of turns.
    let mut taken = None;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < end {
        if let Some(mut b) = pool.try_take() {
            b.extend_from_slice(&[b'K'; 512]).unwrap();
            taken = Some(b);
            break;
        }
        let _ = ring.poll_completions();
        std::thread::sleep(Duration::from_millis(1));
    }
    let b = taken.expect("the buffer returns to the pool once the cancel completed");
    dup_std(&tx).write_all(&[0xAB; 512]).unwrap();
    let _ = drive(&ring, 10);
    assert_eq!(
        &b[..],
        &[b'K'; 512][..],
        "the kernel wrote into a reissued buffer"
    );
});

// A read dropped in flight, then its pool and every other handle dropped: the pool's memory
// must stay allocated until the kernel is done (fresh page-aligned allocations of the same
// layout, made right away, must never see the kernel's write).
backend_test!(pool_dropped_under_inflight_read, |ring| {
    let layout = Layout::from_size_align(4096, 4096).unwrap();
    let (rx, tx) = ring.pipe().unwrap();
    let fresh: Vec<*mut u8>;
    {
        let pool = ring.register_buffers(1, 4096).unwrap();
        let mut op = ring.read_fixed_at(&rx, pool.try_take().unwrap(), None);
        assert!(poll_once(&mut op).is_pending());
        drop(op);
        drop(pool);
        // SAFETY: a non-zero-size layout.
        fresh = (0..8).map(|_| unsafe { alloc_zeroed(layout) }).collect();
    }
    dup_std(&tx).write_all(&[0xAB; 4096]).unwrap();
    let _ = drive(&ring, 20);
    let hit = fresh
        .iter()
        .filter(|p| {
            // SAFETY: each is a live, zero-initialized 4096-byte allocation.
            let bytes = unsafe { std::slice::from_raw_parts(**p, 4096) };
            bytes.iter().any(|&b| b != 0)
        })
        .count();
    for p in fresh {
        // SAFETY: allocated above with `layout`.
        unsafe { dealloc(p, layout) };
    }
    assert_eq!(hit, 0, "the kernel wrote into a freed pool");
});

/// Reads and writes at the edges on `ring`, as comparable strings: buffers of 1 byte and of
/// 4097 (straddling pages), the last buffer of the pool, offsets at and past EOF, beyond the
/// largest file offset, empty writes.
fn edge_outcomes(ring: &Ring, tag: &str) -> Vec<String> {
    let path = support::TempPath::new(tag);
    let data: Vec<u8> = (0..3 * 4097 + 10).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path.0, &data).unwrap();
    let mut out = Vec::new();
    let big = ring.register_buffers(3, 4097).unwrap();
    let rw = OpenOptions::new().read(true).write(true);
    ring.block_on(async {
        let f = ring.open(&path.0, &rw).await.unwrap();
        let mut held = Vec::new();
        for i in 0..3u64 {
            let buf = big.try_take().unwrap();
            let (n, buf) = ring.read_fixed_at(&f, buf, Some(i * 4097)).await;
            let ok = buf[..] == data[i as usize * 4097..][..n.as_ref().copied().unwrap_or(0)];
            out.push(format!(
                "read buf {}: {} same bytes {ok}",
                buf.index(),
                outcome(&n)
            ));
            held.push(buf);
        }
        let last = held.pop().unwrap();
        let (n, last) = ring.read_fixed_at(&f, last, Some(3 * 4097)).await;
        out.push(format!("read tail: {} {:?}", outcome(&n), &last[..]));
        let (n, last) = ring.read_fixed_at(&f, last, Some(data.len() as u64)).await;
        out.push(format!("read at EOF: {} len {}", outcome(&n), last.len()));
        let (n, last) = ring.read_fixed_at(&f, last, Some(1 << 40)).await;
        out.push(format!("read past EOF: {} len {}", outcome(&n), last.len()));
        let (n, last) = ring.read_fixed_at(&f, last, Some(i64::MAX as u64)).await;
        out.push(format!("read at i64::MAX: {}", outcome(&n)));
        let (n, last) = ring
            .read_fixed_at(&f, last, Some(i64::MAX as u64 + 1))
            .await;
        out.push(format!("read at i64::MAX + 1: {}", outcome(&n)));
        // Write the whole 4097 bytes back reversed, at the start, then read them.
        let mut w = last;
        w.set_len(0).unwrap();
        let rev: Vec<u8> = data[..4097].iter().rev().copied().collect();
        w.extend_from_slice(&rev).unwrap();
        let (n, mut w) = ring.write_fixed_at(&f, w, Some(0)).await;
        out.push(format!("write 4097: {}", outcome(&n)));
        w.set_len(0).unwrap();
        let (n, w) = ring.write_fixed_at(&f, w, Some(5)).await;
        out.push(format!("write empty: {}", outcome(&n)));
        let (n, w) = ring.read_fixed_at(&f, w, Some(0)).await;
        out.push(format!(
            "read back: {} same {}",
            outcome(&n),
            w[..] == rev[..]
        ));
        drop(held);
        drop(w);
        out.push(format!("pool back: {}", big.available()));
    });
    out
}

/// Offsets past the largest file offset: `Some(u64::MAX)` must not silently mean "the current
/// position" (what `None` asks for).
fn max_offset_outcome(ring: &Ring, tag: &str) -> String {
    let path = support::TempPath::new(tag);
    std::fs::write(&path.0, b"0123456789").unwrap();
    let pool = ring.register_buffers(1, 16).unwrap();
    ring.block_on(async {
        let f = ring
            .open(&path.0, &OpenOptions::new().read(true))
            .await
            .unwrap();
        let (n, _) = ring
            .read_fixed_at(&f, pool.try_take().unwrap(), Some(u64::MAX))
            .await;
        outcome(&n)
    })
}

// The same edge cases give the same results with READ/WRITE_FIXED (a registered pool), with
// RegisteredBuffers off (plain reads of the same memory) and on epoll.
#[test]
fn edges_same_on_every_path() {
    let epoll = edge_outcomes(
        &support::ring(BackendKind::Epoll).unwrap(),
        "attack-fixed-e",
    );
    println!("epoll: {epoll:#?}");
    let Some(uring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let native = edge_outcomes(&uring, "attack-fixed-n");
    assert_eq!(native, epoll, "READ/WRITE_FIXED and epoll differ");
    let cfg = support::uring_wishing(Feature::RegisteredBuffers, Some(false));
    let off = support::ring_with(cfg).unwrap();
    assert_eq!(edge_outcomes(&off, "attack-fixed-o"), epoll);
}

// `read_fixed_at(Some(u64::MAX))` is an offset the kernel cannot have; it must be refused as
// the path module refuses offsets beyond i64::MAX, not read at the current position (which it
// did: u64::MAX is the backends' CURRENT_POS marker; fixed in ops/fixed.rs).
#[test]
fn u64_max_offset_is_refused() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let Some(ring) = support::ring(kind) else {
            continue;
        };
        let o = max_offset_outcome(&ring, "attack-fixed-max");
        assert_eq!(o, "Err(InvalidInput)", "{kind:?}: read at offset u64::MAX");
    }
}

// A pool within the documented limits (16384 buffers of 1 GiB: 16 TiB) that the allocator
// cannot provide: a clear error, not an abort of the whole process (it called
// handle_alloc_error; fixed in buf/fixed.rs).
#[test]
fn pool_too_large_for_memory_is_an_error() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let Some(ring) = support::ring(kind) else {
            continue;
        };
        match ring.register_buffers(16384, 1 << 30) {
            Ok(p) => println!("{kind:?}: the allocator gave {} buffers of 1 GiB", p.len()),
            Err(e) => {
                let s = e.to_string();
                assert!(s.contains("16384") && s.contains("1073741824"), "{s}");
            }
        }
    }
}
