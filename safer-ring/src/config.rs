//! Ring configuration: sizes, backend choice, setup flags and submission policy.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Result, SaferRingError};

/// Name of the environment variable that overrides the backend choice.
pub const BACKEND_ENV: &str = "SAFER_RING_BACKEND";

/// Largest submission queue the kernel accepts (`IORING_MAX_ENTRIES`).
pub const MAX_ENTRIES: u32 = 32768;

/// Which backend a ring runs on.
///
/// # Examples
/// ```
/// use safer_ring::BackendKind;
/// assert_eq!("io_uring".parse::<BackendKind>()?, BackendKind::IoUring);
/// assert_eq!(BackendKind::Epoll.to_string(), "epoll");
/// assert!("kqueue".parse::<BackendKind>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// io_uring when `io_uring_setup` works, epoll otherwise.
    Auto,
    /// io_uring only: ring creation fails if the kernel refuses it.
    IoUring,
    /// The epoll fallback, even where io_uring works.
    Epoll,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Auto => "auto",
            BackendKind::IoUring => "io_uring",
            BackendKind::Epoll => "epoll",
        })
    }
}

impl FromStr for BackendKind {
    type Err = SaferRingError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(BackendKind::Auto),
            "io_uring" | "io-uring" | "iouring" | "uring" => Ok(BackendKind::IoUring),
            "epoll" => Ok(BackendKind::Epoll),
            _ => Err(SaferRingError::config(
                "backend",
                s,
                "one of auto, io_uring, epoll",
            )),
        }
    }
}

impl BackendKind {
    /// The backend named by `SAFER_RING_BACKEND`, `None` when unset.
    ///
    /// # Errors
    /// [`SaferRingError::InvalidEnv`] when the variable holds anything but auto, io_uring or epoll.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::BackendKind;
    /// match BackendKind::from_env()? {
    ///     Some(kind) => println!("SAFER_RING_BACKEND asks for {kind}"),
    ///     None => println!("unset: auto"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env() -> Result<Option<BackendKind>> {
        match std::env::var(BACKEND_ENV) {
            Ok(v) => v.parse().map(Some).map_err(|_| SaferRingError::InvalidEnv {
                name: BACKEND_ENV,
                value: v,
                expected: "auto, io_uring or epoll",
            }),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(v)) => Err(SaferRingError::InvalidEnv {
                name: BACKEND_ENV,
                value: v.to_string_lossy().into_owned(),
                expected: "auto, io_uring or epoll",
            }),
        }
    }
}

/// When queued submissions reach the kernel.
///
/// # Examples
/// ```
/// use safer_ring::{Ring, SaferRingConfig, SubmitPolicy};
/// let ring = Ring::with_config(SaferRingConfig::default().submit_policy(SubmitPolicy::Eager))?;
/// ring.block_on(ring.nop())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubmitPolicy {
    /// Queue operations and submit them all with one `io_uring_enter` per driver turn.
    #[default]
    Batch,
    /// Submit as soon as an operation is pushed (one `io_uring_enter` per op; not benchmarked
    /// against `Batch` here yet).
    Eager,
}

/// Configuration for [`Ring::with_config`](crate::Ring::with_config).
///
/// # Examples
/// ```
/// use safer_ring::{BackendKind, Ring, SaferRingConfig};
/// let cfg = SaferRingConfig::default().entries(64).backend(BackendKind::Auto);
/// let ring = Ring::with_config(cfg)?;
/// # Ok::<(), safer_ring::SaferRingError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SaferRingConfig {
    pub(crate) entries: u32,
    pub(crate) cq_entries: Option<u32>,
    pub(crate) backend: Option<BackendKind>,
    pub(crate) coop_taskrun: bool,
    pub(crate) single_issuer: bool,
    pub(crate) defer_taskrun: bool,
    pub(crate) submit_policy: SubmitPolicy,
    pub(crate) drain_timeout: Duration,
    pub(crate) blocking: crate::backend::pool::PoolConfig,
    pub(crate) enhancement: crate::ProgressiveEnhancementConfig,
    pub(crate) registered_files: u32,
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: Option<crate::fault::FaultPlan>,
}

impl Default for SaferRingConfig {
    fn default() -> Self {
        SaferRingConfig {
            entries: 256,
            cq_entries: None,
            backend: None,
            coop_taskrun: true,
            single_issuer: true,
            defer_taskrun: true,
            submit_policy: SubmitPolicy::Batch,
            drain_timeout: Duration::from_secs(2),
            blocking: crate::backend::pool::PoolConfig {
                max_threads: 32,
                idle_timeout: Duration::from_secs(10),
            },
            enhancement: crate::ProgressiveEnhancementConfig::default(),
            registered_files: crate::backend::file_table::DEFAULT_USER_SLOTS,
            #[cfg(feature = "fault-injection")]
            faults: None,
        }
    }
}

impl SaferRingConfig {
    /// A configuration for rings driven by tokio (`Ring::drive_on_tokio`, feature `tokio`):
    /// no COOP_TASKRUN / DEFER_TASKRUN, so completions are posted without the ring's thread
    /// entering io_uring and the ring fd polls readable for tokio's reactor.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::SaferRingConfig;
    /// let ring = safer_ring::Ring::with_config(SaferRingConfig::for_tokio())?;
    /// if let Some(setup) = ring.info().setup {
    ///     assert!(!setup.defer_taskrun && !setup.coop_taskrun);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_tokio() -> Self {
        SaferRingConfig::default()
            .coop_taskrun(false)
            .defer_taskrun(false)
    }

    /// Submission-queue entries (2..=32768; the kernel rounds up to a power of two). An op
    /// with [`timeout`](crate::Op::timeout) takes two entries, submitted together.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::SaferRingConfig;
    /// assert!(safer_ring::Ring::with_config(SaferRingConfig::default().entries(256)).is_ok());
    /// let err = safer_ring::Ring::with_config(SaferRingConfig::default().entries(0)).unwrap_err();
    /// assert!(err.to_string().contains("entries"), "{err}");
    /// ```
    pub fn entries(mut self, entries: u32) -> Self {
        self.entries = entries;
        self
    }

    /// Completion-queue entries (default: twice the submission entries).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::SaferRingConfig;
    /// let ring = safer_ring::Ring::with_config(SaferRingConfig::default().entries(8).cq_entries(64))?;
    /// if let Some(setup) = ring.info().setup {
    ///     assert!(setup.cq_entries >= 64);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cq_entries(mut self, cq_entries: u32) -> Self {
        self.cq_entries = Some(cq_entries);
        self
    }

    /// Backend choice. Without this, `SAFER_RING_BACKEND` decides, then `auto`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{BackendKind, SaferRingConfig};
    /// let ring = safer_ring::Ring::with_config(SaferRingConfig::default().backend(BackendKind::Epoll))?;
    /// assert_eq!(ring.backend(), BackendKind::Epoll);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Ask for `IORING_SETUP_COOP_TASKRUN` (5.19+). Default on; dropped if the kernel refuses.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::SaferRingConfig;
    /// let ring = safer_ring::Ring::with_config(SaferRingConfig::default().coop_taskrun(false))?;
    /// assert!(ring.info().setup.is_none_or(|s| !s.coop_taskrun));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn coop_taskrun(mut self, on: bool) -> Self {
        self.coop_taskrun = on;
        self
    }

    /// Ask for `IORING_SETUP_SINGLE_ISSUER` (6.0+). Default on; dropped if the kernel refuses.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::SaferRingConfig;
    /// // DEFER_TASKRUN needs SINGLE_ISSUER: turning only this off is a configuration error.
    /// assert!(safer_ring::Ring::with_config(SaferRingConfig::default().single_issuer(false)).is_err());
    /// let cfg = SaferRingConfig::default().single_issuer(false).defer_taskrun(false);
    /// let ring = safer_ring::Ring::with_config(cfg)?;
    /// assert!(ring.info().setup.is_none_or(|s| !s.single_issuer));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn single_issuer(mut self, on: bool) -> Self {
        self.single_issuer = on;
        self
    }

    /// Ask for `IORING_SETUP_DEFER_TASKRUN` (6.1+, needs single issuer). Default on.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::SaferRingConfig;
    /// let ring = safer_ring::Ring::with_config(SaferRingConfig::default().defer_taskrun(false))?;
    /// assert!(ring.info().setup.is_none_or(|s| !s.defer_taskrun));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn defer_taskrun(mut self, on: bool) -> Self {
        self.defer_taskrun = on;
        self
    }

    /// Rings built from this configuration run their backend under `plan`'s faults (feature
    /// `fault-injection`; for tests of error and fallback paths).
    #[cfg(feature = "fault-injection")]
    pub fn fault_plan(mut self, plan: crate::fault::FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }

    /// When submissions reach the kernel.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{SaferRingConfig, SubmitPolicy};
    /// let cfg = SaferRingConfig::default().submit_policy(SubmitPolicy::Batch); // the default
    /// let ring = safer_ring::Ring::with_config(cfg)?;
    /// ring.block_on(ring.nop())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_policy(mut self, policy: SubmitPolicy) -> Self {
        self.submit_policy = policy;
        self
    }

    /// Which native features the ring may use (progressive enhancement).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Feature, ProgressiveEnhancementConfig, SaferRingConfig};
    /// let enh = ProgressiveEnhancementConfig::default().feature(Feature::MultiShotAccept, Some(false));
    /// let ring = safer_ring::Ring::with_config(SaferRingConfig::default().enhancement(enh))?;
    /// assert!(!ring.uses_native(Feature::MultiShotAccept));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enhancement(mut self, enhancement: crate::ProgressiveEnhancementConfig) -> Self {
        self.enhancement = enhancement;
        self
    }

    /// How long dropping a ring waits for cancelled operations to complete (then leaks them).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use safer_ring::SaferRingConfig;
    /// let cfg = SaferRingConfig::default().drain_timeout(Duration::from_millis(100));
    /// drop(safer_ring::Ring::with_config(cfg)?); // waits at most 100 ms for cancelled work
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// At most this many threads (1..=1024, default 32) run the ring's blocking calls: on the
    /// epoll backend, file reads and writes at an offset that would block, open, statx and
    /// fsync. Started on demand; 32 keeps 32 reads in flight on the device. Each ring has its
    /// own pool.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{BackendKind, SaferRingConfig};
    /// let cfg = SaferRingConfig::default().backend(BackendKind::Epoll).blocking_threads(8);
    /// let ring = safer_ring::Ring::with_config(cfg)?;
    /// let err = safer_ring::Ring::with_config(SaferRingConfig::default().blocking_threads(0));
    /// assert!(err.unwrap_err().to_string().contains("blocking_threads"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn blocking_threads(mut self, threads: usize) -> Self {
        self.blocking.max_threads = threads;
        self
    }

    /// How long a blocking-pool thread waits for work before it exits (default 10 s), so an
    /// idle ring keeps no thread.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use safer_ring::SaferRingConfig;
    /// let cfg = SaferRingConfig::default().blocking_idle_timeout(Duration::from_secs(1));
    /// let ring = safer_ring::Ring::with_config(cfg)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn blocking_idle_timeout(mut self, timeout: Duration) -> Self {
        self.blocking.idle_timeout = timeout;
        self
    }

    /// How many files [`Ring::register_file`](crate::RingRef::register_file) can hold
    /// registered at once (default 64, 1..=32512). The ring's kernel table has 256 more slots
    /// for fd passing; its whole size counts against `RLIMIT_NOFILE` (a table larger than it
    /// is refused, and the ring's `FixedFile`s then run as plain operations).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::SaferRingConfig;
    /// let ring = safer_ring::Ring::with_config(SaferRingConfig::default().registered_files(2))?;
    /// let err = safer_ring::Ring::with_config(SaferRingConfig::default().registered_files(0));
    /// assert!(err.unwrap_err().to_string().contains("registered_files"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn registered_files(mut self, slots: u32) -> Self {
        self.registered_files = slots;
        self
    }

    /// Checks every value and resolves the backend choice (explicit > environment > auto).
    pub(crate) fn validate(&self) -> Result<BackendKind> {
        if self.entries < 2 || self.entries > MAX_ENTRIES {
            return Err(SaferRingError::config(
                "entries",
                self.entries,
                "2..=32768 submission queue entries (an op with a timeout takes two)",
            ));
        }
        if let Some(cq) = self.cq_entries
            && (cq < self.entries || cq > 2 * MAX_ENTRIES)
        {
            return Err(SaferRingError::config(
                "cq_entries",
                cq,
                "at least `entries` and at most 65536",
            ));
        }
        if !(1..=1024).contains(&self.blocking.max_threads) {
            return Err(SaferRingError::config(
                "blocking_threads",
                self.blocking.max_threads,
                "1..=1024 threads",
            ));
        }
        if !(1..=crate::backend::file_table::MAX_USER_SLOTS).contains(&self.registered_files) {
            return Err(SaferRingError::config(
                "registered_files",
                self.registered_files,
                "1..=32512 slots (32768, the 5.x kernels' table limit, less 256 for fd passing)",
            ));
        }
        if self.defer_taskrun && !self.single_issuer {
            return Err(SaferRingError::config(
                "defer_taskrun",
                true,
                "single_issuer(true): DEFER_TASKRUN requires SINGLE_ISSUER",
            ));
        }
        #[cfg(feature = "fault-injection")]
        if let Some(Err(e)) = self.faults.as_ref().map(|p| p.check()) {
            return Err(SaferRingError::config(
                "fault_plan",
                e,
                "errnos between 1 and 4095",
            ));
        }
        match self.backend {
            Some(b) => Ok(b),
            None => Ok(BackendKind::from_env()?.unwrap_or(BackendKind::Auto)),
        }
    }

    pub(crate) fn cq_size(&self) -> u32 {
        self.cq_entries.unwrap_or(self.entries.saturating_mul(2))
    }
}
