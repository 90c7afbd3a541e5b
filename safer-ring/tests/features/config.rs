//! Ring creation: validation errors name the bad value; backend choice; setup flags.

use safer_ring::{BackendKind, Ring, SaferRingConfig, SaferRingError};

use crate::support;

#[test]
fn zero_entries_is_a_clear_error() {
    let e = Ring::new(0).unwrap_err();
    assert!(
        matches!(
            e,
            SaferRingError::InvalidConfig {
                field: "entries",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "invalid configuration: entries = 0: expected 2..=32768 submission queue entries (an op with a timeout takes two)"
    );
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn oversized_entries_is_a_clear_error() {
    let e = Ring::new(40_000).unwrap_err();
    assert!(e.to_string().contains("entries = 40000"), "{e}");
}

#[test]
fn cq_smaller_than_sq_is_rejected() {
    let e = Ring::with_config(SaferRingConfig::default().entries(64).cq_entries(8)).unwrap_err();
    assert!(e.to_string().contains("cq_entries = 8"), "{e}");
}

#[test]
fn defer_without_single_issuer_is_rejected() {
    let e = Ring::with_config(SaferRingConfig::default().single_issuer(false)).unwrap_err();
    assert!(e.to_string().contains("defer_taskrun"), "{e}");
}

#[test]
fn backend_names_parse() {
    assert_eq!(
        "io_uring".parse::<BackendKind>().unwrap(),
        BackendKind::IoUring
    );
    assert_eq!("EPOLL".parse::<BackendKind>().unwrap(), BackendKind::Epoll);
    assert_eq!("auto".parse::<BackendKind>().unwrap(), BackendKind::Auto);
    let e = "kqueue".parse::<BackendKind>().unwrap_err();
    assert!(
        e.to_string().contains("kqueue") && e.to_string().contains("auto, io_uring, epoll"),
        "{e}"
    );
}

#[test]
fn explicit_epoll_reports_why() {
    let r = Ring::with_config(SaferRingConfig::default().backend(BackendKind::Epoll)).unwrap();
    assert_eq!(r.backend(), BackendKind::Epoll);
    assert!(
        r.info()
            .fallback_reason
            .as_deref()
            .unwrap()
            .contains("requested")
    );
    assert!(r.info().setup.is_none());
}

/// The fast single-threaded setup flags are granted wherever the kernel has them, and the
/// ring records what it got. On kernels without them, setup retried without the flag.
#[test]
fn io_uring_records_setup_flags() {
    let Some(r) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let s = r.info().setup.expect("io_uring ring has a setup report");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = release.trim().split(['.', '-']);
    let major: u32 = it.next().unwrap().parse().unwrap();
    let minor: u32 = it.next().unwrap().parse().unwrap();
    let v = (major, minor);
    assert_eq!(s.coop_taskrun, v >= (5, 19), "COOP_TASKRUN on {release}");
    assert_eq!(s.single_issuer, v >= (6, 0), "SINGLE_ISSUER on {release}");
    assert_eq!(s.defer_taskrun, v >= (6, 1), "DEFER_TASKRUN on {release}");
    assert!(s.features & 0b10 != 0, "FEAT_NODROP (5.5+) present");
    assert!(s.sq_entries >= 64 && s.cq_entries >= 128);
}

#[test]
fn setup_flags_can_be_turned_off() {
    let cfg = SaferRingConfig::default()
        .coop_taskrun(false)
        .defer_taskrun(false)
        .single_issuer(false);
    let Some(r) = support::ring_with(cfg.backend(BackendKind::IoUring)) else {
        return;
    };
    let s = r.info().setup.unwrap();
    assert!(!s.coop_taskrun && !s.single_issuer && !s.defer_taskrun);
    r.block_on(async { r.nop().await.unwrap() });
}
