//! `recv_provided`: receives whose bytes stay in the ring's provided buffers, lent to the
//! caller. The bytes are those sent on every path; a lent buffer is not given back to the
//! kernel while held, nor freed with its ring.

use std::rc::Rc;

use safer_ring::{BackendKind, Feature, ProvidedBuf, Ring, RingRef, UnixStream};

use crate::support as common;

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

/// A ring that asks for incrementally consumed buffers (opt-in): `Some` where io_uring runs;
/// whether the kernel granted them is `uses_native(IncrementalBuffers)` (6.12+).
fn incremental_ring() -> Option<Ring> {
    common::ring_with(common::uring_wishing(Feature::IncrementalBuffers, Some(true)).entries(64))
}

/// Receives `count` small messages one at a time, holding every buffer; returns how many
/// receives were lent. The bytes of each must be the message sent.
fn hold_small_messages(ring: &Ring, count: usize) -> usize {
    let (rx, tx) = ring.unix_pair().unwrap();
    ring.block_on(async {
        let (mut held, mut sent) = (Vec::new(), Vec::new());
        for i in 0..count {
            let msg = common::pattern(100, i as u32);
            let (n, _) = ring.send_all(&tx, msg.clone()).await;
            n.unwrap();
            // A buffer's rest may end a message early: its tail comes in the next receive.
            let mut got = Vec::new();
            while got.len() < msg.len() {
                let b = ring.recv_provided(&rx).await.unwrap();
                got.extend_from_slice(&b);
                held.push(b);
            }
            assert!(got == msg, "message {i} differs");
            sent.extend_from_slice(&msg);
        }
        // Still what was received: no held buffer was given back to the kernel early.
        assert!(joined(&held) == sent, "a held buffer changed");
        held.iter().filter(|b| b.is_lent()).count()
    })
}

/// Incrementally consumed buffers: 300 small receives held at once all stay in provided
/// buffers (each takes 100 bytes of one, not a whole 16 KiB buffer of 64); without them the
/// ring runs dry after 64 and the rest take buffers of their own. Where the kernel lacks
/// them (before 6.12) the wish is refused and the ring behaves as without.
#[test]
fn incremental_buffers_hold_many_small_receives() {
    let Some(plain) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !plain.uses_native(Feature::MultiShotRecv) {
        return common::skip("no multishot recv: nothing is lent");
    }
    assert!(!plain.uses_native(Feature::IncrementalBuffers), "opt-in");
    let lent = hold_small_messages(&plain, 300);
    assert!(lent <= 64, "{lent} lent from 64 whole buffers");
    let ring = incremental_ring().unwrap();
    let granted = safer_ring::features::detected()
        .available
        .contains(Feature::IncrementalBuffers);
    assert_eq!(ring.uses_native(Feature::IncrementalBuffers), granted);
    let lent = hold_small_messages(&ring, 300);
    let stats = ring.enhancement_stats(Feature::IncrementalBuffers);
    if granted {
        assert!(lent >= 300, "incremental buffers ran dry: {lent} lent");
        assert!(stats.native >= 300, "{stats:?}");
    } else {
        common::skip("no IOU_PBUF_RING_INC on this kernel: checked the ring runs without");
        assert!(lent <= 64 && stats.native == 0, "{lent} lent, {stats:?}");
    }
}

// A stream through incrementally consumed buffers: the bytes of each receive start where the
// last one's ended in the same buffer (600 KiB in pieces of many sizes).
#[test]
fn incremental_buffers_stream_the_same_bytes() {
    if let Some(ring) = incremental_ring() {
        stream_through(&ring);
    }
}

/// `recv_enhanced` over incrementally consumed buffers, into a buffer smaller than most
/// chunks: what does not fit is carried over from the middle of a buffer.
#[test]
fn incremental_buffers_copy_out_in_small_reads() {
    let Some(ring) = incremental_ring() else {
        return;
    };
    let data = Rc::new(common::pattern(300 * 1024, 9));
    let (rx, tx) = ring.unix_pair().unwrap();
    send_in_pieces(&ring, tx, data.clone());
    let got = ring.block_on(async {
        let mut got = Vec::new();
        let mut buf = Vec::with_capacity(777);
        loop {
            let (n, b) = ring.recv_enhanced(&rx, buf).await;
            if n.unwrap() == 0 {
                return got;
            }
            got.extend_from_slice(&b);
            buf = b;
            buf.clear();
        }
    });
    assert!(got == *data, "{} bytes of {}", got.len(), data.len());
}

/// Datagrams keep their room: `recv_from_multiple` does not take incrementally consumed
/// buffers (a buffer's rest could cut a datagram) and takes its single receives instead.
#[test]
fn incremental_buffers_leave_datagrams_whole() {
    let Some(ring) = incremental_ring() else {
        return;
    };
    let sock = ring.bind_udp("127.0.0.1:0").unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sizes = [10usize, 9000, 100, 16_000, 1];
    // A stream receive first, so the ring's provided buffers are created (incremental).
    let (rx, tx) = ring.unix_pair().unwrap();
    ring.block_on(async {
        ring.send_all(&tx, b"x".to_vec()).await.0.unwrap();
        assert_eq!(&ring.recv_provided(&rx).await.unwrap()[..], b"x");
    });
    for (i, &n) in sizes.iter().enumerate() {
        peer.send_to(&common::pattern(n, i as u32), sock.local_addr().unwrap())
            .unwrap();
    }
    ring.block_on(async {
        let mut datagrams = ring.recv_from_multiple(&sock);
        for (i, &n) in sizes.iter().enumerate() {
            let d = datagrams.next().await.expect("a datagram").unwrap();
            assert!(
                !d.truncated && d.data == common::pattern(n, i as u32),
                "datagram {i}"
            );
        }
    });
    if ring.uses_native(Feature::IncrementalBuffers) {
        let s = ring.enhancement_stats(Feature::MultiShotRecvMsg);
        assert!(s.native == 0 && s.fallback > 0, "{s:?}");
    }
}
