//! The crate's error type.

use std::io;

use crate::config::BackendKind;

/// Everything that can go wrong in safer-ring outside of an individual I/O result.
///
/// I/O results of operations are plain [`io::Error`]s (so they compose with the rest of the
/// ecosystem); this type covers configuration, setup and buffer validation, and converts into
/// [`io::Error`] with a kind that matches the cause.
///
/// # Examples
/// ```
/// use safer_ring::{Ring, SaferRingError};
/// match Ring::new(0) {
///     Err(SaferRingError::InvalidConfig { field, value, expected }) => {
///         assert_eq!((field, value.as_str()), ("entries", "0"));
///         println!("expected {expected}");
///     }
///     other => panic!("{other:?}"),
/// }
/// // Every variant converts to an io::Error with a matching kind.
/// let io: std::io::Error = Ring::new(0).unwrap_err().into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaferRingError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {field} = {value}: expected {expected}")]
    InvalidConfig {
        /// The configuration field, e.g. `entries`.
        field: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A buffer is longer than one kernel operation can describe.
    #[error("buffer of {len} bytes is too large: one operation can address at most {max} bytes")]
    BufferTooLarge {
        /// The buffer's length in bytes.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// The requested backend could not be started.
    #[error("cannot start the {backend} backend: {source}")]
    BackendUnavailable {
        /// The backend that failed.
        backend: BackendKind,
        /// Why it failed, as reported by the kernel.
        #[source]
        source: io::Error,
    },
    /// `io_uring_setup` failed with ENOMEM, typically RLIMIT_MEMLOCK on kernels before 5.12.
    #[error(
        "io_uring_setup({entries} entries) failed with ENOMEM: kernels before 5.12 charge rings to \
         RLIMIT_MEMLOCK (currently {memlock_limit} bytes); use fewer entries or raise the limit"
    )]
    RingMemoryLimit {
        /// Requested submission-queue entries.
        entries: u32,
        /// RLIMIT_MEMLOCK soft limit in bytes at the time of the call.
        memlock_limit: u64,
    },
    /// An environment variable has a value safer-ring does not understand.
    #[error("environment variable {name}={value:?} is invalid: expected {expected}")]
    InvalidEnv {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// A kernel release string could not be parsed.
    #[error("invalid kernel version {input:?}: {reason}")]
    InvalidKernelVersion {
        /// The string as given.
        input: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// One step of kernel feature detection failed (detection continued without it).
    #[error("feature detection failed while {step}: {reason}")]
    FeatureDetectionFailed {
        /// The detection step, e.g. "probing opcodes".
        step: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A feature was required (strict configuration) but this kernel or backend lacks it.
    #[error(
        "{feature} is not available on the {backend} backend{}: it needs Linux {required} or newer{}",
        detected.map(|v| format!(" (running kernel {v})")).unwrap_or_default(),
        if *backend == BackendKind::IoUring { "; allow the fallback or upgrade the kernel" } else { "; use the io_uring backend on a newer kernel or allow the fallback" }
    )]
    UnsupportedFeature {
        /// The missing feature.
        feature: crate::Feature,
        /// The first kernel that has it.
        required: crate::KernelVersion,
        /// The running kernel, if known.
        detected: Option<crate::KernelVersion>,
        /// The backend in use.
        backend: BackendKind,
    },
    /// Registering a resource with the kernel failed (e.g. the ring fd, a buffer ring).
    #[error("registering {what} failed: {source}; the ring keeps working without it")]
    RegistrationFailed {
        /// What was being registered.
        what: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The native path was unavailable and the fallback failed too.
    #[error("{feature}: the native path failed ({native}) and the fallback failed too: {source}")]
    FallbackFailed {
        /// The feature whose fallback ran.
        feature: crate::Feature,
        /// Why the native path was not used.
        native: String,
        /// The fallback's error.
        #[source]
        source: io::Error,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What safer-ring was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl SaferRingError {
    /// `feature` is not available on `backend` (with the running kernel's version).
    pub(crate) fn unsupported(feature: crate::Feature, backend: BackendKind) -> Self {
        SaferRingError::UnsupportedFeature {
            feature,
            required: feature.required_kernel_version(),
            // Not from the detection cache: a ring may have been told not to use it.
            detected: crate::KernelVersion::current().ok(),
            backend,
        }
    }

    pub(crate) fn config(
        field: &'static str,
        value: impl ToString,
        expected: &'static str,
    ) -> Self {
        SaferRingError::InvalidConfig {
            field,
            value: value.to_string(),
            expected,
        }
    }

    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        SaferRingError::Io { context, source }
    }
}

impl From<SaferRingError> for io::Error {
    fn from(err: SaferRingError) -> io::Error {
        let kind = match &err {
            SaferRingError::InvalidConfig { .. }
            | SaferRingError::BufferTooLarge { .. }
            | SaferRingError::InvalidEnv { .. }
            | SaferRingError::InvalidKernelVersion { .. } => io::ErrorKind::InvalidInput,
            SaferRingError::FeatureDetectionFailed { .. } => io::ErrorKind::Other,
            SaferRingError::RegistrationFailed { source, .. }
            | SaferRingError::FallbackFailed { source, .. } => source.kind(),
            SaferRingError::UnsupportedFeature { .. } => io::ErrorKind::Unsupported,
            SaferRingError::BackendUnavailable { source, .. }
            | SaferRingError::Io { source, .. } => source.kind(),
            SaferRingError::RingMemoryLimit { .. } => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, err)
    }
}

/// Result alias for fallible safer-ring setup calls.
pub type Result<T, E = SaferRingError> = std::result::Result<T, E>;
