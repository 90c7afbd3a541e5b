//! Mock kernels: the detection inputs of kernels the matrix cannot boot, so detection and
//! fallback decisions are tested against them. Each preset is what that kernel really answers
//! (opcode count, feature bits, real-call outcomes), per the kernel sources (`IORING_OP_LAST` and
//! `IORING_FEAT_*` of each release).

use super::{DetectionInputs, KernelVersion, TryResults};

/// A kernel described by what it answers.
///
/// # Examples
/// ```
/// use safer_ring::features::{decide, mock::MockKernel};
/// let kernel = MockKernel::linux_5_4();
/// let report = decide(kernel.inputs); // detection's verdict, no syscall
/// assert!(report.available.len() < decide(MockKernel::linux_6_8_broken_buffer_rings().inputs).available.len());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockKernel {
    /// A short name, e.g. `5.4`.
    pub name: &'static str,
    /// What detection would gather on it.
    pub inputs: DetectionInputs,
}

fn inputs(release: &str, opcodes: Option<u8>, features: u32, tries: TryResults) -> DetectionInputs {
    DetectionInputs {
        release: Some(release.to_string()),
        version: release.parse().ok(),
        io_uring: Ok(()),
        opcodes: opcodes.map(|n| (0..n).collect()),
        feature_flags: Some(features),
        tries,
    }
}

const NO_TRIES: TryResults = TryResults {
    register_ring_fd: Some(false),
    register_buf_ring: Some(false),
    register_buf_ring_inc: Some(false),
    msg_ring_send_fd: Some(false),
    coop_taskrun: Some(false),
    single_issuer: Some(false),
    defer_taskrun: Some(false),
};

impl MockKernel {
    /// Linux 5.1: the first io_uring, no probe (5.6), no feature flags (`SINGLE_MMAP` is 5.4).
    /// Its io_uring.h defines 8 opcodes, 0..=7: NOP, READV, WRITEV, FSYNC, READ_FIXED,
    /// WRITE_FIXED, POLL_ADD, POLL_REMOVE (SYNC_FILE_RANGE, 8, is 5.2); without a probe they
    /// are not in `inputs.opcodes`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{decide, io_uring_serves_core_ops, mock::MockKernel};
    /// let kernel = MockKernel::linux_5_1();
    /// assert_eq!(kernel.inputs.opcodes, None); // no probe to list its 8 opcodes
    /// let report = decide(kernel.inputs);
    /// assert!(io_uring_serves_core_ops(&report).is_err()); // such a ring would run on epoll
    /// ```
    pub fn linux_5_1() -> MockKernel {
        MockKernel {
            name: "5.1",
            inputs: inputs("5.1.0", None, 0, NO_TRIES),
        }
    }

    /// Linux 5.4: no probe yet (5.6), FEAT_SINGLE_MMAP only; no accept/connect/cancel opcodes.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{decide, mock::MockKernel, Feature};
    /// let report = decide(MockKernel::linux_5_4().inputs);
    /// assert!(!report.available.contains(Feature::AsyncCancel));
    /// ```
    pub fn linux_5_4() -> MockKernel {
        MockKernel {
            name: "5.4",
            inputs: inputs("5.4.0-150-generic", None, 0x1, NO_TRIES),
        }
    }

    /// Linux 5.5 without the probe: accept, connect, async cancel and link timeout exist, and
    /// FEAT_NODROP / SUBMIT_STABLE are reported; read/write/send/recv opcodes are 5.6.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{decide, mock::MockKernel, Feature};
    /// let report = decide(MockKernel::linux_5_5_without_probe().inputs);
    /// assert!(report.available.contains(Feature::NoDrop)); // from the feature bit
    /// ```
    pub fn linux_5_5_without_probe() -> MockKernel {
        MockKernel {
            name: "5.5",
            inputs: inputs("5.5.19", None, 0x7, NO_TRIES),
        }
    }

    /// An Ubuntu 6.8 series whose buffer-ring backport is broken: the version and the probe say
    /// yes, registering a buffer ring answers EINVAL.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{decide, mock::MockKernel, Feature};
    /// let report = decide(MockKernel::linux_6_8_broken_buffer_rings().inputs);
    /// // The version says 5.19+, the real registration said no: the real call wins.
    /// assert!(!report.available.contains(Feature::BufferRings));
    /// ```
    pub fn linux_6_8_broken_buffer_rings() -> MockKernel {
        let tries = TryResults {
            register_ring_fd: Some(true),
            register_buf_ring: Some(false),
            register_buf_ring_inc: Some(false),
            msg_ring_send_fd: Some(true),
            coop_taskrun: Some(true),
            single_issuer: Some(true),
            defer_taskrun: Some(true),
        };
        MockKernel {
            name: "6.8-broken-pbuf",
            inputs: inputs("6.8.0-1015-aws", Some(55), 0x7fff & !(1 << 14), tries),
        }
    }

    /// Every preset.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{decide, mock::MockKernel};
    /// for kernel in MockKernel::all() {
    ///     let report = decide(kernel.inputs);
    ///     println!("{}: {} features", kernel.name, report.available.len());
    /// }
    /// ```
    pub fn all() -> Vec<MockKernel> {
        vec![
            Self::linux_5_1(),
            Self::linux_5_4(),
            Self::linux_5_5_without_probe(),
            Self::linux_6_8_broken_buffer_rings(),
        ]
    }

    /// The mock's version.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{features::mock::MockKernel, KernelVersion};
    /// assert_eq!(MockKernel::linux_5_4().version(), "5.4.0".parse::<KernelVersion>()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn version(&self) -> KernelVersion {
        self.inputs.version.expect("presets have versions")
    }
}
