//! Run-time demotion. Demoting a feature is process-wide by design, so every test that demotes
//! one lives in this binary (its own process), where no test relies on the native path of a
//! feature another test demotes; each test demotes a different feature. Kernels that lie are
//! played by the fault-injecting backend (`FaultPlan`), so each path runs on every kernel that
//! has the feature; the real case (a kernel without it, forced) runs where the kernel lacks it.
#![cfg(feature = "fault-injection")]

#[macro_use]
#[path = "support/mod.rs"]
mod support;

use std::cell::Cell;
use std::os::fd::OwnedFd;
use std::time::Duration;

use safer_ring::fault::{FaultPlan, OpClass};
use safer_ring::{BackendKind, Feature, Message, ProgressiveEnhancementConfig, Ring};
use safer_ring::{RingRef, SaferRingConfig, features};

/// An io_uring ring with `pe` under `plan`, or `None` (skip) where io_uring cannot run.
fn uring(pe: ProgressiveEnhancementConfig, plan: FaultPlan) -> Option<Ring> {
    support::ring_with(
        SaferRingConfig::default()
            .backend(BackendKind::IoUring)
            .enhancement(pe)
            .fault_plan(plan),
    )
}

/// 256 KiB through a Unix socket pair, received with `recv_enhanced`; asserts the bytes.
fn recv_enhanced_echo(ring: &Ring) {
    let data: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 253) as u8).collect();
    let (a, b) = ring.unix_pair().unwrap();
    let r = RingRef::clone(ring);
    let sent = data.clone();
    let got = ring.block_on(async {
        let sender = ring.spawn(async move {
            let (res, _) = r.send_all(&a, sent).await;
            res.unwrap();
        });
        let mut got = Vec::new();
        let mut buf = Vec::with_capacity(64 * 1024);
        while got.len() < data.len() {
            let (n, b2) = ring.recv_enhanced(&b, buf).await;
            assert!(n.unwrap() > 0, "early EOF");
            got.extend_from_slice(&b2);
            buf = b2;
            buf.clear();
        }
        sender.await.unwrap();
        got
    });
    assert!(got == data, "bytes differ");
}

#[test]
fn einval_through_execute_with_fallback_demotes_a_version_detected_feature() {
    // CancelByFd is version-gated (a flag on ASYNC_CANCEL): the kernel's EINVAL is its only word.
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let native = ring.uses_native(Feature::CancelByFd);
    let calls = Cell::new(0);
    let out = ring.block_on(ring.execute_with_fallback(
        Feature::CancelByFd,
        vec![1u8, 2, 3],
        |buf| async move {
            (
                Err::<usize, _>(std::io::Error::from_raw_os_error(libc::EINVAL)),
                buf,
            )
        },
        |buf: Vec<u8>| {
            calls.set(calls.get() + 1);
            async move { (Ok(buf.len()), buf) }
        },
    ));
    assert_eq!(out.0.unwrap(), 3);
    assert_eq!(
        out.1,
        [1, 2, 3],
        "buffer survived the failed native attempt"
    );
    assert_eq!(calls.get(), 1, "fallback ran exactly once");
    let s = ring.enhancement_stats(Feature::CancelByFd);
    assert_eq!((s.native, s.fallback), (0, 1), "{s:?}");
    // Native where the kernel has it (5.19+): then the EINVAL demoted it, for the process.
    assert_eq!(s.demotions, native as u64, "{s:?}");
    assert_eq!(features::is_demoted(Feature::CancelByFd), native);
    assert!(!ring.uses_native(Feature::CancelByFd));
    // Other errors pass through untouched, without the fallback (where the native path runs;
    // elsewhere the fallback is taken directly).
    let native = ring.uses_native(Feature::SendZeroCopy);
    let fell_back = Cell::new(false);
    let out = ring.block_on(ring.execute_with_fallback(
        Feature::SendZeroCopy,
        7u32,
        |b| async move {
            (
                Err::<(), _>(std::io::Error::from_raw_os_error(libc::EBADF)),
                b,
            )
        },
        |b| {
            fell_back.set(true);
            async move { (Ok(()), b) }
        },
    ));
    if native {
        assert_eq!(out.0.unwrap_err().raw_os_error(), Some(libc::EBADF));
        assert!(!fell_back.get(), "EBADF must not trigger the fallback");
    } else {
        assert!(out.0.is_ok() && fell_back.get());
    }
    assert_eq!(out.1, 7);
    assert!(!features::is_demoted(Feature::SendZeroCopy));
}

/// Accepts `n` connections through `accept_multiple` while tasks connect.
fn accept_n(ring: &Ring, n: usize) {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tasks = support::Tasks::default();
    for _ in 0..n {
        let r = RingRef::clone(ring);
        tasks.spawn(ring, async move {
            r.connect_tcp(addr).await.unwrap();
        });
    }
    ring.block_on(async {
        let mut stream = ring.accept_multiple(&listener);
        for _ in 0..n {
            stream.next().await.unwrap().unwrap();
        }
    });
    tasks.check();
}

#[test]
fn multishot_accept_rejected_by_the_kernel_is_demoted_and_falls_back() {
    let have = features::is_available(Feature::MultiShotAccept);
    // A kernel without it, forced to try (the real EINVAL, 5.10 in the matrix); where the kernel
    // has it, a backport that claims it and answers EINVAL.
    let (pe, plan) = if have {
        (
            ProgressiveEnhancementConfig::default(),
            FaultPlan::new().fail(OpClass::AcceptMulti, libc::EINVAL, 1),
        )
    } else {
        (
            ProgressiveEnhancementConfig::default()
                .force_native_for_testing(Feature::MultiShotAccept),
            FaultPlan::new(),
        )
    };
    let Some(ring) = uring(pe, plan) else {
        return;
    };
    assert!(
        ring.uses_native(Feature::MultiShotAccept),
        "attempted natively"
    );
    accept_n(&ring, 50);
    let s = ring.enhancement_stats(Feature::MultiShotAccept);
    assert_eq!((s.demotions, s.native, s.fallback), (1, 0, 50), "{s:?}");
    assert!(features::is_demoted(Feature::MultiShotAccept));
    let next = support::ring(BackendKind::IoUring).unwrap();
    assert!(
        !next.uses_native(Feature::MultiShotAccept),
        "demoted for the process"
    );
}

#[test]
fn multishot_recv_rejected_by_the_kernel_is_demoted_and_falls_back() {
    if !features::is_available(Feature::MultiShotRecv)
        || !features::is_available(Feature::BufferRings)
    {
        support::skip("multishot recv over buffer rings needs Linux 6.0");
        return;
    }
    // With receive bundles (6.10+) the first refusal is put down to the bundle flag and the
    // multishot recv is tried once more without it: the kernel refuses that one too.
    let bundles = features::is_available(Feature::RecvSendBundle);
    let plan = FaultPlan::new().fail(OpClass::RecvMulti, libc::EINVAL, 1 + u32::from(bundles));
    let ring = uring(ProgressiveEnhancementConfig::default(), plan).unwrap();
    assert!(ring.uses_native(Feature::MultiShotRecv));
    recv_enhanced_echo(&ring);
    let s = ring.enhancement_stats(Feature::MultiShotRecv);
    assert_eq!(s.demotions, 1, "{s:?}");
    let b = ring.enhancement_stats(Feature::RecvSendBundle);
    assert_eq!(b.demotions, u64::from(bundles), "{b:?}");
    assert!(!ring.uses_native(Feature::RecvSendBundle));
    // Detection-confirmed (the setup flag): the refusal stays with this ring.
    assert!(!features::is_demoted(Feature::RecvSendBundle));
    assert!(s.fallback > 0, "{s:?}");
    // Version-detected: the kernel's word is final for the process.
    assert!(features::is_demoted(Feature::MultiShotRecv));
    assert!(
        !support::ring(BackendKind::IoUring)
            .unwrap()
            .uses_native(Feature::MultiShotRecv)
    );
}

#[test]
fn einval_on_a_feature_detection_confirmed_stays_with_its_ring() {
    // Buffer rings were registered for real by detection: an EINVAL from a buffer-select recv
    // says something about this call or ring, not about the kernel.
    if !features::is_available(Feature::BufferRings) {
        support::skip("buffer rings need Linux 5.19");
        return;
    }
    let pe = ProgressiveEnhancementConfig::default().feature(Feature::MultiShotRecv, Some(false));
    let plan = FaultPlan::new().fail(OpClass::RecvSelect, libc::EINVAL, 1);
    let ring = uring(pe.clone(), plan).unwrap();
    assert!(ring.uses_native(Feature::BufferRings));
    recv_enhanced_echo(&ring);
    let s = ring.enhancement_stats(Feature::BufferRings);
    assert_eq!(s.demotions, 1, "{s:?}");
    assert!(!ring.uses_native(Feature::BufferRings), "off for this ring");
    assert!(
        !features::is_demoted(Feature::BufferRings),
        "not for the process"
    );
    let other = uring(pe, FaultPlan::new()).unwrap();
    assert!(other.uses_native(Feature::BufferRings));
    recv_enhanced_echo(&other);
    assert!(other.enhancement_stats(Feature::BufferRings).native > 0);
}

#[test]
fn einval_on_native_fd_passing_stays_with_its_ring() {
    // SEND_FD is detected by sending an fd for real. The sender uses it only where the
    // receiver can install what arrives (FIXED_FD_INSTALL, 6.8): 6.1 sends through the queue.
    if !features::is_available(Feature::MsgRingSendFd)
        || !features::is_available(Feature::FixedFdInstall)
    {
        support::skip("native fd passing needs Linux 6.8 (SEND_FD 6.0, FIXED_FD_INSTALL 6.8)");
        return;
    }
    let pe = ProgressiveEnhancementConfig::default().feature(Feature::MsgRingSendFd, Some(true));
    let plan = FaultPlan::new().fail(OpClass::MsgRingFd, libc::EINVAL, 1);
    let sender = uring(pe.clone(), plan).unwrap();
    let receiver = uring(pe, FaultPlan::new()).unwrap();
    let to = receiver.handle();
    let (r, w) = std::io::pipe().unwrap();
    sender
        .block_on(sender.msg_ring(&to, Message::Fd(OwnedFd::from(w))))
        .unwrap();
    // The fd went through the queue instead: it arrives, and writing into it reaches `r`.
    // Already sent: the bound only ends a lost one.
    let got = receiver.block_on(receiver.timeout(Duration::from_secs(30), receiver.next_message()));
    let Ok(Message::Fd(fd)) = got else {
        panic!("the fd did not arrive: {got:?}")
    };
    drop(fd);
    drop(r);
    let s = sender.enhancement_stats(Feature::MsgRingSendFd);
    assert_eq!((s.demotions, s.fallback), (1, 1), "{s:?}");
    assert!(
        !sender.uses_native(Feature::MsgRingSendFd),
        "off for this ring"
    );
    assert!(
        !features::is_demoted(Feature::MsgRingSendFd),
        "not for the process"
    );
}

#[test]
fn a_refused_ring_fd_registration_stays_with_its_ring() {
    // The kernel allows 16 registered ring fds per thread: the 17th ring on a thread is refused.
    if !features::is_available(Feature::RegisteredRingFd) {
        support::skip("registered ring fds need Linux 5.18");
        return;
    }
    let rings: Vec<Ring> = (0..17)
        .map(|_| support::ring(BackendKind::IoUring).unwrap())
        .collect();
    let registered = rings
        .iter()
        .filter(|r| r.registered_ring_fd().is_some())
        .count();
    assert_eq!(registered, 16);
    let refused = rings
        .iter()
        .find(|r| r.registered_ring_fd().is_none())
        .unwrap();
    assert!(!refused.uses_native(Feature::RegisteredRingFd));
    refused.block_on(refused.nop()).unwrap();
    assert!(
        features::is_available(Feature::RegisteredRingFd),
        "a per-thread limit is not a kernel verdict"
    );
    let elsewhere = std::thread::spawn(|| {
        support::ring(BackendKind::IoUring)
            .unwrap()
            .registered_ring_fd()
            .is_some()
    });
    assert!(elsewhere.join().unwrap(), "another thread still registers");
    drop(rings);
    let again = support::ring(BackendKind::IoUring).unwrap();
    assert!(
        again.registered_ring_fd().is_some(),
        "slots freed with their rings"
    );
}
