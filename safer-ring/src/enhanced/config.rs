//! `ProgressiveEnhancementConfig`: which native features a ring may use.

use std::time::Duration;

use crate::SaferRingError;
use crate::features::{AvailableFeatures, Feature, table_len};

/// Environment variable with per-feature wishes for every ring of the process, e.g.
/// `SAFER_RING_FEATURES=-MultiShotRecv,-SendZeroCopy` (`-name`: always the fallback; `name` or
/// `+name`: wanted; `all` names every feature). It fills the wishes a configuration leaves at
/// `None`: an explicit [`ProgressiveEnhancementConfig::feature`] call beats it, as an explicit
/// backend beats `SAFER_RING_BACKEND`.
pub const FEATURES_ENV: &str = "SAFER_RING_FEATURES";

const FEATURES_EXPECTED: &str = "a comma-separated list of feature names as `safer-ring features` \
prints them (or `all`), each optionally prefixed with - (always the fallback) or + (wanted)";

/// Per-feature wishes plus the policy for unmet ones.
///
/// For each feature: `None` (default) uses it when available (except [opt-in](Feature::opt_in)
/// features, which need `Some(true)`); `Some(false)` always takes the
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
    pub(crate) fallback_timeout: Option<Duration>,
    pub(crate) detection_cache: bool,
    pub(crate) zero_copy_threshold: usize,
    forced: Vec<Feature>,
}

impl Default for ProgressiveEnhancementConfig {
    fn default() -> Self {
        ProgressiveEnhancementConfig {
            wishes: vec![None; table_len()],
            strict: false,
            fallback_timeout: None,
            detection_cache: true,
            zero_copy_threshold: 16 * 1024,
            forced: Vec::new(),
        }
    }
}

impl ProgressiveEnhancementConfig {
    /// Sets the wish for one feature.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Feature, ProgressiveEnhancementConfig};
    /// let cfg = ProgressiveEnhancementConfig::default()
    ///     .feature(Feature::SendZeroCopy, Some(false)) // always the fallback
    ///     .feature(Feature::MsgRingSendFd, Some(true)); // opt-in: asked for
    /// assert_eq!(cfg.wish(Feature::SendZeroCopy), Some(false));
    /// ```
    pub fn feature(mut self, feature: Feature, want: Option<bool>) -> Self {
        self.wishes[feature as usize] = want;
        self
    }

    /// The wish for `feature`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Feature, ProgressiveEnhancementConfig};
    /// assert_eq!(ProgressiveEnhancementConfig::default().wish(Feature::MultiShotAccept), None);
    /// ```
    pub fn wish(&self, feature: Feature) -> Option<bool> {
        self.wishes[feature as usize]
    }

    /// Fail ring creation when a feature wished `Some(true)` is unavailable.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};
    /// let want = ProgressiveEnhancementConfig::default()
    ///     .feature(Feature::MultiShotAccept, Some(true))
    ///     .strict(true);
    /// let cfg = SaferRingConfig::default().backend(BackendKind::Epoll).enhancement(want);
    /// assert!(Ring::with_config(cfg).is_err(), "epoll has no multishot accept");
    /// ```
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = on;
        self
    }

    /// Upper bound for one fallback operation (the single accepts `accept_multiple` loops over
    /// where multishot accept is not used): when it passes, the stream yields one
    /// `ErrorKind::TimedOut` item and goes on accepting. Default: no bound (like the native
    /// path, which waits for connections as long as it takes).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use safer_ring::ProgressiveEnhancementConfig;
    /// let cfg = ProgressiveEnhancementConfig::default().fallback_timeout(Duration::from_secs(1));
    /// # let _ = cfg;
    /// ```
    pub fn fallback_timeout(mut self, timeout: Duration) -> Self {
        self.fallback_timeout = Some(timeout);
        self
    }

    /// Smallest send that [`Ring::send_enhanced`](crate::RingRef::send_enhanced) makes zero-copy
    /// (default 16 KiB, a common choice for SEND_ZC; not tuned on this project's machines).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::ProgressiveEnhancementConfig;
    /// // Only sends of 64 KiB and more try SEND_ZC.
    /// let cfg = ProgressiveEnhancementConfig::default().zero_copy_threshold(64 * 1024);
    /// # let _ = cfg;
    /// ```
    pub fn zero_copy_threshold(mut self, bytes: usize) -> Self {
        self.zero_copy_threshold = bytes;
        self
    }

    /// Use the process-wide detection cache (default) or detect afresh for this ring.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{ProgressiveEnhancementConfig, Ring, SaferRingConfig};
    /// // Detect afresh for this ring instead of using the process-wide result.
    /// let enh = ProgressiveEnhancementConfig::default().detection_cache(false);
    /// let ring = Ring::new_with_detection(SaferRingConfig::default().enhancement(enh))?;
    /// # drop(ring);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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

    /// Fills the wishes left at `None` from [`FEATURES_ENV`], when set.
    ///
    /// # Errors
    /// [`SaferRingError::InvalidEnv`] naming the variable when an entry is not a feature name.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::ProgressiveEnhancementConfig;
    /// // SAFER_RING_FEATURES=-SendZeroCopy would turn SEND_ZC off here.
    /// let cfg = ProgressiveEnhancementConfig::default().with_env()?;
    /// # let _ = cfg;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_env(self) -> crate::Result<Self> {
        match std::env::var(FEATURES_ENV) {
            Ok(v) => self.with_spec(&v).map_err(|()| SaferRingError::InvalidEnv {
                name: FEATURES_ENV,
                value: v,
                expected: FEATURES_EXPECTED,
            }),
            Err(std::env::VarError::NotPresent) => Ok(self),
            Err(std::env::VarError::NotUnicode(v)) => Err(SaferRingError::InvalidEnv {
                name: FEATURES_ENV,
                value: v.to_string_lossy().into_owned(),
                expected: FEATURES_EXPECTED,
            }),
        }
    }

    /// Applies a `FEATURES_ENV`-style spec to the wishes still at `None`.
    fn with_spec(mut self, spec: &str) -> Result<Self, ()> {
        let mut env = vec![None; table_len()];
        for item in spec
            .split([',', ' '])
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let (want, name) = match (item.strip_prefix('-'), item.strip_prefix('+')) {
                (Some(name), _) => (false, name),
                (_, Some(name)) => (true, name),
                _ => (true, item),
            };
            if name.eq_ignore_ascii_case("all") {
                env.fill(Some(want));
            } else {
                env[name.parse::<Feature>().map_err(drop)? as usize] = Some(want);
            }
        }
        for (mine, from_env) in self.wishes.iter_mut().zip(env) {
            if mine.is_none() {
                *mine = from_env;
            }
        }
        Ok(self)
    }

    /// Whether a ring should use `feature` natively given what is `available` (an
    /// [opt-in](Feature::opt_in) feature only when wished `Some(true)`).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{AvailableFeatures, Feature, ProgressiveEnhancementConfig};
    /// let cfg = ProgressiveEnhancementConfig::default();
    /// let kernel: AvailableFeatures = [Feature::MultiShotAccept, Feature::MsgRingSendFd].into_iter().collect();
    /// assert!(cfg.should_use_feature(Feature::MultiShotAccept, &kernel));
    /// assert!(!cfg.should_use_feature(Feature::MsgRingSendFd, &kernel), "opt-in: not asked for");
    /// ```
    pub fn should_use_feature(&self, feature: Feature, available: &AvailableFeatures) -> bool {
        let wanted = match self.wish(feature) {
            Some(w) => w,
            None => !feature.opt_in(),
        };
        wanted && available.contains(feature)
    }
}
