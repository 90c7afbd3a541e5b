//! SAFER_RING_BACKEND overrides Ring::new (own test binary: it changes the environment).

use safer_ring::{BackendKind, Ring, SaferRingConfig};

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
}
