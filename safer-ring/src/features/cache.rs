//! Process-wide detection cache and runtime demotion.
//!
//! A cached query is a thread-local read compared against a global generation (no lock, no
//! atomic read-modify-write); `invalidate` bumps the generation. Each detection result is leaked
//! (a few hundred bytes per invalidation) so cached references stay `'static`.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Feature, FeatureReport, detect_now};

static GENERATION: AtomicU64 = AtomicU64::new(1);
static CURRENT: Mutex<Option<&'static FeatureReport>> = Mutex::new(None);
static DEMOTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static LOCAL: Cell<(u64, Option<&'static FeatureReport>)> = const { Cell::new((0, None)) };
}

/// The cached detection result for this process (detected on first use).
///
/// # Examples
/// ```
/// use safer_ring::Feature;
/// let report = safer_ring::features::detected(); // detected once, then cached
/// println!("kernel {:?}", report.inputs.release);
/// println!("SEND_ZC: {}", report.available.contains(Feature::SendZeroCopy));
/// ```
pub fn detected() -> &'static FeatureReport {
    let generation = GENERATION.load(Ordering::Acquire);
    if let (g, Some(r)) = LOCAL.get()
        && g == generation
    {
        return r;
    }
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    let report = *cur.get_or_insert_with(|| Box::leak(Box::new(detect_now())));
    // Read the generation under the lock: `invalidate` changes it only while holding the lock.
    LOCAL.set((GENERATION.load(Ordering::Acquire), Some(report)));
    report
}

/// Forgets the cached result; the next query detects again (for long-running programs that
/// may see the kernel's answer change, e.g. the `io_uring_disabled` sysctl).
///
/// # Examples
/// ```
/// safer_ring::features::invalidate();
/// let again = safer_ring::features::detected(); // detects afresh
/// # drop(again);
/// ```
pub fn invalidate() {
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    *cur = None;
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Marks `feature` unusable for the rest of the process after the kernel rejected it (EINVAL
/// on a feature the probe could not see). Logged once per feature.
///
/// # Examples
/// ```
/// use safer_ring::{features, Feature};
/// // A feature nothing in safer-ring uses, so other code in this process is unaffected.
/// features::demote(Feature::RecvSendBundle, "EINVAL from a backported kernel");
/// assert!(features::is_demoted(Feature::RecvSendBundle));
/// assert!(!features::is_available(Feature::RecvSendBundle));
/// ```
pub fn demote(feature: Feature, why: &str) {
    let prev = DEMOTED.fetch_or(feature.bit(), Ordering::AcqRel);
    if prev & feature.bit() == 0 {
        tracing::warn!(
            feature = feature.name(),
            reason = why,
            "kernel rejected feature at run time; using its fallback from now on"
        );
    }
}

/// Whether `feature` was demoted at run time.
///
/// # Examples
/// ```
/// use safer_ring::{features, Feature};
/// if features::is_demoted(Feature::MultiShotAccept) {
///     println!("the kernel refused multishot accept at run time");
/// }
/// ```
pub fn is_demoted(feature: Feature) -> bool {
    DEMOTED.load(Ordering::Acquire) & feature.bit() != 0
}

/// Whether `feature` is available: detected (cached) and not demoted.
///
/// # Examples
/// ```
/// use safer_ring::{features, Feature};
/// if features::is_available(Feature::MsgRing) {
///     println!("MSG_RING doorbells available");
/// }
/// ```
pub fn is_available(feature: Feature) -> bool {
    !is_demoted(feature) && detected().available.contains(feature)
}
