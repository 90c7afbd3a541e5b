//! Kernel feature detection: versions, the feature table, detection, caching and demotion.
//!
//! One table ([`Feature`]) lists each capability with its first kernel and how it is detected;
//! detection asks the running kernel (real call > opcode probe > feature flags > version) and
//! caches the answer process-wide.

mod cache;
mod detect;
mod kernel;
pub mod mock;
mod table;

pub use cache::{demote, detected, invalidate, is_available, is_demoted};
pub use detect::{
    DetectionInputs, FeatureDetector, FeatureReport, FeatureStatus, TryResults, decide, detect_now,
};
pub use kernel::KernelVersion;
pub use table::{AvailableFeatures, Detection, Feature, Try};

/// Features the ring uses today when the kernel has them and the configuration allows (the
/// `enabled` column of `safer-ring features`). The others are detected and reported; nothing
/// in safer-ring uses them yet (multishot reads, ...).
pub const USED_BY_RING: &[Feature] = &[
    Feature::BatchedSubmissions,
    Feature::AsyncCancel,
    Feature::NoDrop,
    Feature::FastPoll,
    Feature::CoopTaskrun,
    Feature::SingleIssuer,
    Feature::DeferTaskrun,
    Feature::RegisteredRingFd,
    Feature::MultiShotAccept,
    Feature::SendZeroCopy,
    Feature::MsgRing,
    Feature::MsgRingSendFd,
    Feature::FixedFdInstall,
    Feature::BufferRings,
    Feature::MultiShotRecv,
    Feature::RecvSendBundle,
    Feature::IncrementalBuffers,
    Feature::MultiShotRecvMsg,
    Feature::UnlinkAt,
    Feature::RenameAt,
    Feature::MkdirAt,
    Feature::SymlinkAt,
    Feature::LinkAt,
    Feature::Fallocate,
    Feature::Ftruncate,
    Feature::Fadvise,
    Feature::SyncFileRange,
    Feature::RegisteredFiles,
    Feature::Splice,
    Feature::Tee,
    Feature::SocketOp,
    Feature::BindListen,
    Feature::RegisteredBuffers,
];

/// Opcodes the io_uring backend needs for every operation of [`Ring`](crate::Ring), in
/// ascending order: without one of them `Ring::new` in `auto` mode uses epoll (kernels before
/// 5.6 lack read/write/send/recv/openat/close/statx; shutdown is 5.11; sendmsg/recvmsg are
/// 5.3). Derived from the op table's `core` column and the opcodes a ring pushes on its own.
pub const CORE_OPCODES: &[u8] = crate::backend::opcodes::CORE_OPCODES;

/// Whether io_uring can serve every core operation per `report`; `Err` names what is missing.
///
/// # Examples
/// ```
/// use safer_ring::features::{detected, io_uring_serves_core_ops};
/// match io_uring_serves_core_ops(detected()) {
///     Ok(()) => println!("io_uring can run every operation here"),
///     Err(why) => println!("epoll it is: {why}"),
/// }
/// ```
pub fn io_uring_serves_core_ops(report: &FeatureReport) -> Result<(), String> {
    report.io_uring_available().map_err(str::to_string)?;
    match &report.inputs.opcodes {
        Some(ops) => {
            let missing: Vec<String> = CORE_OPCODES
                .iter()
                .filter(|o| !ops.contains(o))
                .map(|&o| opcode_name(o))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "io_uring lacks opcodes {} on this kernel",
                    missing.join(", ")
                ))
            }
        }
        // No probe means a kernel before 5.6, which lacks the 5.6 opcodes.
        None => match report.inputs.version {
            Some(v) if v >= KernelVersion::new(5, 11, 0) => Ok(()),
            Some(v) => Err(format!(
                "kernel {v} has no opcode probe and predates 5.11 opcodes (read/write/send/recv: 5.6; shutdown: 5.11)"
            )),
            None => Err("no opcode probe and no kernel version".into()),
        },
    }
}

/// Number of features in the table.
pub(crate) const fn table_len() -> usize {
    table::TABLE.len()
}

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
///
/// # Examples
/// ```
/// use safer_ring::features::opcode_name;
/// assert_eq!(opcode_name(0), "NOP");
/// assert_eq!(opcode_name(250), "OP_250"); // newer than the table
/// ```
pub fn opcode_name(op: u8) -> String {
    OPCODE_NAMES
        .get(op as usize)
        .map_or_else(|| format!("OP_{op}"), |s| (*s).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first kernel of each core opcode (io_uring.h history, docs KERNEL-FACTS.md): all by
    /// 5.11, the version `io_uring_serves_core_ops` accepts when there is no probe, and 5.11
    /// exactly because of SHUTDOWN.
    #[test]
    fn core_opcodes_are_those_of_kernel_facts() {
        let first = |op: u8| match op {
            // NOP, READV, WRITEV, FSYNC, POLL_ADD
            0..=3 | 6 => (5, 1),
            // SENDMSG, RECVMSG
            9 | 10 => (5, 3),
            // TIMEOUT
            11 => (5, 4),
            // ACCEPT, ASYNC_CANCEL, LINK_TIMEOUT, CONNECT
            13..=16 => (5, 5),
            // OPENAT, CLOSE, STATX, READ, WRITE, SEND, RECV
            18 | 19 | 21 | 22 | 23 | 26 | 27 => (5, 6),
            // SHUTDOWN
            34 => (5, 11),
            _ => panic!("{} is not an opcode every ring needs", opcode_name(op)),
        };
        let latest = CORE_OPCODES.iter().map(|&o| first(o)).max();
        assert_eq!(latest, Some((5, 11)));
        let mut want = vec![
            0, 1, 2, 3, 6, 9, 10, 11, 13, 14, 15, 16, 18, 19, 21, 22, 23, 26, 27, 34,
        ];
        want.sort_unstable();
        assert_eq!(
            CORE_OPCODES, want,
            "the list written by hand before it was derived"
        );
        assert!(CORE_OPCODES.windows(2).all(|w| w[0] < w[1]));
        let v5_11 = DetectionInputs::version_only(KernelVersion::new(5, 11, 0));
        assert!(io_uring_serves_core_ops(&decide(v5_11)).is_ok());
        // Mainline 5.10's probe (opcodes 0..=33, up to TEE) lacks only SHUTDOWN of them.
        let mut v5_10 = DetectionInputs::version_only(KernelVersion::new(5, 10, 0));
        v5_10.opcodes = Some((0..=33).collect());
        let err = io_uring_serves_core_ops(&decide(v5_10)).unwrap_err();
        assert!(err.ends_with("opcodes SHUTDOWN on this kernel"), "{err}");
    }
}
