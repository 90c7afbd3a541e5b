//! `recv_provided`: receives whose bytes stay in the ring's provided buffers, lent to the
//! caller. The bytes are those sent on every path; a lent buffer is not given back to the
//! kernel while held, nor freed with its ring.

mod common;

use std::rc::Rc;

use safer_ring::{BackendKind, Feature, ProvidedBuf, Ring, RingRef, UnixStream};

/// Sends `data` from a task in pieces of varying size, then closes the sending side.
fn send_in_pieces(ring: &RingRef, tx: UnixStream, data: Rc<Vec<u8>>) {
    let r = ring.clone();
    drop(ring.spawn(async move {
        let mut off = 0;
        let mut size = 1000;
        while off < data.len() {
            let end = (off + size).min(data.len());
            let (n, _) = r.send_all(&tx, data[off..end].to_vec()).await;
            n.unwrap();
            off = end;
            size = size * 7 % 40_000 + 1;
        }
    }));
}

/// Receives with `recv_provided` until the end of the stream; the buffers in order.
async fn read_to_end(ring: &RingRef, rx: &UnixStream) -> Vec<ProvidedBuf> {
    let mut got = Vec::new();
    loop {
        let b = ring.recv_provided(rx).await.unwrap();
        if b.is_empty() {
            return got;
        }
        got.push(b);
    }
}

fn joined(bufs: &[ProvidedBuf]) -> Vec<u8> {
    bufs.iter().flat_map(|b| b.iter().copied()).collect()
}

/// Streams 600 KiB through `recv_provided` and compares; checks which path served it.
fn stream_through(ring: &Ring) {
    let data = Rc::new(common::pattern(600 * 1024, 7));
    let (rx, tx) = ring.unix_pair().unwrap();
    send_in_pieces(ring, tx, data.clone());
    let lends = ring.uses_native(Feature::BufferRings);
    let mut all = Vec::new();
    ring.block_on(async {
        // Each buffer is given back as soon as it is read: the ring's 64 never run out.
        loop {
            let b = ring.recv_provided(&rx).await.unwrap();
            if b.is_empty() {
                break;
            }
            assert!(
                b.len() <= 16 * 1024,
                "one provided buffer at most: {}",
                b.len()
            );
            assert_eq!(b.is_lent(), lends);
            all.extend_from_slice(&b);
        }
    });
    assert!(
        all == *data,
        "{} bytes received of {}",
        all.len(),
        data.len()
    );
    let (multi, select) = (
        ring.enhancement_stats(Feature::MultiShotRecv),
        ring.enhancement_stats(Feature::BufferRings),
    );
    if lends && ring.uses_native(Feature::MultiShotRecv) {
        assert!(multi.native > 0 && multi.fallback == 0, "{multi:?}");
    } else if lends {
        assert!(select.native > 0 && select.fallback == 0, "{select:?}");
    } else {
        assert!(select.fallback > 0 && select.native == 0, "{select:?}");
    }
}

// The same bytes on every path: lent from the multishot recv natively, from one buffer-select
// recv per call without multishot recv, and without provided buffers (epoll) readiness then a
// buffer of its own.
three_rings_test!(same_bytes_on_every_path, Feature::MultiShotRecv, |ring| {
    stream_through(&ring)
});

/// io_uring without provided buffers: readiness (a poll op), then a buffer of its own.
#[test]
fn same_bytes_without_buffer_rings() {
    let cfg = common::uring_wishing(Feature::BufferRings, Some(false)).entries(64);
    if let Some(ring) = common::ring_with(cfg) {
        assert!(!ring.uses_native(Feature::BufferRings));
        stream_through(&ring);
    }
}

/// A lent buffer is not handed back to the kernel while held: hold the first, then stream
/// 4 MiB through the other buffers (the kernel cycles through all 64 many times, and would
/// write into the held one were it back in the ring), and compare the held bytes.
#[test]
fn a_held_buffer_is_not_written_by_later_receives() {
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::MultiShotRecv) {
        return common::skip("no multishot recv: nothing is lent");
    }
    let first = common::pattern(16 * 1024, 1);
    let rest = Rc::new(common::pattern(4 << 20, 2));
    let (rx, tx) = ring.unix_pair().unwrap();
    ring.block_on(async {
        let (n, _) = ring.send_all(&tx, first.clone()).await;
        n.unwrap();
        let held = ring.recv_provided(&rx).await.unwrap();
        assert!(held.is_lent());
        let mut taken = held.len();
        send_in_pieces(&ring, tx, rest.clone());
        let mut after = Vec::new();
        loop {
            let b = ring.recv_provided(&rx).await.unwrap();
            if b.is_empty() {
                break;
            }
            // The first message's bytes may straddle buffers; the rest follows.
            let skip = (first.len() - taken).min(b.len());
            taken += skip;
            after.extend_from_slice(&b[skip..]);
        }
        assert!(after == *rest, "later bytes differ");
        assert_eq!(
            &held[..],
            &first[..held.len()],
            "a held buffer was rewritten"
        );
    });
}

/// When every provided buffer is lent, receives go on in buffers of their own, in order.
#[test]
fn receives_go_on_when_every_buffer_is_lent() {
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::MultiShotRecv) {
        return common::skip("no multishot recv: nothing is lent");
    }
    let data = Rc::new(common::pattern(3 << 20, 3));
    let (rx, tx) = ring.unix_pair().unwrap();
    send_in_pieces(&ring, tx, data.clone());
    let got = ring.block_on(read_to_end(&ring, &rx));
    let owned = got.iter().filter(|b| !b.is_lent()).count();
    // 64 buffers of 16 KiB hold 1 MiB: 3 MiB held at once must take the fallback.
    assert!(owned > 0, "all {} receives were lent", got.len());
    assert!(joined(&got) == *data, "the bytes differ");
    drop(got);
    // Given back, the buffers serve receives again.
    let (rx, tx) = ring.unix_pair().unwrap();
    ring.block_on(async {
        let (n, _) = ring.send_all(&tx, b"again".to_vec()).await;
        n.unwrap();
        let b = ring.recv_provided(&rx).await.unwrap();
        assert!(b.is_lent() && &b[..] == b"again", "{b:?}");
    });
}

/// A lent buffer outlives its ring: the buffers' memory is leaked, not freed, when the ring
/// goes with one lent. Freed, the 1 MiB block would be unmapped or handed to the
/// allocations below, which overwrite it.
#[test]
fn a_held_buffer_outlives_its_ring() {
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(Feature::MultiShotRecv) {
        return common::skip("no multishot recv: nothing is lent");
    }
    let sent = common::pattern(16 * 1024, 4);
    let (rx, tx) = ring.unix_pair().unwrap();
    let held = ring.block_on(async {
        let (n, _) = ring.send_all(&tx, sent.clone()).await;
        n.unwrap();
        ring.recv_provided(&rx).await.unwrap()
    });
    assert!(held.is_lent());
    drop((rx, tx));
    drop::<Ring>(ring);
    let blocks: Vec<Vec<u8>> = (0..64).map(|_| vec![0xa5; 1 << 20]).collect();
    assert_eq!(&held[..], &sent[..held.len()]);
    drop(blocks);
    drop(held); // its ring is gone: nothing to give back
}
