//! `ProgressiveEnhancementConfig`: which native features a ring may use.

use std::time::Duration;

use crate::features::{AvailableFeatures, Feature, table_len};

/// Per-feature wishes plus the policy for unmet ones.
///
/// For each feature: `None` (default) uses it when available; `Some(false)` always takes the
/// fallback; `Some(true)` uses it, and when unavailable logs a warning and falls back — or,
/// with [`strict`](Self::strict), fails ring creation with
/// [`SaferRingError::UnsupportedFeature`](crate::SaferRingError::UnsupportedFeature).
///
/// # Examples
/// ```
/// use safer_ring::{Feature, ProgressiveEnhancementConfig, SaferRingConfig};
/// let pe = ProgressiveEnhancementConfig::default()
///     .feature(Feature::MultiShotAccept, Some(false)) // always the fallback
///     .feature(Feature::RegisteredRingFd, Some(true));
/// let cfg = SaferRingConfig::default().enhancement(pe);
/// # let _ = cfg;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressiveEnhancementConfig {
    wishes: Vec<Option<bool>>,
    pub(crate) strict: bool,
    pub(crate) fallback_timeout: Duration,
    pub(crate) detection_cache: bool,
    pub(crate) zero_copy_threshold: usize,
    forced: Vec<Feature>,
}

impl Default for ProgressiveEnhancementConfig {
    fn default() -> Self {
        ProgressiveEnhancementConfig {
            wishes: vec![None; table_len()],
            strict: false,
            fallback_timeout: Duration::from_secs(30),
            detection_cache: true,
            zero_copy_threshold: 16 * 1024,
            forced: Vec::new(),
        }
    }
}

impl ProgressiveEnhancementConfig {
    /// Sets the wish for one feature.
    pub fn feature(mut self, feature: Feature, want: Option<bool>) -> Self {
        self.wishes[feature as usize] = want;
        self
    }

    /// The wish for `feature`.
    pub fn wish(&self, feature: Feature) -> Option<bool> {
        self.wishes[feature as usize]
    }

    /// Fail ring creation when a feature wished `Some(true)` is unavailable.
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = on;
        self
    }

    /// Upper bound for one fallback operation (e.g. the accept loop's single accepts) before
    /// it reports `TimedOut`. Default 30 s.
    pub fn fallback_timeout(mut self, timeout: Duration) -> Self {
        self.fallback_timeout = timeout;
        self
    }

    /// Smallest send that [`Ring::send_enhanced`](crate::Ring::send_enhanced) makes zero-copy
    /// (default 16 KiB, a common choice for SEND_ZC; not tuned on this project's machines).
    pub fn zero_copy_threshold(mut self, bytes: usize) -> Self {
        self.zero_copy_threshold = bytes;
        self
    }

    /// Use the process-wide detection cache (default) or detect afresh for this ring.
    pub fn detection_cache(mut self, on: bool) -> Self {
        self.detection_cache = on;
        self
    }

    /// Attempts `feature` natively even where detection says no, so the kernel's own answer
    /// (EINVAL and demotion) can be tested on real kernels. Not for production use.
    #[doc(hidden)]
    pub fn force_native_for_testing(mut self, feature: Feature) -> Self {
        self.forced.push(feature);
        self
    }

    pub(crate) fn forced(&self, feature: Feature) -> bool {
        self.forced.contains(&feature) && !crate::features::is_demoted(feature)
    }

    /// Whether a ring should use `feature` natively given what is `available`.
    pub fn should_use_feature(&self, feature: Feature, available: &AvailableFeatures) -> bool {
        self.wish(feature) != Some(false) && available.supports_feature(feature)
    }
}
