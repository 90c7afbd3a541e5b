//! The backend each kernel-matrix row must get from `Ring::new`: the matrix states it in
//! `SAFER_RING_MATRIX_EXPECT` (io_uring, or epoll where `kernel.io_uring_disabled` refuses this
//! user). Skipped outside the matrix.

use safer_ring::{BackendKind, Ring, features};

use crate::support;

/// This process's uid, for the failure messages (a row's expectation depends on it).
fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn sysctl(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "absent".into())
}

#[test]
fn ring_new_takes_the_backend_the_matrix_expects() {
    let Ok(expect) = std::env::var("SAFER_RING_MATRIX_EXPECT") else {
        support::skip("SAFER_RING_MATRIX_EXPECT unset: not a kernel-matrix run");
        return;
    };
    let ring = Ring::new(8).unwrap();
    let info = ring.info();
    let here = format!(
        "uid {}, io_uring_disabled={}, io_uring_group={}, ring {info:?}",
        uid(),
        sysctl("io_uring_disabled"),
        sysctl("io_uring_group")
    );
    let detected = features::detected().io_uring_available();
    match expect.as_str() {
        "io_uring" => {
            assert_eq!(info.backend, BackendKind::IoUring, "{here}");
            assert!(info.fallback_reason.is_none(), "{here}");
            assert!(
                detected.is_ok(),
                "detection disagrees: {detected:?}; {here}"
            );
        }
        "epoll" => {
            assert_eq!(info.backend, BackendKind::Epoll, "{here}");
            // The refusal is the kernel's EPERM, and the reason points at the sysctl.
            let reason = info.fallback_reason.as_deref().unwrap_or_default();
            assert!(
                reason.contains("EPERM") && reason.contains("io_uring_disabled"),
                "fallback reason should name EPERM and the sysctl: {here}"
            );
            assert!(detected.is_err(), "detection says io_uring works; {here}");
        }
        other => panic!("SAFER_RING_MATRIX_EXPECT={other:?}: expected \"io_uring\" or \"epoll\""),
    }
}
