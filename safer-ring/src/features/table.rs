//! The feature table: the single source that detection, the CLI, the docs and the tests read.

use std::fmt;
use std::str::FromStr;

use super::KernelVersion;

/// io_uring opcodes named in the table (the kernel's `enum io_uring_op`, as the `io-uring`
/// crate numbers it).
pub(crate) mod op {
    use io_uring::opcode;

    pub const READ_FIXED: u8 = opcode::ReadFixed::CODE;
    pub const WRITE_FIXED: u8 = opcode::WriteFixed::CODE;
    pub const SYNC_FILE_RANGE: u8 = opcode::SyncFileRange::CODE;
    pub const SENDMSG: u8 = opcode::SendMsg::CODE;
    pub const RECVMSG: u8 = opcode::RecvMsg::CODE;
    pub const ACCEPT: u8 = opcode::Accept::CODE;
    pub const ASYNC_CANCEL: u8 = opcode::AsyncCancel::CODE;
    pub const FALLOCATE: u8 = opcode::Fallocate::CODE;
    pub const FILES_UPDATE: u8 = opcode::FilesUpdate::CODE;
    pub const FADVISE: u8 = opcode::Fadvise::CODE;
    pub const RECV: u8 = opcode::Recv::CODE;
    pub const SPLICE: u8 = opcode::Splice::CODE;
    pub const PROVIDE_BUFFERS: u8 = opcode::ProvideBuffers::CODE;
    pub const TEE: u8 = opcode::Tee::CODE;
    pub const RENAMEAT: u8 = opcode::RenameAt::CODE;
    pub const UNLINKAT: u8 = opcode::UnlinkAt::CODE;
    pub const MKDIRAT: u8 = opcode::MkDirAt::CODE;
    pub const SYMLINKAT: u8 = opcode::SymlinkAt::CODE;
    pub const LINKAT: u8 = opcode::LinkAt::CODE;
    pub const MSG_RING: u8 = opcode::MsgRingData::CODE;
    pub const SOCKET: u8 = opcode::Socket::CODE;
    pub const SEND_ZC: u8 = opcode::SendZc::CODE;
    pub const READ_MULTISHOT: u8 = opcode::ReadMulti::CODE;
    pub const FIXED_FD_INSTALL: u8 = opcode::FixedFdInstall::CODE;
    pub const BIND: u8 = opcode::Bind::CODE;
    pub const FTRUNCATE: u8 = opcode::Ftruncate::CODE;
    pub const LISTEN: u8 = opcode::Listen::CODE;
}

/// `IORING_FEAT_*` bits named in the table.
pub(crate) mod feat {
    pub const NODROP: u32 = 1 << 1;
    pub const FAST_POLL: u32 = 1 << 5;
    pub const EXT_ARG: u32 = 1 << 8;
    pub const RECVSEND_BUNDLE: u32 = 1 << 14;
}

/// A real call made on a throwaway ring when neither the probe nor the flags can tell.
///
/// # Examples
/// ```
/// use safer_ring::{features::{Detection, Try}, Feature};
/// assert_eq!(Feature::RegisteredRingFd.detection(), Detection::Try(Try::RegisterRingFd));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Try {
    /// `IORING_REGISTER_RING_FDS` then unregister.
    RegisterRingFd,
    /// `IORING_REGISTER_PBUF_RING` with a one-entry ring, then unregister.
    RegisterBufRing,
    /// The same with `IOU_PBUF_RING_INC` (incrementally consumed buffers).
    RegisterBufRingInc,
    /// OP_MSG_RING with IORING_MSG_SEND_FD between two rings with sparse file tables.
    MsgRingSendFd,
    /// `io_uring_setup` with `IORING_SETUP_COOP_TASKRUN`.
    SetupCoopTaskrun,
    /// `io_uring_setup` with `IORING_SETUP_SINGLE_ISSUER`.
    SetupSingleIssuer,
    /// `io_uring_setup` with `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`.
    SetupDeferTaskrun,
}

/// How a feature is detected, in the trust order real call > probe > feature flags > version.
///
/// # Examples
/// ```
/// use safer_ring::{features::Detection, Feature};
/// for f in Feature::all() {
///     if let Detection::Version(_) = f.detection() {
///         println!("{f}: only the version table can tell");
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// Every listed opcode must be reported by `IORING_REGISTER_PROBE`.
    Probe(&'static [u8]),
    /// A bit of `params.features` from `io_uring_setup`.
    FeatureFlag(u32),
    /// A real call (see [`Try`]).
    Try(Try),
    /// Not detectable without side effects (a flag on an existing opcode): the version table,
    /// with the listed opcodes required by the probe, and runtime demotion if the kernel says no.
    Version(&'static [u8]),
}

impl Detection {
    /// The name used in reports and JSON: `probe`, `feature_flag`, `try` or `version`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// assert_eq!(Feature::MsgRing.detection().name(), "probe");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Detection::Probe(_) => "probe",
            Detection::FeatureFlag(_) => "feature_flag",
            Detection::Try(_) => "try",
            Detection::Version(_) => "version",
        }
    }
}

macro_rules! features {
    ($( $(#[$doc:meta])* $name:ident = ($maj:literal, $min:literal), $det:expr, $desc:literal; )*) => {
        /// An io_uring capability safer-ring can detect and use. Names are stable (CLI JSON).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Feature {
            $( $(#[$doc])* $name, )*
        }

        /// One row per feature: (feature, name, first kernel, detection, description).
        pub(crate) const TABLE: &[(Feature, &str, KernelVersion, Detection, &str)] = &[
            $( (Feature::$name, stringify!($name), KernelVersion::new($maj, $min, 0), $det, $desc), )*
        ];
    };
}

features! {
    /// Multishot accept: one SQE, a CQE per connection. Available since Linux 5.19.
    MultiShotAccept = (5, 19), Detection::Version(&[op::ACCEPT]), "one accept request yields a completion per incoming connection";
    /// Multishot recv over provided buffers. Available since Linux 6.0.
    MultiShotRecv = (6, 0), Detection::Version(&[op::RECV, op::PROVIDE_BUFFERS]), "one recv request yields a completion per arriving chunk";
    /// Registered ring fd for io_uring_enter. Available since Linux 5.18.
    RegisteredRingFd = (5, 18), Detection::Try(Try::RegisterRingFd), "io_uring_enter uses a registered ring index instead of an fd lookup";
    /// Ring-to-ring messages (OP_MSG_RING). Available since Linux 5.18.
    MsgRing = (5, 18), Detection::Probe(&[op::MSG_RING]), "post a completion to another ring";
    /// Passing a fixed fd between rings with MSG_RING. Available since Linux 6.0.
    MsgRingSendFd = (6, 0), Detection::Try(Try::MsgRingSendFd), "send a registered file to another ring";
    /// OP_FIXED_FD_INSTALL: a registered file becomes a normal fd. Available since Linux 6.8.
    FixedFdInstall = (6, 8), Detection::Probe(&[op::FIXED_FD_INSTALL]), "turn a registered file into a normal fd (receiving fds natively)";
    /// Ring-mapped provided buffers (IORING_REGISTER_PBUF_RING). Available since Linux 5.19.
    BufferRings = (5, 19), Detection::Try(Try::RegisterBufRing), "provided buffers in a shared ring, no per-refill syscall";
    /// Provided buffers (OP_PROVIDE_BUFFERS). Available since Linux 5.7.
    ProvidedBuffers = (5, 7), Detection::Probe(&[op::PROVIDE_BUFFERS]), "the kernel picks a buffer from a group at completion time";
    /// OP_ASYNC_CANCEL. Available since Linux 5.5.
    AsyncCancel = (5, 5), Detection::Probe(&[op::ASYNC_CANCEL]), "cancel an in-flight request";
    /// Cancel by fd / any / all (IORING_ASYNC_CANCEL_FD). Available since Linux 5.19.
    CancelByFd = (5, 19), Detection::Version(&[op::ASYNC_CANCEL]), "cancel every request on an fd";
    /// OP_FILES_UPDATE. Available since Linux 5.6.
    FixedFileUpdate = (5, 6), Detection::Probe(&[op::FILES_UPDATE]), "update registered files asynchronously";
    /// Many SQEs per io_uring_enter: io_uring itself. Available since Linux 5.1.
    BatchedSubmissions = (5, 1), Detection::Version(&[]), "submit many operations with one system call";
    /// Zero-copy send (OP_SEND_ZC). Available since Linux 6.0.
    SendZeroCopy = (6, 0), Detection::Probe(&[op::SEND_ZC]), "send without copying the buffer into the kernel";
    /// IORING_SETUP_SINGLE_ISSUER. Available since Linux 6.0.
    SingleIssuer = (6, 0), Detection::Try(Try::SetupSingleIssuer), "the kernel may skip locking for a single submitting thread";
    /// IORING_SETUP_DEFER_TASKRUN. Available since Linux 6.1.
    DeferTaskrun = (6, 1), Detection::Try(Try::SetupDeferTaskrun), "completion work runs only when the ring's thread asks for completions";
    /// IORING_SETUP_COOP_TASKRUN. Available since Linux 5.19.
    CoopTaskrun = (5, 19), Detection::Try(Try::SetupCoopTaskrun), "completions do not interrupt the ring's thread";
    /// OP_SOCKET. Available since Linux 5.19.
    SocketOp = (5, 19), Detection::Probe(&[op::SOCKET]), "create sockets through the ring";
    /// OP_BIND and OP_LISTEN. Available since Linux 6.11.
    BindListen = (6, 11), Detection::Probe(&[op::BIND, op::LISTEN]), "bind and listen through the ring";
    /// OP_READ_MULTISHOT. Available since Linux 6.7.
    ReadMultishot = (6, 7), Detection::Probe(&[op::READ_MULTISHOT]), "one read request yields a completion per chunk (pipes, eventfds)";
    /// Send/recv bundles (IORING_FEAT_RECVSEND_BUNDLE). Available since Linux 6.10. Used by
    /// `recv_enhanced`'s multishot recv (IORING_RECVSEND_BUNDLE): one completion fills several
    /// provided buffers in ring order; without it, one buffer per completion.
    RecvSendBundle = (6, 10), Detection::FeatureFlag(feat::RECVSEND_BUNDLE), "one multishot recv completion fills several provided buffers in a row (else one buffer per completion)";
    /// IORING_FEAT_FAST_POLL. Available since Linux 5.7.
    FastPoll = (5, 7), Detection::FeatureFlag(feat::FAST_POLL), "internal poll instead of a worker thread for unready sockets";
    /// IORING_FEAT_EXT_ARG. Available since Linux 5.11.
    ExtArg = (5, 11), Detection::FeatureFlag(feat::EXT_ARG), "wait for completions with a timeout argument";
    /// IORING_FEAT_NODROP. Available since Linux 5.5.
    NoDrop = (5, 5), Detection::FeatureFlag(feat::NODROP), "completion-queue overflow keeps completions instead of dropping them";
    /// OP_UNLINKAT (`remove_file`, `remove_dir`). Available since Linux 5.11.
    UnlinkAt = (5, 11), Detection::Probe(&[op::UNLINKAT]), "remove files and directories through the ring (else unlinkat(2) on the blocking pool)";
    /// OP_RENAMEAT (`rename`). Available since Linux 5.11.
    RenameAt = (5, 11), Detection::Probe(&[op::RENAMEAT]), "rename through the ring (else renameat2(2) on the blocking pool)";
    /// OP_MKDIRAT (`create_dir`). Available since Linux 5.15.
    MkdirAt = (5, 15), Detection::Probe(&[op::MKDIRAT]), "create directories through the ring (else mkdirat(2) on the blocking pool)";
    /// OP_SYMLINKAT (`symlink`). Available since Linux 5.15.
    SymlinkAt = (5, 15), Detection::Probe(&[op::SYMLINKAT]), "create symlinks through the ring (else symlinkat(2) on the blocking pool)";
    /// OP_LINKAT (`hard_link`). Available since Linux 5.15.
    LinkAt = (5, 15), Detection::Probe(&[op::LINKAT]), "create hard links through the ring (else linkat(2) on the blocking pool)";
    /// OP_FALLOCATE (`fallocate`). Available since Linux 5.6.
    Fallocate = (5, 6), Detection::Probe(&[op::FALLOCATE]), "allocate or punch file space through the ring (else fallocate(2) on the blocking pool)";
    /// OP_FTRUNCATE (`set_len`). Available since Linux 6.9.
    Ftruncate = (6, 9), Detection::Probe(&[op::FTRUNCATE]), "truncate or extend files through the ring (else ftruncate(2) on the blocking pool)";
    /// OP_FADVISE (`fadvise`). Available since Linux 5.6.
    Fadvise = (5, 6), Detection::Probe(&[op::FADVISE]), "page-cache advice through the ring (else posix_fadvise(2) on the blocking pool)";
    /// OP_SYNC_FILE_RANGE (`sync_file_range`). Available since Linux 5.2.
    SyncFileRange = (5, 2), Detection::Probe(&[op::SYNC_FILE_RANGE]), "write back a byte range through the ring (else sync_file_range(2) on the blocking pool)";
    /// OP_SENDMSG and OP_RECVMSG: addresses, ancillary data and fd passing through the ring.
    /// Available since Linux 5.3, below the 5.11 floor of the core opcodes: a kernel without
    /// them runs rings on epoll, where they are sendmsg/recvmsg on readiness.
    SendRecvMsg = (5, 3), Detection::Probe(&[op::SENDMSG, op::RECVMSG]), "sendmsg/recvmsg: datagram addresses, ancillary data, fd passing";
    /// Registered buffers (IORING_REGISTER_BUFFERS, OP_READ_FIXED/WRITE_FIXED). Available since Linux 5.1.
    RegisteredBuffers = (5, 1), Detection::Probe(&[op::READ_FIXED, op::WRITE_FIXED]), "reads and writes on buffers the kernel pinned once, not per operation";
    /// Multishot recvmsg over provided buffers: a datagram and its sender per completion.
    /// Available since Linux 6.0.
    MultiShotRecvMsg = (6, 0), Detection::Version(&[op::RECVMSG, op::PROVIDE_BUFFERS]), "one recvmsg request yields a completion per arriving datagram, with its sender";
    /// Registered files (a sparse IORING_REGISTER_FILES table, IORING_REGISTER_FILES_UPDATE,
    /// IOSQE_FIXED_FILE): `Ring::register_file`. Available since Linux 5.5 (empty `-1` slots
    /// and the update call; `register_files_sparse` is 5.19, used where present).
    RegisteredFiles = (5, 5), Detection::Version(&[]), "operations name a file by its slot in the ring's table, no per-operation fd lookup";
    /// OP_SPLICE (`splice`, `copy`). Available since Linux 5.7.
    Splice = (5, 7), Detection::Probe(&[op::SPLICE]), "move bytes between a pipe and a file or socket through the ring (else splice(2) on readiness)";
    /// OP_TEE (`tee`). Available since Linux 5.8.
    Tee = (5, 8), Detection::Probe(&[op::TEE]), "duplicate a pipe's bytes into another pipe through the ring (else tee(2) on readiness)";
    /// Incrementally consumed provided buffers (IOU_PBUF_RING_INC). Available since Linux
    /// 6.12. Opt-in: a completion takes only the bytes it received from a provided buffer,
    /// whose rest serves the next receives, so small receives share one buffer (many more
    /// receives held at once before the ring runs dry); used instead of receive bundles.
    IncrementalBuffers = (6, 12), Detection::Try(Try::RegisterBufRingInc), "a receive takes only the bytes it needs from a provided buffer, whose rest serves the next (opt-in; instead of receive bundles)";
}

impl Feature {
    /// Every feature, in table order.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// for f in Feature::all() {
    ///     println!("{:<20} Linux {}+", f.name(), f.required_kernel_version());
    /// }
    /// ```
    pub fn all() -> impl Iterator<Item = Feature> {
        TABLE.iter().map(|r| r.0)
    }

    fn row(
        self,
    ) -> &'static (
        Feature,
        &'static str,
        KernelVersion,
        Detection,
        &'static str,
    ) {
        &TABLE[self as usize]
    }

    /// The stable name, e.g. `MultiShotAccept`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// assert_eq!(Feature::MultiShotAccept.name(), "MultiShotAccept");
    /// assert_eq!("MultiShotAccept".parse::<Feature>()?, Feature::MultiShotAccept);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The first mainline kernel that has it.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Feature, KernelVersion};
    /// assert_eq!(Feature::SendZeroCopy.required_kernel_version(), KernelVersion::new(6, 0, 0));
    /// ```
    pub fn required_kernel_version(self) -> KernelVersion {
        self.row().2
    }

    /// How it is detected.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{features::Detection, Feature};
    /// assert!(matches!(Feature::MsgRing.detection(), Detection::Probe(_)));
    /// ```
    pub fn detection(self) -> Detection {
        self.row().3
    }

    /// One line on what it does.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// println!("{}", Feature::MultiShotAccept.description());
    /// ```
    pub fn description(self) -> &'static str {
        self.row().4
    }

    /// Whether a ring uses the feature only when asked (`Some(true)` in the configuration or
    /// `+name` in `SAFER_RING_FEATURES`) because its fallback measured faster here.
    ///
    /// Only [`Feature::MsgRingSendFd`]: within one process an fd number handed through the
    /// queue costs nothing, while the native path costs two file-table updates, a fixed-fd
    /// install and a wait for the receiving thread (`safer-ring bench --only fd_passing` on the
    /// development VM: about 16x fewer fds/s natively; the README has the run).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// assert!(Feature::MsgRingSendFd.opt_in());
    /// assert!(!Feature::MultiShotAccept.opt_in());
    /// ```
    pub fn opt_in(self) -> bool {
        matches!(self, Feature::MsgRingSendFd | Feature::IncrementalBuffers)
    }

    pub(crate) fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Feature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Feature::all()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown feature {s:?}"))
    }
}

/// A compact set of features.
///
/// # Examples
/// ```
/// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
/// let on_5_19 = AvailableFeatures::by_version(KernelVersion::new(5, 19, 0));
/// assert!(on_5_19.contains(Feature::MultiShotAccept));
/// assert!(!on_5_19.contains(Feature::SendZeroCopy)); // 6.0
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AvailableFeatures(u64);

impl AvailableFeatures {
    /// No features.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// assert!(AvailableFeatures::empty().is_empty());
    /// ```
    pub const fn empty() -> Self {
        AvailableFeatures(0)
    }

    /// What Linux 5.1, the first io_uring kernel, offers.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// let base = AvailableFeatures::baseline();
    /// assert!(base.len() < AvailableFeatures::by_version(KernelVersion::new(6, 8, 0)).len());
    /// ```
    pub fn baseline() -> Self {
        Self::by_version(KernelVersion::new(5, 1, 0))
    }

    /// Every feature whose table version is at most `v`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// let v = "6.1.0-18-amd64".parse::<KernelVersion>()?;
    /// assert!(AvailableFeatures::by_version(v).contains(Feature::SendZeroCopy));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn by_version(v: KernelVersion) -> Self {
        Feature::all()
            .filter(|f| f.required_kernel_version() <= v)
            .collect()
    }

    /// Whether `f` is in the set.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// let set: AvailableFeatures = [Feature::MsgRing].into_iter().collect();
    /// assert!(set.contains(Feature::MsgRing) && !set.contains(Feature::BufferRings));
    /// ```
    pub fn contains(&self, f: Feature) -> bool {
        self.0 & f.bit() != 0
    }

    /// Adds `f`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// let mut set = AvailableFeatures::empty();
    /// set.insert(Feature::MsgRing);
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn insert(&mut self, f: Feature) {
        self.0 |= f.bit();
    }

    /// Removes `f`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// let mut set = AvailableFeatures::by_version(KernelVersion::new(6, 1, 0));
    /// set.remove(Feature::SendZeroCopy);
    /// assert!(!set.contains(Feature::SendZeroCopy));
    /// ```
    pub fn remove(&mut self, f: Feature) {
        self.0 &= !f.bit();
    }

    /// The features in the set, in table order.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// let set: AvailableFeatures = [Feature::MsgRing, Feature::MultiShotAccept].into_iter().collect();
    /// assert_eq!(set.iter().count(), 2);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Feature> + '_ {
        Feature::all().filter(|f| self.contains(*f))
    }

    /// Number of features in the set.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// assert_eq!(AvailableFeatures::empty().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::features::{AvailableFeatures, Feature, KernelVersion};
    /// assert!(!AvailableFeatures::baseline().is_empty() || AvailableFeatures::baseline().len() == 0);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Feature> for AvailableFeatures {
    fn from_iter<I: IntoIterator<Item = Feature>>(iter: I) -> Self {
        let mut s = AvailableFeatures::empty();
        for f in iter {
            s.insert(f);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_discriminant_and_names_are_unique() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.0 as usize, i);
            assert_eq!(row.0.name(), row.1);
            assert_eq!(row.1.parse::<Feature>().unwrap(), row.0);
        }
        assert_eq!(TABLE.len(), 39);
        assert!(TABLE.len() <= 64, "AvailableFeatures is a u64");
    }

    /// The file ops' opcodes, by the kernel release that added each to `enum io_uring_op`
    /// (io_uring.h history; the QEMU matrix's 5.10 lacks the 5.11/5.15 ones, 6.1 lacks
    /// FTRUNCATE).
    #[test]
    fn file_op_rows_match_io_uring_h() {
        for (f, code, (maj, min)) in [
            (Feature::SyncFileRange, 8, (5, 2)),
            (Feature::Fallocate, 17, (5, 6)),
            (Feature::Fadvise, 24, (5, 6)),
            (Feature::RenameAt, 35, (5, 11)),
            (Feature::UnlinkAt, 36, (5, 11)),
            (Feature::MkdirAt, 37, (5, 15)),
            (Feature::SymlinkAt, 38, (5, 15)),
            (Feature::LinkAt, 39, (5, 15)),
            (Feature::Ftruncate, 55, (6, 9)),
            (Feature::Splice, 30, (5, 7)),
            (Feature::Tee, 33, (5, 8)),
        ] {
            let Detection::Probe(ops) = f.detection() else {
                panic!("{f}: detected by the probe")
            };
            assert_eq!(ops, [code], "{f}");
            assert_eq!(
                f.required_kernel_version(),
                KernelVersion::new(maj, min, 0),
                "{f}"
            );
        }
    }

    /// Every opcode any row names, by number and name as `enum io_uring_op` in the kernel's
    /// io_uring.h has it (not through `op::`, which a row could bypass): a row naming a
    /// neighbouring opcode would pass on every kernel of the matrix that has both.
    #[test]
    fn every_row_names_its_io_uring_h_opcodes() {
        let want: &[(Feature, &[(u8, &str)])] = &[
            (Feature::MultiShotAccept, &[(13, "ACCEPT")]),
            (
                Feature::MultiShotRecv,
                &[(27, "RECV"), (31, "PROVIDE_BUFFERS")],
            ),
            (Feature::MsgRing, &[(40, "MSG_RING")]),
            (Feature::FixedFdInstall, &[(54, "FIXED_FD_INSTALL")]),
            (Feature::ProvidedBuffers, &[(31, "PROVIDE_BUFFERS")]),
            (Feature::AsyncCancel, &[(14, "ASYNC_CANCEL")]),
            (Feature::CancelByFd, &[(14, "ASYNC_CANCEL")]),
            (Feature::FixedFileUpdate, &[(20, "FILES_UPDATE")]),
            (Feature::BatchedSubmissions, &[]),
            (Feature::SendZeroCopy, &[(47, "SEND_ZC")]),
            (Feature::SocketOp, &[(45, "SOCKET")]),
            (Feature::BindListen, &[(56, "BIND"), (57, "LISTEN")]),
            (Feature::ReadMultishot, &[(49, "READ_MULTISHOT")]),
            (Feature::UnlinkAt, &[(36, "UNLINKAT")]),
            (Feature::RenameAt, &[(35, "RENAMEAT")]),
            (Feature::MkdirAt, &[(37, "MKDIRAT")]),
            (Feature::SymlinkAt, &[(38, "SYMLINKAT")]),
            (Feature::LinkAt, &[(39, "LINKAT")]),
            (Feature::Fallocate, &[(17, "FALLOCATE")]),
            (Feature::Ftruncate, &[(55, "FTRUNCATE")]),
            (Feature::Fadvise, &[(24, "FADVISE")]),
            (Feature::SyncFileRange, &[(8, "SYNC_FILE_RANGE")]),
            (Feature::SendRecvMsg, &[(9, "SENDMSG"), (10, "RECVMSG")]),
            (
                Feature::RegisteredBuffers,
                &[(4, "READ_FIXED"), (5, "WRITE_FIXED")],
            ),
            (
                Feature::MultiShotRecvMsg,
                &[(10, "RECVMSG"), (31, "PROVIDE_BUFFERS")],
            ),
            (Feature::RegisteredFiles, &[]),
            (Feature::Splice, &[(30, "SPLICE")]),
            (Feature::Tee, &[(33, "TEE")]),
        ];
        for f in Feature::all() {
            let ops = match f.detection() {
                Detection::Probe(ops) | Detection::Version(ops) => ops,
                Detection::FeatureFlag(_) | Detection::Try(_) => {
                    assert!(want.iter().all(|w| w.0 != f), "{f}: names no opcode");
                    continue;
                }
            };
            let (_, expected) = want
                .iter()
                .find(|w| w.0 == f)
                .unwrap_or_else(|| panic!("{f}: its opcodes are not pinned here"));
            let numbers: Vec<u8> = expected.iter().map(|e| e.0).collect();
            assert_eq!(ops, numbers, "{f}");
            for &(code, name) in *expected {
                assert_eq!(super::super::opcode_name(code), name, "{f}: opcode {code}");
            }
        }
    }

    /// The opcode numbers as they were written by hand before the `io-uring` crate's were used.
    #[test]
    fn opcode_numbers_are_the_kernels() {
        let ops = [
            (op::READ_FIXED, 4),
            (op::WRITE_FIXED, 5),
            (op::SYNC_FILE_RANGE, 8),
            (op::SENDMSG, 9),
            (op::RECVMSG, 10),
            (op::ACCEPT, 13),
            (op::ASYNC_CANCEL, 14),
            (op::FALLOCATE, 17),
            (op::FILES_UPDATE, 20),
            (op::FADVISE, 24),
            (op::RECV, 27),
            (op::SPLICE, 30),
            (op::PROVIDE_BUFFERS, 31),
            (op::TEE, 33),
            (op::RENAMEAT, 35),
            (op::UNLINKAT, 36),
            (op::MKDIRAT, 37),
            (op::SYMLINKAT, 38),
            (op::LINKAT, 39),
            (op::MSG_RING, 40),
            (op::SOCKET, 45),
            (op::SEND_ZC, 47),
            (op::READ_MULTISHOT, 49),
            (op::FIXED_FD_INSTALL, 54),
            (op::FTRUNCATE, 55),
            (op::BIND, 56),
            (op::LISTEN, 57),
        ];
        for (code, number) in ops {
            assert_eq!(code, number);
        }
    }

    #[test]
    fn versions_match_kernel_facts() {
        // The corrections that matter: ring fds are 5.18 (not 6.3), multishot recv 6.0.
        assert_eq!(
            Feature::RegisteredRingFd.required_kernel_version(),
            KernelVersion::new(5, 18, 0)
        );
        assert_eq!(
            Feature::MsgRing.required_kernel_version(),
            KernelVersion::new(5, 18, 0)
        );
        assert_eq!(
            Feature::MultiShotRecv.required_kernel_version(),
            KernelVersion::new(6, 0, 0)
        );
        assert_eq!(
            Feature::BindListen.required_kernel_version(),
            KernelVersion::new(6, 11, 0)
        );
    }

    #[test]
    fn baseline_is_linux_5_1() {
        let b = AvailableFeatures::baseline();
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![Feature::BatchedSubmissions, Feature::RegisteredBuffers]
        );
        assert!(!b.contains(Feature::AsyncCancel));
    }
}
