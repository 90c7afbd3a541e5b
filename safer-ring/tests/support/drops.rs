//! Dropping ops mid-flight: the three ring setups a dropped op's cancel takes a different path
//! on, dropping an op queued or submitted, and a bounded wait for what must arrive.

use std::future::Future;
use std::time::Duration;

use safer_ring::{BackendKind, Feature, Ring, SaferRingConfig};

use super::soundness::{self, poll_once};

/// io_uring as configured by default (DEFER_TASKRUN where the kernel has it), io_uring
/// without DEFER_TASKRUN or COOP_TASKRUN (`for_tokio()`), and epoll.
pub fn rings() -> Vec<(&'static str, Ring)> {
    rings_with(None)
}

/// `rings()`, plus io_uring with `off` forced off (its syscall fallback) when given.
pub fn rings_with(off: Option<Feature>) -> Vec<(&'static str, Ring)> {
    let mut out = Vec::new();
    if let Some(r) = super::ring_with(uring()) {
        out.push(("io_uring", r));
    }
    let plain = SaferRingConfig::for_tokio()
        .entries(64)
        .backend(BackendKind::IoUring);
    if let Some(r) = super::ring_with(plain) {
        assert!(r.info().setup.is_some_and(|s| !s.defer_taskrun));
        out.push(("io_uring-no-defer", r));
    }
    if let Some(f) = off
        && let Some(r) = super::ring_with(super::uring_wishing(f, Some(false)).entries(64))
    {
        out.push(("io_uring-fallback", r));
    }
    out.push(("epoll", super::ring(BackendKind::Epoll).unwrap()));
    out
}

/// The default io_uring configuration of these tests.
pub fn uring() -> SaferRingConfig {
    SaferRingConfig::default()
        .entries(64)
        .backend(BackendKind::IoUring)
}

/// When the dropped op is dropped: still in the SQ, or after a turn submitted it.
#[derive(Clone, Copy, Debug)]
pub enum When {
    Queued,
    Submitted,
}

/// Polls `op` once (it must be pending), lets a turn submit it if `when` says so, drops it.
pub fn arm_and_drop<F: Future + Unpin>(ring: &Ring, mut op: F, when: When, what: &str) {
    assert!(
        poll_once(&mut op).is_pending(),
        "{what}: nothing was sent yet"
    );
    if let When::Submitted = when {
        ring.poll_completions().unwrap();
        assert!(
            poll_once(&mut op).is_pending(),
            "{what}: nothing was sent yet"
        );
    }
    drop(op);
}

/// Awaits `fut`, which must complete (what it waits for was already sent), on `ring`. The
/// bound only turns a lost message into a failure instead of a hang: generous, as a slow
/// (emulated, loaded) machine must never reach it.
pub fn must_arrive<T>(ring: &Ring, what: &str, fut: impl Future<Output = T>) -> T {
    ring.block_on(ring.timeout(Duration::from_secs(30), fut))
        .unwrap_or_else(|_| panic!("{what}: what was sent after the drop never came"))
}

/// Runs `test` on each ring of `rings`, dropping queued and submitted; fails with every case
/// that failed.
pub fn each_on(rings: Vec<(&'static str, Ring)>, test: impl Fn(&str, &Ring, When)) {
    let mut failed = Vec::new();
    for (name, ring) in rings {
        for when in [When::Queued, When::Submitted] {
            let what = format!("{name}, dropped {when:?}");
            let run = std::panic::AssertUnwindSafe(|| test(&what, &ring, when));
            if let Err(p) = std::panic::catch_unwind(run) {
                failed.push(soundness::panic_msg(&*p));
            }
            let _ = soundness::drive(&ring, 5);
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// `each_on(rings(), test)`.
pub fn each(test: impl Fn(&str, &Ring, When)) {
    each_on(rings(), test)
}
