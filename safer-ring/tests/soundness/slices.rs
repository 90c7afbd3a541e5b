//! Third adversarial review: `buf.slice(range)` and the whole-buffer helpers (all held up).

use std::io::Write;
use std::time::Duration;

use safer_ring::{BackendKind, IoBuf, OwnedBuffer};
use support::soundness::*;

use crate::support;

#[test]
fn slices_never_claim_uninitialized_bytes() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(60), move || {
            let Some(ring) = support::ring(kind) else {
                return;
            };
            let (rx, tx) = ring.pipe().unwrap();
            let mut txs = dup_std(&tx);
            ring.block_on(async {
                // A read into a slice past the Vec's length: the gap 0..8 is uninitialized,
                // so the length must not grow.
                txs.write_all(b"abcd").unwrap();
                let (n, s) = ring.read(&rx, Vec::with_capacity(16).slice(8..)).await;
                assert_eq!(n.unwrap(), 4);
                let v = s.into_inner();
                assert_eq!(v.len(), 0, "bytes 0..8 were never written");
                // Slice of slice, starting at the initialized end: the length grows exactly.
                let mut v = Vec::with_capacity(32);
                v.extend_from_slice(b"0123");
                txs.write_all(b"xyz").unwrap();
                let (n, s) = ring.read(&rx, v.slice(2..20).slice(2..10)).await;
                assert_eq!(n.unwrap(), 3);
                let v = s.into_inner().into_inner();
                assert_eq!(&v[..], b"0123xyz");
                // Slice of slice one byte past the initialized end: no growth.
                txs.write_all(b"Q").unwrap();
                let (n, s) = ring.read(&rx, v.slice(3..20).slice(5..10)).await;
                assert_eq!(n.unwrap(), 1);
                let v = s.into_inner().into_inner();
                assert_eq!(&v[..], b"0123xyz");
                // Writes of a slice send only its initialized prefix.
                let (n, s) = ring.write(&tx, v.slice(5..30)).await;
                assert_eq!(n.unwrap(), 2);
                let (n, _b) = ring.read(&rx, Vec::with_capacity(8)).await;
                assert_eq!(n.unwrap(), 2);
                let v = s.into_inner();
                // Empty slices at the end and of an empty buffer.
                let cap = v.capacity();
                let (n, _) = ring.write(&tx, v.slice(cap..)).await;
                assert_eq!(n.unwrap(), 0);
                let (n, _) = ring.write(&tx, Vec::new().slice(..)).await;
                assert_eq!(n.unwrap(), 0);
                // Box<[u8]> and OwnedBuffer slices.
                txs.write_all(b"BOX").unwrap();
                let (n, s) = ring
                    .read(&rx, vec![b'.'; 8].into_boxed_slice().slice(4..))
                    .await;
                assert_eq!(n.unwrap(), 3);
                assert_eq!(&s.into_inner()[..], b"....BOX.");
                txs.write_all(b"OB").unwrap();
                let mut ob = OwnedBuffer::new(8);
                ob.set_len(1).unwrap();
                let (n, s) = ring.read(&rx, ob.slice(4..)).await;
                assert_eq!(n.unwrap(), 2);
                let mut ob = s.into_inner();
                // Conservative (sound): a slice past the length does not grow it.
                assert_eq!(ob.len(), 1);
                assert_eq!(&ob.as_full_slice_mut()[4..6], b"OB");
            });
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
}

#[test]
fn read_exact_and_write_all_keep_order_across_short_transfers() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(60), move || {
            let Some(ring) = support::ring(kind) else {
                return;
            };
            let (a, b) = ring.unix_pair().unwrap();
            let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
            let want = data.clone();
            let rr = ring.clone();
            let sender = ring.spawn(async move {
                let (r, _) = rr.send_all(&a, data).await;
                r.unwrap();
            });
            let got = ring.block_on(async {
                // Prefilled Vec: read_exact fills 0..capacity, the old contents are replaced.
                let mut buf = Vec::with_capacity(want.len());
                buf.extend_from_slice(&[0xEE; 10]);
                let (r, buf) = ring.read_exact(&b, buf).await;
                r.unwrap();
                buf
            });
            ring.block_on(sender).unwrap();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "bytes reordered or lost");
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
}
