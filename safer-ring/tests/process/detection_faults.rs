//! Detection when its system calls fail (injected on this thread with `fault::fail_next`):
//! what `detect_now` falls back to, `FeatureDetectionFailed`, cache invalidation that really
//! detects again, and a ring that opts out of the cache using its own detection everywhere.
//!
//! The detection cache is process-wide, and a query under injected faults can fill it with a
//! degraded report: serialized with the other tests of this binary, none of which demotes a
//! feature (`a_ring_without_the_cache_uses_its_own_detection_everywhere` asserts the cache
//! still offers MultiShotAccept).

use safer_ring::fault::{Syscall, fail_next};
use safer_ring::features::{self, Detection, detect_now};
use safer_ring::{
    BackendKind, Feature, KernelVersion, ProgressiveEnhancementConfig, Ring, SaferRingConfig,
    SaferRingError,
};

use crate::support;

#[test]
fn a_failed_version_read_leaves_the_other_evidence_in_charge() {
    let _serial = support::serial();
    fail_next(Syscall::Uname, libc::EPERM, 1);
    let r = detect_now();
    assert_eq!(
        (r.inputs.release.as_deref(), r.inputs.version),
        (None, None)
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("reading the kernel release")),
        "{:?}",
        r.warnings
    );
    if r.inputs.io_uring.is_err() {
        support::skip("no io_uring: nothing to decide");
        return;
    }
    // The probe still decides its rows; rows only the version could tell are off.
    let truth = detect_now();
    for f in Feature::all() {
        let got = r.status(f).available;
        match f.detection() {
            Detection::Version(_) => assert!(!got, "{f} without a version"),
            Detection::Probe(_) => {
                assert_eq!(got, truth.status(f).available, "{f} from the probe")
            }
            _ => {}
        }
    }
}

#[test]
fn a_failed_probe_falls_back_to_the_version_table() {
    let _serial = support::serial();
    fail_next(Syscall::IoUringProbe, libc::EINVAL, 1);
    let r = detect_now();
    if r.inputs.io_uring.is_err() {
        support::skip("no io_uring: no probe to fail");
        return;
    }
    assert_eq!(r.inputs.opcodes, None);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("IORING_REGISTER_PROBE")),
        "{:?}",
        r.warnings
    );
    for f in Feature::all() {
        if let Detection::Probe(_) = f.detection() {
            let s = r.status(f);
            assert_eq!((s.by_detection, s.available), (None, s.by_version), "{f}");
        }
    }
}

#[test]
fn an_unreadable_kernel_version_is_a_detection_failure() {
    let _serial = support::serial();
    fail_next(Syscall::Uname, libc::EACCES, 1);
    match KernelVersion::current() {
        Err(SaferRingError::FeatureDetectionFailed { step, reason }) => {
            assert_eq!(step, "reading the kernel release");
            assert!(reason.contains("denied"), "{reason}");
        }
        other => panic!("expected FeatureDetectionFailed, got {other:?}"),
    }
    assert!(KernelVersion::current().is_ok(), "one failure only");
}

#[test]
fn invalidate_detects_again() {
    let _serial = support::serial();
    let before = features::detected();
    assert!(before.inputs.release.is_some());
    features::invalidate();
    fail_next(Syscall::Uname, libc::EPERM, 1);
    let after = features::detected();
    assert_eq!(
        after.inputs.release, None,
        "detected again (and saw the failure)"
    );
    features::invalidate();
    assert!(features::detected().inputs.release.is_some());
}

#[test]
fn a_ring_without_the_cache_uses_its_own_detection_everywhere() {
    let _serial = support::serial();
    if features::detected().io_uring_available().is_err()
        || !features::is_available(Feature::MsgRing)
    {
        support::skip("needs io_uring with OP_MSG_RING (5.18)");
        return;
    }
    // This ring's own detection sees no version and no probe: MsgRing (probe) and
    // MultiShotAccept (version) are off for it, whatever the cache says.
    fail_next(Syscall::Uname, libc::EPERM, 1);
    fail_next(Syscall::IoUringProbe, libc::EPERM, 1);
    let cfg = SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .enhancement(ProgressiveEnhancementConfig::default().detection_cache(false));
    let ring = Ring::with_config(cfg).unwrap();
    for f in [Feature::MsgRing, Feature::MultiShotAccept] {
        let info = ring.feature_info(f);
        assert!(!info.status.available, "{f}: feature_info from the cache");
        assert!(!ring.backend_offers(f), "{f}: the backend read the cache");
        assert!(!ring.uses_native(f), "{f}: decided from the cache");
        assert!(
            features::is_available(f),
            "{f}: the cache itself is untouched"
        );
    }
    // A flag from io_uring_setup needs neither: still there.
    assert_eq!(
        ring.uses_native(Feature::NoDrop),
        features::is_available(Feature::NoDrop)
    );
    ring.block_on(ring.nop()).unwrap();
    // With the cache, the same faults change nothing.
    fail_next(Syscall::Uname, libc::EPERM, 1);
    fail_next(Syscall::IoUringProbe, libc::EPERM, 1);
    let cached =
        Ring::with_config(SaferRingConfig::default().backend(BackendKind::IoUring)).unwrap();
    assert!(cached.uses_native(Feature::MsgRing) || !features::is_available(Feature::MsgRing));
    assert!(cached.backend_offers(Feature::MsgRing));
    fail_next(Syscall::Uname, 0, 0);
    fail_next(Syscall::IoUringProbe, 0, 0);
}
