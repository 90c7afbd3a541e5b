//! On io_uring, a blocking op whose opcode the ring does not push (here: mkdir with `MkdirAt`
//! turned off) runs on the blocking pool's threads, as on epoll, not on the ring's thread.
//! It counts the process's pool threads: serialized with the other tests of this binary.

use safer_ring::{BackendKind, Feature};

use crate::support;

#[test]
fn io_uring_runs_a_fallback_mkdir_on_the_pool() {
    let _serial = crate::serial();
    let Some(ring) = support::ring_with(
        support::uring_wishing(Feature::MkdirAt, Some(false))
            .entries(16)
            .blocking_idle_timeout(std::time::Duration::from_secs(60)),
    ) else {
        return;
    };
    assert_eq!(ring.backend(), BackendKind::IoUring);
    assert!(!ring.uses_native(Feature::MkdirAt));
    let pool = || support::pool_thread_calls().len();
    // Those of the rings of this binary's earlier tests exit after their idle timeout.
    assert_eq!(
        crate::settle_pool_threads(0, std::time::Duration::from_secs(60)),
        0,
        "pool threads of earlier tests (10 s default idle timeout)"
    );
    assert_eq!(pool(), 0, "no pool thread before the first blocking op");
    let dir = support::TempPath::new("uring-offload");
    ring.block_on(ring.create_dir(&dir.0)).unwrap();
    assert!(std::fs::metadata(&dir.0).unwrap().is_dir());
    assert_eq!(pool(), 1, "the mkdir ran on a pool thread");
    let s = ring.enhancement_stats(Feature::MkdirAt);
    assert!(s.fallback == 1 && s.native == 0, "{s:?}");
    // A path op the ring pushes natively does not start another thread.
    if ring.uses_native(Feature::UnlinkAt) {
        ring.block_on(ring.remove_dir(&dir.0)).unwrap();
        assert_eq!(pool(), 1);
    } else {
        std::fs::remove_dir(&dir.0).unwrap();
    }
}
