//! Detection and backend decisions on kernels the matrix cannot boot (mock kernels).

use safer_ring::features::mock::MockKernel;
use safer_ring::features::{DetectionInputs, decide, io_uring_serves_core_ops};
use safer_ring::{AvailableFeatures, Feature};

#[test]
fn linux_5_1_offers_exactly_the_baseline() {
    let r = decide(MockKernel::linux_5_1().inputs);
    assert_eq!(r.available, AvailableFeatures::baseline());
    let why = io_uring_serves_core_ops(&r).unwrap_err();
    assert!(why.contains("no opcode probe"), "{why}");
}

#[test]
fn linux_5_4_has_no_cancel_and_gets_epoll() {
    let r = decide(MockKernel::linux_5_4().inputs);
    assert!(!r.available.contains(Feature::AsyncCancel));
    assert!(!r.available.contains(Feature::NoDrop));
    assert!(io_uring_serves_core_ops(&r).is_err());
}

#[test]
fn linux_5_5_without_probe_falls_back_to_the_version_table() {
    let r = decide(MockKernel::linux_5_5_without_probe().inputs);
    let s = r.status(Feature::AsyncCancel);
    assert_eq!(
        (s.by_detection, s.by_version, s.available),
        (None, true, true)
    );
    assert!(r.available.contains(Feature::NoDrop), "FEAT_NODROP bit");
    assert!(!r.available.contains(Feature::ProvidedBuffers), "5.7");
    assert!(
        io_uring_serves_core_ops(&r).is_err(),
        "read/write/send/recv are 5.6"
    );
}

#[test]
fn linux_6_8_with_broken_buffer_rings_reports_them_absent() {
    let r = decide(MockKernel::linux_6_8_broken_buffer_rings().inputs);
    let s = r.status(Feature::BufferRings);
    assert!(s.by_version && s.by_detection == Some(false) && !s.available);
    assert!(r.available.contains(Feature::MultiShotAccept));
    assert!(r.available.contains(Feature::ReadMultishot));
    assert!(!r.available.contains(Feature::RecvSendBundle), "6.10");
    assert!(io_uring_serves_core_ops(&r).is_ok());
    // 6.8's last opcode is FIXED_FD_INSTALL (54); FTRUNCATE (55) is 6.9.
    let ops = r.inputs.opcodes.as_deref().unwrap();
    assert_eq!((ops.len(), ops.last()), (55, Some(&54)));
    assert!(r.available.contains(Feature::FixedFdInstall));
    assert_eq!(r.status(Feature::FixedFdInstall).by_detection, Some(true));
}

#[test]
fn every_mock_is_consistent() {
    for k in MockKernel::all() {
        let r = decide(k.inputs.clone());
        for f in r.available.iter() {
            // Nothing newer than the mock's kernel is reported unless a probe/flag/try said so.
            if f.required_kernel_version() > k.version() {
                assert!(
                    r.status(f).by_detection == Some(true),
                    "{} reports {f}",
                    k.name
                );
            }
        }
    }
}

/// Receive bundles are detected from IORING_FEAT_RECVSEND_BUNDLE alone: a 6.10+ kernel that
/// sets it has them, one whose version says 6.10 but that does not set it (a vendor kernel)
/// does not, so `recv_enhanced` keeps its one-buffer-per-completion multishot recv there.
#[test]
fn recv_bundles_follow_the_setup_feature_flag() {
    let mut k = MockKernel::linux_6_8_broken_buffer_rings().inputs;
    k.release = Some("6.10.0".to_string());
    k.version = k.release.as_deref().and_then(|r| r.parse().ok());
    let flags = k.feature_flags.unwrap();
    let with = decide(DetectionInputs {
        feature_flags: Some(flags | 1 << 14),
        ..k.clone()
    });
    let s = with.status(Feature::RecvSendBundle);
    assert!(
        s.by_version && s.by_detection == Some(true) && s.available,
        "{s:?}"
    );
    let without = decide(k);
    let s = without.status(Feature::RecvSendBundle);
    assert!(
        s.by_version && s.by_detection == Some(false) && !s.available,
        "{s:?}"
    );
    assert!(without.available.contains(Feature::MultiShotRecv));
}
