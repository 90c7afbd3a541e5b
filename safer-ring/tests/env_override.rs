//! SAFER_RING_BACKEND and SAFER_RING_FEATURES override configuration defaults (own test binary,
//! one test: it changes the environment).

use safer_ring::{
    BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig, features,
};

#[test]
fn env_selects_backend_and_rejects_garbage() {
    // SAFETY: this binary has a single test, so no other thread reads the environment.
    unsafe { std::env::set_var("SAFER_RING_BACKEND", "epoll") };
    assert_eq!(Ring::new(8).unwrap().backend(), BackendKind::Epoll);
    // An explicit config choice beats the environment.
    let r = Ring::with_config(SaferRingConfig::default().backend(BackendKind::Auto)).unwrap();
    assert_ne!(r.backend(), BackendKind::Auto);

    // SAFETY: as above.
    unsafe { std::env::set_var("SAFER_RING_BACKEND", "fastest") };
    let e = Ring::new(8).unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable SAFER_RING_BACKEND=\"fastest\" is invalid: expected auto, io_uring or epoll"
    );

    // SAFETY: as above.
    unsafe { std::env::set_var("SAFER_RING_BACKEND", "auto") };
    let r = Ring::new(8).unwrap();
    assert_ne!(r.backend(), BackendKind::Auto);
    // SAFETY: as above.
    unsafe { std::env::remove_var("SAFER_RING_BACKEND") };
    features_env();
}

fn set_features(v: &str) {
    // SAFETY: this binary has a single test, so no other thread reads the environment.
    unsafe { std::env::set_var("SAFER_RING_FEATURES", v) };
}

/// SAFER_RING_FEATURES turns features off (or asks for them) for every ring of the process
/// without a code change; an explicit configuration wish beats it.
fn features_env() {
    let has = |f| features::is_available(f);
    let uring = || SaferRingConfig::default().backend(BackendKind::Auto);
    set_features("-MultiShotAccept, -sendzerocopy, -RecvSendBundle");
    let r = Ring::with_config(uring()).unwrap();
    assert!(!r.uses_native(Feature::MultiShotAccept));
    assert!(!r.uses_native(Feature::SendZeroCopy));
    // Receive bundles off: `recv_enhanced`'s multishot recv fills one buffer per completion.
    assert!(!r.uses_native(Feature::RecvSendBundle));
    assert_eq!(
        r.uses_native(Feature::MultiShotRecv),
        r.backend() == BackendKind::IoUring && has(Feature::MultiShotRecv)
    );
    let io_uring = r.backend() == BackendKind::IoUring;
    assert_eq!(
        r.uses_native(Feature::AsyncCancel),
        io_uring && has(Feature::AsyncCancel)
    );
    let explicit = ProgressiveEnhancementConfig::default().feature(Feature::MultiShotAccept, None);
    let r = Ring::with_config(uring().enhancement(explicit)).unwrap();
    assert!(
        !r.uses_native(Feature::MultiShotAccept),
        "None is no explicit wish"
    );
    let explicit =
        ProgressiveEnhancementConfig::default().feature(Feature::MultiShotAccept, Some(true));
    let r = Ring::with_config(uring().enhancement(explicit)).unwrap();
    assert_eq!(
        r.uses_native(Feature::MultiShotAccept),
        io_uring && has(Feature::MultiShotAccept),
        "an explicit wish beats the environment"
    );

    // `-all`: plain io_uring, no setup flags, no registered ring fd.
    set_features("-all");
    let r = Ring::with_config(uring()).unwrap();
    assert!(r.features().is_empty(), "{:?}", r.features());
    assert_eq!(r.registered_ring_fd(), None);
    if let Some(s) = r.info().setup {
        assert!(
            !s.coop_taskrun && !s.single_issuer && !s.defer_taskrun,
            "{s:?}"
        );
    }

    // Strict mode turns a wanted-but-missing feature from the environment into an error.
    set_features("+MultiShotAccept");
    let strict = ProgressiveEnhancementConfig::default().strict(true);
    let r = Ring::with_config(
        SaferRingConfig::default()
            .backend(BackendKind::Epoll)
            .enhancement(strict),
    );
    assert!(
        matches!(
            r,
            Err(safer_ring::SaferRingError::UnsupportedFeature {
                feature: Feature::MultiShotAccept,
                ..
            })
        ),
        "{r:?}"
    );

    set_features("-MultiShotAccept,-NoSuchThing");
    let e = Ring::new(8).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "environment variable SAFER_RING_FEATURES=\"-MultiShotAccept,-NoSuchThing\" is invalid: expected a comma-separated list of feature names"
        ),
        "{e}"
    );
    // SAFETY: as above.
    unsafe { std::env::remove_var("SAFER_RING_FEATURES") };
}
