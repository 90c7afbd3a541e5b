//! Feature detection: trust order with injected kernels, agreement with the host kernel, and
//! what each real kernel of the matrix must report.

use proptest::prelude::*;
use safer_ring::features::{self, DetectionInputs, TryResults, decide};
use safer_ring::{AvailableFeatures, BackendKind, Feature, KernelVersion, Ring};

use crate::support;

fn v(s: &str) -> KernelVersion {
    s.parse().unwrap()
}

#[test]
fn probe_beats_version_for_backports() {
    // RHEL 9 calls itself 5.14 but carries 5.19+ io_uring: the probe sees OP_SOCKET.
    let mut inputs = DetectionInputs::version_only(v("5.14.0-427.13.1.el9_4.x86_64"));
    inputs.opcodes = Some((0..=45).collect());
    let r = decide(inputs);
    assert!(r.available.contains(Feature::SocketOp));
    assert!(!r.status(Feature::SocketOp).by_version);
    assert_eq!(r.status(Feature::SocketOp).by_detection, Some(true));
}

#[test]
fn real_call_beats_version_for_broken_backports() {
    // "6.8 with a broken buffer-ring backport": the version says yes, the real call says no.
    let mut inputs = DetectionInputs::version_only(v("6.8.0-1015-aws"));
    inputs.tries = TryResults {
        register_buf_ring: Some(false),
        ..TryResults::default()
    };
    let r = decide(inputs);
    assert!(r.status(Feature::BufferRings).by_version);
    assert!(!r.available.contains(Feature::BufferRings));
}

#[test]
fn flags_beat_version() {
    let mut inputs = DetectionInputs::version_only(v("6.12.0"));
    inputs.feature_flags = Some(0); // a kernel that reports no features at all
    let r = decide(inputs);
    assert!(!r.available.contains(Feature::NoDrop));
    assert!(
        r.available.contains(Feature::MultiShotAccept),
        "version-only stays by version"
    );
}

#[test]
fn without_probe_the_version_table_decides() {
    // 5.5 has no IORING_REGISTER_PROBE: probe-detected features fall back to the table.
    let r = decide(DetectionInputs::version_only(v("5.5.0")));
    assert!(r.available.contains(Feature::AsyncCancel));
    assert!(!r.available.contains(Feature::ProvidedBuffers));
    assert_eq!(r.status(Feature::AsyncCancel).by_detection, None);
}

#[test]
fn version_gated_flag_needs_its_opcode() {
    // A "5.19" kernel whose probe lacks ACCEPT cannot do multishot accept.
    let mut inputs = DetectionInputs::version_only(v("5.19.0"));
    inputs.opcodes = Some(vec![0, 1, 2]);
    assert!(!decide(inputs).available.contains(Feature::MultiShotAccept));
}

#[test]
fn io_uring_unavailable_yields_nothing() {
    let mut inputs = DetectionInputs::version_only(v("6.12.0"));
    inputs.io_uring = Err("io_uring_setup: EPERM".into());
    let r = decide(inputs);
    assert!(r.available.is_empty());
    assert_eq!(r.io_uring_available().unwrap_err(), "io_uring_setup: EPERM");
}

#[test]
fn host_detection_agrees_with_a_direct_probe() {
    let report = features::detected();
    let Ok(ring) = io_uring::IoUring::new(4) else {
        assert!(report.io_uring_available().is_err());
        support::skip("no io_uring here: only the detection's refusal was checked");
        return;
    };
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe).unwrap();
    let direct: Vec<u8> = (0..=255).filter(|&o| probe.is_supported(o)).collect();
    assert_eq!(report.inputs.opcodes.as_ref(), Some(&direct));
    let p = ring.params();
    assert_eq!(
        report.available.contains(Feature::ExtArg),
        p.is_feature_ext_arg()
    );
    assert_eq!(
        report.available.contains(Feature::NoDrop),
        p.is_feature_nodrop()
    );
    assert_eq!(
        report.available.contains(Feature::SendZeroCopy),
        probe.is_supported(io_uring::opcode::SendZc::CODE)
    );
    // The ring's own setup agrees with the setup-flag tries.
    let r = Ring::with_config(safer_ring::SaferRingConfig::default().backend(BackendKind::IoUring))
        .unwrap();
    let s = r.info().setup.unwrap();
    assert_eq!(
        s.defer_taskrun,
        report.available.contains(Feature::DeferTaskrun)
    );
    assert_eq!(
        s.coop_taskrun,
        report.available.contains(Feature::CoopTaskrun)
    );
}

/// Absent on 5.10, present on 6.1 (the expectations for the two kernels).
const SPLIT_5_10_6_1: [Feature; 5] = [
    Feature::MultiShotAccept,
    Feature::RegisteredRingFd,
    Feature::MsgRing,
    Feature::BufferRings,
    Feature::SocketOp,
];

/// What each kernel of the matrix must report. On the host (6.18 here) everything is there.
#[test]
fn running_kernel_reports_what_it_should() {
    let report = features::detected();
    let version = report.inputs.version.expect("kernel version readable");
    let has = |f| report.available.contains(f);
    eprintln!(
        "kernel {version}: {} features, io_uring {:?}",
        report.available.len(),
        report.inputs.io_uring
    );
    if let Err(reason) = &report.inputs.io_uring {
        // e.g. 6.12 with kernel.io_uring_disabled=2
        assert!(
            reason.contains("EPERM") || reason.contains("ENOSYS"),
            "{reason}"
        );
        assert!(report.available.is_empty());
        assert_eq!(Ring::new(8).unwrap().backend(), BackendKind::Epoll);
        return;
    }
    let minor = (version.major, version.minor);
    // Core opcodes (5.3): every kernel of the matrix with io_uring has them.
    assert!(has(Feature::SendRecvMsg), "SendRecvMsg on {version}");
    // A registered-file table (5.5): 5.10 takes it as an array of -1 slots, 6.1+ sparse (see
    // tests/registered/fixed_files.rs, which uses it natively on each).
    assert!(
        has(Feature::RegisteredFiles),
        "RegisteredFiles on {version}"
    );
    // SPLICE (5.7) and TEE (5.8): in the probe of 5.10, 6.1 and 6.12 alike (the matrix's
    // io_uring-less rows return above), so only a configuration turns them off.
    assert!(
        has(Feature::Splice) && has(Feature::Tee),
        "Splice/Tee on {version}"
    );
    if minor < (5, 11) {
        for f in SPLIT_5_10_6_1 {
            assert!(!has(f), "{f} must be absent on {version}");
        }
        assert!(!has(Feature::MsgRingSendFd) && !has(Feature::FixedFdInstall));
        assert!(has(Feature::AsyncCancel) && has(Feature::NoDrop) && has(Feature::FastPoll));
    } else if minor >= (6, 1) {
        for f in SPLIT_5_10_6_1 {
            assert!(has(f), "{f} must be present on {version}");
        }
        assert_eq!(
            has(Feature::BindListen),
            minor >= (6, 11),
            "BindListen on {version}"
        );
        assert_eq!(
            has(Feature::ReadMultishot),
            minor >= (6, 7),
            "ReadMultishot on {version}"
        );
        assert_eq!(
            has(Feature::RecvSendBundle),
            minor >= (6, 10),
            "RecvSendBundle on {version}"
        );
        // IOU_PBUF_RING_INC: a real registration decides (6.12 has it, 6.1 refuses it).
        assert_eq!(
            has(Feature::IncrementalBuffers),
            minor >= (6, 12),
            "IncrementalBuffers on {version}"
        );
        assert_eq!(
            report.status(Feature::IncrementalBuffers).by_detection,
            Some(minor >= (6, 12)),
            "a real call decided"
        );
        // SEND_FD is found by sending an fd for real (6.0, not 6.2); the receiver's half,
        // FIXED_FD_INSTALL, is 6.8: so 6.1 can send fds natively but not receive them.
        assert!(has(Feature::MsgRingSendFd), "MsgRingSendFd on {version}");
        assert_eq!(
            report.status(Feature::MsgRingSendFd).by_detection,
            Some(true),
            "a real call decided"
        );
        assert_eq!(
            has(Feature::FixedFdInstall),
            minor >= (6, 8),
            "FixedFdInstall on {version}"
        );
        // The file ops (5.2-5.15) are all there; FTRUNCATE is 6.9, so 6.1 runs its fallback.
        for f in [
            Feature::UnlinkAt,
            Feature::RenameAt,
            Feature::MkdirAt,
            Feature::SymlinkAt,
            Feature::LinkAt,
            Feature::Fallocate,
            Feature::Fadvise,
            Feature::SyncFileRange,
        ] {
            assert!(has(f), "{f} must be present on {version}");
        }
        assert_eq!(
            has(Feature::Ftruncate),
            minor >= (6, 9),
            "Ftruncate on {version}"
        );
    }
    // Where the real kernel disagrees with the table, the kernel wins; each known disagreement
    // is recorded here. Any other disagreement fails, so a wrong table row is noticed.
    let mismatches: Vec<(Feature, bool)> = report
        .rows
        .iter()
        .filter_map(|r| {
            r.by_detection
                .filter(|&d| d != r.by_version)
                .map(|d| (r.feature, d))
        })
        .collect();
    let expected: &[(Feature, bool)] = if minor == (5, 10) {
        // Debian's 5.10 carries the io_uring backport from 5.15 (stable 5.10.162+): it reports
        // IORING_FEAT_EXT_ARG although mainline added it in 5.11. Seen on 5.10.0-46-cloud-amd64.
        // The same backport brings OP_RENAMEAT and OP_UNLINKAT (5.11) but not MKDIRAT,
        // SYMLINKAT, LINKAT (5.15): its probe lists opcodes 35 and 36 (seen in the matrix).
        &[
            (Feature::ExtArg, true),
            (Feature::UnlinkAt, true),
            (Feature::RenameAt, true),
        ]
    } else {
        &[]
    };
    assert_eq!(
        mismatches, expected,
        "kernel {version} disagrees with the feature table"
    );
}

#[test]
fn demotion_sticks_and_cache_invalidates() {
    // ExtArg is not used by the ring, so demoting it cannot disturb other tests.
    let before = features::is_available(Feature::ExtArg);
    features::demote(Feature::ExtArg, "test: kernel said EINVAL");
    assert!(features::is_demoted(Feature::ExtArg));
    assert!(!features::is_available(Feature::ExtArg));
    let cached = features::detected();
    assert!(std::ptr::eq(cached, features::detected()), "cached");
    features::invalidate();
    let again = features::detected();
    assert!(
        !std::ptr::eq(cached, again),
        "invalidate() must make the next query detect again"
    );
    assert_eq!(
        again.available.contains(Feature::ExtArg),
        before,
        "detection itself unchanged"
    );
    assert!(
        !features::is_available(Feature::ExtArg),
        "demotion survives re-detection"
    );
}

fn arb_inputs() -> impl Strategy<Value = DetectionInputs> {
    (
        (4u32..8, 0u32..20, 0u32..200),
        any::<bool>(),
        prop::option::of(prop::collection::vec(0u8..64, 0..64)),
        prop::option::of(any::<u32>()),
        [
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
        ],
    )
        .prop_map(|((a, b, c), ok, opcodes, flags, t)| DetectionInputs {
            release: None,
            version: Some(KernelVersion::new(a, b, c)),
            io_uring: if ok { Ok(()) } else { Err("EPERM".into()) },
            opcodes,
            feature_flags: flags,
            tries: TryResults {
                register_ring_fd: t[0],
                register_buf_ring: t[1],
                coop_taskrun: t[2],
                ..TryResults::default()
            },
        })
}

proptest! {
    #[test]
    fn parsing_never_panics(s in ".{0,40}") {
        let _ = s.parse::<KernelVersion>();
    }

    #[test]
    fn display_parse_roundtrip(a in 0u32..1000, b in 0u32..1000, c in 0u32..100000, suffix in "(-[a-z0-9.]{1,12})?") {
        let v = KernelVersion::new(a, b, c);
        prop_assert_eq!(format!("{v}{suffix}").parse::<KernelVersion>().unwrap(), v);
    }

    #[test]
    fn ordering_matches_tuples(a in any::<(u32, u32, u32)>(), b in any::<(u32, u32, u32)>()) {
        let (x, y) = (KernelVersion::new(a.0, a.1, a.2), KernelVersion::new(b.0, b.1, b.2));
        prop_assert_eq!(x.cmp(&y), a.cmp(&b));
    }

    #[test]
    fn decisions_follow_the_trust_order(inputs in arb_inputs()) {
        let r = decide(inputs.clone());
        for row in &r.rows {
            if inputs.io_uring.is_err() {
                prop_assert!(!row.available);
            } else if let Some(d) = row.by_detection {
                prop_assert_eq!(row.available, d, "{} must follow its detection", row.feature);
            } else if matches!(row.feature.detection(), features::Detection::Version(_)) {
                prop_assert!(!row.available || row.by_version);
            } else {
                prop_assert_eq!(row.available, row.by_version);
            }
        }
        prop_assert_eq!(r.available, r.rows.iter().filter(|x| x.available).map(|x| x.feature).collect::<AvailableFeatures>());
    }
}

/// Every row's first mainline kernel, stated here independently of the table (from each
/// release's io_uring changes), so a row edited by mistake fails. The rows a probe, flag or
/// real call can see are also checked against each real kernel of the matrix by
/// `running_kernel_reports_what_it_should`.
#[test]
fn every_feature_has_the_kernel_that_introduced_it() {
    let expected: &[(&str, u32, u32)] = &[
        ("MultiShotAccept", 5, 19),
        ("MultiShotRecv", 6, 0),
        ("MultiShotRecvMsg", 6, 0),
        ("RegisteredRingFd", 5, 18),
        ("MsgRing", 5, 18),
        ("MsgRingSendFd", 6, 0),
        ("FixedFdInstall", 6, 8),
        ("BufferRings", 5, 19),
        ("ProvidedBuffers", 5, 7),
        ("AsyncCancel", 5, 5),
        ("CancelByFd", 5, 19),
        ("FixedFileUpdate", 5, 6),
        ("BatchedSubmissions", 5, 1),
        ("SendZeroCopy", 6, 0),
        ("SingleIssuer", 6, 0),
        ("DeferTaskrun", 6, 1),
        ("CoopTaskrun", 5, 19),
        ("SocketOp", 5, 19),
        ("BindListen", 6, 11),
        ("ReadMultishot", 6, 7),
        ("RecvSendBundle", 6, 10),
        ("IncrementalBuffers", 6, 12),
        ("FastPoll", 5, 7),
        ("ExtArg", 5, 11),
        ("NoDrop", 5, 5),
        ("UnlinkAt", 5, 11),
        ("RenameAt", 5, 11),
        ("MkdirAt", 5, 15),
        ("SymlinkAt", 5, 15),
        ("LinkAt", 5, 15),
        ("Fallocate", 5, 6),
        ("Ftruncate", 6, 9),
        ("Fadvise", 5, 6),
        ("SyncFileRange", 5, 2),
        ("SendRecvMsg", 5, 3),
        ("RegisteredBuffers", 5, 1),
        ("RegisteredFiles", 5, 5),
        ("Splice", 5, 7),
        ("Tee", 5, 8),
    ];
    assert_eq!(
        Feature::all().count(),
        expected.len(),
        "a row without a stated version"
    );
    for &(name, major, minor) in expected {
        let f: Feature = name.parse().unwrap();
        let v = f.required_kernel_version();
        assert_eq!((v.major, v.minor), (major, minor), "{name}");
    }
}

/// `Ring::new_with_detection` logs one info line saying what is native and what falls back,
/// and it agrees with the ring; `KernelVersion::current` agrees with detection.
#[test]
fn ring_creation_logs_what_is_native_and_what_falls_back() {
    let capture = support::capture::Capture::default();
    let ring = tracing::subscriber::with_default(capture.clone(), || {
        Ring::new_with_detection(safer_ring::SaferRingConfig::default())
    })
    .unwrap();
    let lines = capture.lines();
    let line = lines
        .iter()
        .find(|l| l.starts_with("safer-ring progressive enhancement"))
        .unwrap_or_else(|| panic!("no enhancement line in {lines:?}"));
    assert!(
        line.contains(&format!("backend={}", ring.backend())),
        "{line}"
    );
    let native_part = line
        .split(" native=")
        .nth(1)
        .and_then(|rest| rest.split(" fallback=").next())
        .unwrap();
    for f in Feature::all() {
        let listed = native_part.contains(&format!("\"{}\"", f.name()));
        assert_eq!(listed, ring.uses_native(f), "{f} in {line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("safer-ring ring created")),
        "{lines:?}"
    );
    assert_eq!(
        KernelVersion::current().ok(),
        features::detected().inputs.version
    );
}
