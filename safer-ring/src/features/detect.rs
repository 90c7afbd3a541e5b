//! Feature detection: gather what the kernel says, then decide per feature in trust order
//! real call > probe > feature flags > version table.

use super::table::{Detection, Try};
use super::{AvailableFeatures, Feature, KernelVersion};
use crate::kernel::probe::{self, KernelAnswers};

/// Everything detection looks at. Build one by hand to inject a kernel (tests, mocks).
///
/// # Examples
/// ```
/// use safer_ring::features::{decide, DetectionInputs, Feature, KernelVersion};
/// let mut inputs = DetectionInputs::version_only(KernelVersion::new(6, 1, 0));
/// inputs.io_uring = Err("blocked by seccomp".into());
/// let report = decide(inputs);
/// assert!(report.io_uring_available().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionInputs {
    /// Kernel release string as read (for the report).
    pub release: Option<String>,
    /// Parsed kernel version (`None` if unreadable: version-only features then count as absent).
    pub version: Option<KernelVersion>,
    /// `Err(reason)` when io_uring cannot be used at all (EPERM, ENOSYS, ...).
    pub io_uring: Result<(), String>,
    /// Supported opcodes from IORING_REGISTER_PROBE; `None` when the probe is unavailable.
    pub opcodes: Option<Vec<u8>>,
    /// `params.features`; `None` when setup failed.
    pub feature_flags: Option<u32>,
    /// Outcome of each real call; `None` when it was not made or could not tell.
    pub tries: TryResults,
}

impl DetectionInputs {
    /// Inputs for a kernel known only by its version (io_uring usable, nothing probed).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{decide, DetectionInputs, Feature, KernelVersion};
    /// let report = decide(DetectionInputs::version_only(KernelVersion::new(5, 19, 0)));
    /// assert!(report.available.contains(Feature::MultiShotAccept));
    /// ```
    pub fn version_only(version: KernelVersion) -> Self {
        DetectionInputs {
            release: Some(version.to_string()),
            version: Some(version),
            io_uring: Ok(()),
            opcodes: None,
            feature_flags: None,
            tries: TryResults::default(),
        }
    }
}

/// Outcomes of the real calls detection makes.
///
/// # Examples
/// ```
/// use safer_ring::features::{decide, DetectionInputs, Feature, KernelVersion};
/// let mut inputs = DetectionInputs::version_only(KernelVersion::new(6, 8, 0));
/// inputs.tries.register_buf_ring = Some(false); // the real call said no
/// assert!(!decide(inputs).available.contains(Feature::BufferRings));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TryResults {
    /// IORING_REGISTER_RING_FDS.
    pub register_ring_fd: Option<bool>,
    /// IORING_REGISTER_PBUF_RING.
    pub register_buf_ring: Option<bool>,
    /// IORING_REGISTER_PBUF_RING with IOU_PBUF_RING_INC.
    pub register_buf_ring_inc: Option<bool>,
    /// OP_MSG_RING with IORING_MSG_SEND_FD.
    pub msg_ring_send_fd: Option<bool>,
    /// Setup with COOP_TASKRUN.
    pub coop_taskrun: Option<bool>,
    /// Setup with SINGLE_ISSUER.
    pub single_issuer: Option<bool>,
    /// Setup with DEFER_TASKRUN.
    pub defer_taskrun: Option<bool>,
}

impl TryResults {
    fn get(&self, t: Try) -> Option<bool> {
        match t {
            Try::RegisterRingFd => self.register_ring_fd,
            Try::RegisterBufRing => self.register_buf_ring,
            Try::RegisterBufRingInc => self.register_buf_ring_inc,
            Try::MsgRingSendFd => self.msg_ring_send_fd,
            Try::SetupCoopTaskrun => self.coop_taskrun,
            Try::SetupSingleIssuer => self.single_issuer,
            Try::SetupDeferTaskrun => self.defer_taskrun,
        }
    }
}

/// One feature's verdict, with the evidence.
///
/// # Examples
/// ```
/// use safer_ring::features::{decide, DetectionInputs, Feature, KernelVersion};
/// let report = decide(DetectionInputs::version_only(KernelVersion::new(6, 0, 0)));
/// let s = report.status(Feature::SendZeroCopy);
/// assert!(s.by_version && s.available);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureStatus {
    /// The feature.
    pub feature: Feature,
    /// Whether the version table says the running kernel has it.
    pub by_version: bool,
    /// What the probe, feature flag or real call said (`None`: version-only, or unknown).
    pub by_detection: Option<bool>,
    /// The verdict.
    pub available: bool,
}

/// The outcome of detection.
///
/// # Examples
/// ```
/// let report = safer_ring::features::detected();
/// for w in &report.warnings {
///     println!("detection: {w}");
/// }
/// println!("{} features available", report.available.len());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureReport {
    /// What detection looked at.
    pub inputs: DetectionInputs,
    /// One row per feature, in table order.
    pub rows: Vec<FeatureStatus>,
    /// The available set.
    pub available: AvailableFeatures,
    /// Steps that failed and fell back to the version table.
    pub warnings: Vec<String>,
}

impl FeatureReport {
    /// Whether io_uring can be used at all, and why not.
    ///
    /// # Examples
    /// ```
    /// match safer_ring::features::detected().io_uring_available() {
    ///     Ok(()) => println!("io_uring works here"),
    ///     Err(why) => println!("no io_uring: {why}"),
    /// }
    /// ```
    pub fn io_uring_available(&self) -> Result<(), &str> {
        self.inputs
            .io_uring
            .as_ref()
            .map(|_| ())
            .map_err(String::as_str)
    }

    /// The verdict row for `f`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// let s = safer_ring::features::detected().status(Feature::MultiShotAccept);
    /// println!("by version: {}, by detection: {:?}", s.by_version, s.by_detection);
    /// ```
    pub fn status(&self, f: Feature) -> &FeatureStatus {
        &self.rows[f as usize]
    }
}

/// Decides every feature from `inputs` (pure: no system calls).
///
/// # Examples
/// ```
/// use safer_ring::features::{decide, DetectionInputs, Feature, KernelVersion};
/// let report = decide(DetectionInputs::version_only(KernelVersion::new(5, 10, 0)));
/// assert!(!report.available.contains(Feature::MultiShotAccept)); // 5.19
/// ```
pub fn decide(inputs: DetectionInputs) -> FeatureReport {
    let has_ops = |ops: &[u8]| {
        inputs
            .opcodes
            .as_ref()
            .map(|have| ops.iter().all(|o| have.contains(o)))
    };
    let rows: Vec<FeatureStatus> = Feature::all()
        .map(|f| {
            let by_version = inputs
                .version
                .is_some_and(|v| v >= f.required_kernel_version());
            if inputs.io_uring.is_err() {
                return FeatureStatus {
                    feature: f,
                    by_version,
                    by_detection: None,
                    available: false,
                };
            }
            let (by_detection, available) = match f.detection() {
                Detection::Probe(ops) => {
                    let p = has_ops(ops);
                    (p, p.unwrap_or(by_version))
                }
                Detection::FeatureFlag(bit) => {
                    let p = inputs.feature_flags.map(|fl| fl & bit != 0);
                    (p, p.unwrap_or(by_version))
                }
                Detection::Try(t) => {
                    let p = inputs.tries.get(t);
                    (p, p.unwrap_or(by_version))
                }
                // A flag on an existing opcode: the version decides, but a probe that lacks the
                // opcode it rides on overrules it (a kernel cannot run a flag of a missing op).
                Detection::Version(ops) => (None, by_version && has_ops(ops).unwrap_or(true)),
            };
            FeatureStatus {
                feature: f,
                by_version,
                by_detection,
                available,
            }
        })
        .collect();
    let available = rows
        .iter()
        .filter(|r| r.available)
        .map(|r| r.feature)
        .collect();
    FeatureReport {
        inputs,
        rows,
        available,
        warnings: Vec::new(),
    }
}

/// Detects features on the running kernel, uncached. Each failing step logs a warning and
/// falls back to the version table for what it would have told.
///
/// # Examples
/// ```
/// let fresh = safer_ring::features::detect_now(); // not cached: ~0.1 ms of syscalls
/// assert_eq!(fresh.inputs.io_uring.is_ok(), safer_ring::features::detected().inputs.io_uring.is_ok());
/// ```
pub fn detect_now() -> FeatureReport {
    let mut warnings = Vec::new();
    let release = match crate::kernel::sys::kernel_release() {
        Ok(r) => Some(r),
        Err(e) => {
            warnings.push(format!("reading the kernel release: {e}"));
            None
        }
    };
    let version = release
        .as_deref()
        .and_then(|r| match KernelVersion::from_string(r) {
            Ok(v) => Some(v),
            Err(e) => {
                warnings.push(e.to_string());
                None
            }
        });
    let answers: KernelAnswers = probe::ask_kernel();
    warnings.extend(answers.warnings);
    let io_uring = match &answers.setup_error {
        None => Ok(()),
        Some(e) => Err(crate::ring::unavailable_reason(e)),
    };
    let inputs = DetectionInputs {
        release,
        version,
        io_uring,
        opcodes: answers.opcodes,
        feature_flags: answers.features,
        tries: TryResults {
            register_ring_fd: answers.ring_fd,
            register_buf_ring: answers.buf_ring,
            register_buf_ring_inc: answers.buf_ring_inc,
            msg_ring_send_fd: answers.send_fd,
            coop_taskrun: answers.coop,
            single_issuer: answers.single_issuer,
            defer_taskrun: answers.defer,
        },
    };
    for w in &warnings {
        tracing::warn!("feature detection: {w}");
    }
    let mut report = decide(inputs);
    report.warnings = warnings;
    report
}

/// Detection with an explicit cache choice (the configuration's `detection_cache` switch).
///
/// # Examples
/// ```
/// use safer_ring::features::FeatureDetector;
/// use safer_ring::Feature;
/// let report = FeatureDetector::new().use_cache(false).detect();
/// let _ = report.available.contains(Feature::MultiShotAccept);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FeatureDetector {
    cache: bool,
}

impl Default for FeatureDetector {
    fn default() -> Self {
        FeatureDetector::new()
    }
}

impl FeatureDetector {
    /// A detector that uses the process-wide cache.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::FeatureDetector;
    /// let report = FeatureDetector::new().detect();
    /// println!("{} features", report.available.len());
    /// ```
    pub fn new() -> Self {
        FeatureDetector { cache: true }
    }

    /// Whether to use (and fill) the process-wide cache.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::FeatureDetector;
    /// let fresh = FeatureDetector::new().use_cache(false).detect(); // detects again
    /// # drop(fresh);
    /// ```
    pub fn use_cache(mut self, on: bool) -> Self {
        self.cache = on;
        self
    }

    /// The report: cached (cheap after the first call) or detected afresh.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{features::FeatureDetector, Feature};
    /// let report = FeatureDetector::new().detect(); // the process-wide cached result
    /// println!("multishot accept: {}", report.available.contains(Feature::MultiShotAccept));
    /// ```
    pub fn detect(&self) -> std::borrow::Cow<'static, FeatureReport> {
        if self.cache {
            std::borrow::Cow::Borrowed(super::detected())
        } else {
            std::borrow::Cow::Owned(detect_now())
        }
    }
}
