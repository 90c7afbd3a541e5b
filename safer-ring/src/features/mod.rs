//! Kernel feature detection: versions, the feature table, detection, caching and demotion.
//!
//! One table ([`Feature`]) lists each capability with its first kernel and how it is detected;
//! detection asks the running kernel (real call > opcode probe > feature flags > version) and
//! caches the answer process-wide.

mod cache;
mod detect;
mod kernel;
mod table;

pub use cache::{demote, detected, invalidate, is_demoted, supports_feature};
pub use detect::{DetectionInputs, FeatureReport, FeatureStatus, TryResults, decide, detect_now};
pub use kernel::KernelVersion;
pub use table::{AvailableFeatures, Detection, Feature, Try};

/// Features the ring uses today when the kernel has them and the configuration allows (the
/// `enabled` column of `safer-ring features`). The others are detected and reported; the
/// enhanced APIs that use them are not implemented yet.
pub const USED_BY_RING: &[Feature] = &[
    Feature::BatchedSubmissions,
    Feature::AsyncCancel,
    Feature::NoDrop,
    Feature::FastPoll,
    Feature::CoopTaskrun,
    Feature::SingleIssuer,
    Feature::DeferTaskrun,
];

/// Names of io_uring opcodes by number (`enum io_uring_op`), for reports.
pub const OPCODE_NAMES: &[&str] = &[
    "NOP",
    "READV",
    "WRITEV",
    "FSYNC",
    "READ_FIXED",
    "WRITE_FIXED",
    "POLL_ADD",
    "POLL_REMOVE",
    "SYNC_FILE_RANGE",
    "SENDMSG",
    "RECVMSG",
    "TIMEOUT",
    "TIMEOUT_REMOVE",
    "ACCEPT",
    "ASYNC_CANCEL",
    "LINK_TIMEOUT",
    "CONNECT",
    "FALLOCATE",
    "OPENAT",
    "CLOSE",
    "FILES_UPDATE",
    "STATX",
    "READ",
    "WRITE",
    "FADVISE",
    "MADVISE",
    "SEND",
    "RECV",
    "OPENAT2",
    "EPOLL_CTL",
    "SPLICE",
    "PROVIDE_BUFFERS",
    "REMOVE_BUFFERS",
    "TEE",
    "SHUTDOWN",
    "RENAMEAT",
    "UNLINKAT",
    "MKDIRAT",
    "SYMLINKAT",
    "LINKAT",
    "MSG_RING",
    "FSETXATTR",
    "SETXATTR",
    "FGETXATTR",
    "GETXATTR",
    "SOCKET",
    "URING_CMD",
    "SEND_ZC",
    "SENDMSG_ZC",
    "READ_MULTISHOT",
    "WAITID",
    "FUTEX_WAIT",
    "FUTEX_WAKE",
    "FUTEX_WAITV",
    "FIXED_FD_INSTALL",
    "FTRUNCATE",
    "BIND",
    "LISTEN",
    "RECV_ZC",
    "EPOLL_WAIT",
    "READV_FIXED",
    "WRITEV_FIXED",
    "PIPE",
];

/// The name of opcode `op`, or `OP_<n>` for opcodes newer than this table.
pub fn opcode_name(op: u8) -> String {
    OPCODE_NAMES
        .get(op as usize)
        .map_or_else(|| format!("OP_{op}"), |s| (*s).to_string())
}
