//! Attacks on registered files (`Ring::register_file`, `FixedFile`, the `*_registered` ops):
//! a slot must never name another file while an op that named it may still run (dropped
//! futures, unsubmitted SQEs, a full table), and a handle from one ring must never be taken
//! as a slot of another ring's table, where the same number holds some other file.

use safer_ring::{BackendKind, SaferRingConfig, SubmitPolicy};
use support::soundness::poll_once;

use crate::support;

/// Writes `data` into a pipe's write end (std, so no ring is involved).
fn put(tx: &impl std::os::fd::AsRawFd, data: &[u8]) {
    std::io::Write::write_all(&mut support::soundness::dup_std(tx), data).unwrap();
}

// A read on a registered pipe is queued (a Batch ring: its SQE is not submitted yet), then its
// future and the handle are dropped and another pipe is registered at once. The new file must
// not get the slot the queued read names: else the read, submitted later, would consume the
// new pipe's bytes. Once the old read is over the slot is free again.
backend_test!(slot_not_reused_while_a_dropped_read_names_it, |ring| {
    let (rx1, tx1) = ring.pipe().unwrap();
    let (rx2, tx2) = ring.pipe().unwrap();
    let f1 = ring.register_file(&rx1).unwrap();
    let s1 = f1.slot();
    let mut op = ring.read_registered(&f1, Vec::with_capacity(64), None);
    assert!(poll_once(&mut op).is_pending());
    drop(op);
    drop(f1);
    drop(rx1);
    let f2 = ring.register_file(&rx2).unwrap();
    if s1.is_some() {
        assert_ne!(f2.slot(), s1, "a slot reused while a dropped read names it");
    }
    put(&tx2, b"second");
    let _ = support::soundness::drive(&ring, 5);
    let (n, buf) = ring.block_on(ring.read_registered(&f2, Vec::with_capacity(64), None));
    assert_eq!(
        (n.unwrap(), &buf[..]),
        (6, &b"second"[..]),
        "the dropped read took the new pipe's bytes"
    );
    // The old read ends (its pipe gets data or its cancel lands); then its slot is free.
    // (EPIPE when the cancelled read already let its read end close.)
    let _ = std::io::Write::write_all(&mut support::soundness::dup_std(&tx1), b"first");
    let _ = support::soundness::drive(&ring, 5);
    let (rx3, tx3) = ring.pipe().unwrap();
    let f3 = ring.register_file(&rx3).unwrap();
    put(&tx3, b"third");
    let (n, buf) = ring.block_on(ring.read_registered(&f3, Vec::with_capacity(64), None));
    assert_eq!((n.unwrap(), &buf[..]), (5, &b"third"[..]));
    drop((tx1, tx2, tx3));
});

// A full table (two user slots): a third registration is refused with QuotaExceeded naming
// the limit. Dropping a handle whose read is still in flight (future dropped too) must not
// free its slot before that read is over.
#[test]
fn full_table_frees_a_slot_only_after_its_last_op() {
    for policy in [SubmitPolicy::Batch, SubmitPolicy::Eager] {
        let cfg = SaferRingConfig::default()
            .backend(BackendKind::IoUring)
            .submit_policy(policy)
            .registered_files(2);
        let Some(ring) = support::ring_with(cfg) else {
            return;
        };
        let (rx1, tx1) = ring.pipe().unwrap();
        let (rx2, _tx2) = ring.pipe().unwrap();
        let (rx3, tx3) = ring.pipe().unwrap();
        let f1 = ring.register_file(&rx1).unwrap();
        let f2 = ring.register_file(&rx2).unwrap();
        if f1.slot().is_none() {
            support::skip("this ring registers no files");
            return;
        }
        let e = ring.register_file(&rx3).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("registered_files") || msg.contains('2'),
            "{msg}"
        );
        let mut op = ring.read_registered(&f1, Vec::with_capacity(8), None);
        assert!(poll_once(&mut op).is_pending());
        let _ = ring.poll_completions();
        let s1 = f1.slot();
        drop(op);
        drop(f1);
        // Either still refused (the read is in flight), or given a slot that is not f1's
        // unless that read is provably over.
        match ring.register_file(&rx3) {
            Err(_) => {}
            Ok(f3) => {
                if f3.slot() == s1 {
                    // Allowed only if the dropped read was cancelled already: then the bytes
                    // below must reach f3, not a leftover read.
                    put(&tx1, b"old");
                    put(&tx3, b"new");
                    let (n, buf) =
                        ring.block_on(ring.read_registered(&f3, Vec::with_capacity(8), None));
                    assert_eq!((n.unwrap(), &buf[..]), (3, &b"new"[..]), "{policy:?}");
                }
                continue;
            }
        }
        put(&tx1, b"x");
        let _ = support::soundness::drive(&ring, 5);
        let f3 = ring
            .register_file(&rx3)
            .expect("the slot is free once the read is over");
        put(&tx3, b"new");
        let (n, buf) = ring.block_on(ring.read_registered(&f3, Vec::with_capacity(8), None));
        assert_eq!((n.unwrap(), &buf[..]), (3, &b"new"[..]), "{policy:?}");
        drop(f2);
    }
}

// Two rings: each registers a different pipe, and both get the same slot number. A handle of
// ring A used on ring B must run on its own file, never on B's slot of that number.
#[test]
fn handle_of_another_ring_never_names_its_slot() {
    let (Some(a), Some(b)) = (
        support::ring(BackendKind::IoUring),
        support::ring(BackendKind::IoUring),
    ) else {
        return;
    };
    let (rxa, txa) = a.pipe().unwrap();
    let (rxb, txb) = b.pipe().unwrap();
    let fa = a.register_file(&rxa).unwrap();
    let fb = b.register_file(&rxb).unwrap();
    eprintln!("slots: a {:?}, b {:?}", fa.slot(), fb.slot());
    put(&txa, b"from-a");
    put(&txb, b"from-b");
    let (n, buf) = b.block_on(b.read_registered(&fa, Vec::with_capacity(16), None));
    assert_eq!(
        (n.unwrap(), &buf[..]),
        (6, &b"from-a"[..]),
        "ring B read its own slot for ring A's handle"
    );
    let (n, buf) = b.block_on(b.read_registered(&fb, Vec::with_capacity(16), None));
    assert_eq!((n.unwrap(), &buf[..]), (6, &b"from-b"[..]));
    // After ring A is gone its handle is plain everywhere, also on a ring whose table has
    // a file at that number.
    drop(a);
    put(&txa, b"again");
    let (n, buf) = b.block_on(b.read_registered(&fa, Vec::with_capacity(16), None));
    assert_eq!((n.unwrap(), &buf[..]), (5, &b"again"[..]));
}

// Registered-file ops give what the plain ops give, on both backends: reads at offsets, at
// EOF, writes, fsync, recv/send with a closed peer, zero-length buffers.
backend_test!(registered_ops_match_plain_ops, |ring| {
    use support::fds::outcome;
    let path = support::TempPath::new("attack-regfiles");
    std::fs::write(&path.0, b"0123456789").unwrap();
    let opts = safer_ring::OpenOptions::new().read(true).write(true);
    let out = ring.block_on(async {
        let file = ring.open(&path.0, &opts).await.unwrap();
        let reg = ring.register_file(&file).unwrap();
        let mut out = Vec::new();
        for off in [Some(0), Some(4), Some(10), Some(1 << 40), None] {
            let (p, pb) = ring
                .read_at(&file, Vec::with_capacity(4), off.unwrap_or(0))
                .await;
            let (r, rb) = ring.read_registered(&reg, Vec::with_capacity(4), off).await;
            if off.is_some() {
                assert_eq!(outcome(&p), outcome(&r), "read at {off:?}");
                assert_eq!(pb, rb, "read at {off:?}");
            }
            out.push(format!("read {off:?}: {} {rb:?}", outcome(&r)));
        }
        let (r, _) = ring.read_registered(&reg, Vec::new(), Some(0)).await;
        out.push(format!("read into empty: {}", outcome(&r)));
        let (w, _) = ring.write_registered(&reg, b"AB".to_vec(), Some(8)).await;
        out.push(format!("write: {}", outcome(&w)));
        out.push(format!(
            "fsync: {}",
            outcome(&ring.fsync_registered(&reg, false).await)
        ));
        out.push(format!(
            "fdatasync: {}",
            outcome(&ring.fsync_registered(&reg, true).await)
        ));
        let (a, b) = ring.unix_pair().unwrap();
        let ra = ring.register_file(&a).unwrap();
        drop(b);
        let (r, _) = ring.recv_registered(&ra, Vec::with_capacity(8)).await;
        out.push(format!("recv after peer closed: {}", outcome(&r)));
        let (s, _) = ring.send_registered(&ra, b"x".to_vec()).await;
        out.push(format!("send after peer closed: {}", outcome(&s)));
        out
    });
    assert_eq!(std::fs::read(&path.0).unwrap(), b"01234567AB");
    let want = [
        "read Some(0): Ok(4) [48, 49, 50, 51]",
        "read Some(4): Ok(4) [52, 53, 54, 55]",
        "read Some(10): Ok(0) []",
        "read Some(1099511627776): Ok(0) []",
        // The current position: a fresh open starts at 0.
        "read None: Ok(4) [48, 49, 50, 51]",
        "read into empty: Ok(0)",
        "write: Ok(2)",
        "fsync: Ok(())",
        "fdatasync: Ok(())",
        "recv after peer closed: Ok(0)",
    ];
    assert_eq!(&out[..want.len()], &want[..], "{:?}", ring.backend());
    assert_eq!(
        out[want.len()],
        format!("send after peer closed: Err(errno {})", libc::EPIPE),
        "{:?}",
        ring.backend()
    );
});
