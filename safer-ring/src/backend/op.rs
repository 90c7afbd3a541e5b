//! The operation table: every operation the backends run is declared once here, with what
//! each backend needs to know about it.
//!
//! A row gives the op's fields, then
//! - `fd`: the fd it names (`-1`: none), where epoll parks it and what it registers;
//! - `exec`: how a plain-syscall backend runs it (see [`Exec`]);
//! - `opcode`: the io_uring opcode it needs; a ring whose probe lacks it runs the syscall
//!   instead (`IoUringBackend::run_fallback`);
//! - `class`: its [`OpClass`](super::fault::OpClass) for fault plans;
//! - `core`: whether every io_uring ring needs its opcode: `features::CORE_OPCODES` is the
//!   `core` rows' opcodes with those a ring pushes on its own (`opcodes::RING_OWN`); a kernel
//!   lacking one runs `auto` rings on epoll;
//! - `syscall_without` (optional): the feature without which (absent, or turned off) io_uring
//!   runs the op as its syscall; `opcodes::SYSCALL_FALLBACK` lists these features.
//!
//! Ops on two fds (`Splice`, `Tee`): the row's `fd` is the input end, but the op's data holds
//! a `SharedFd` clone of both ends until the completion, so neither is closed while the op is
//! queued or in flight (the `OpData` contract covers every fd an op names). Their syscall form
//! is non-blocking (`SPLICE_F_NONBLOCK`, and an end that is blocking, as io_uring keeps them,
//! is made O_NONBLOCK for the call): EAGAIN does not say which end blocked, so the attempt asks
//! poll(2) and parks on the pipe or socket end that is not ready (in its direction), through
//! `Attempt::WouldBlockOn`. A regular-file end never waits for readiness, so it is never
//! parked on; if poll finds both ends ready (they changed in between) the splice is retried a
//! few times, then parked on the input end. Parking on a fixed end instead would hang: with
//! edge-triggered epoll, an op parked on the end that was ready waits for an edge that never
//! comes.
//!
//! Adding an op: a row here (every column but `syscall_without` is required), an arm in
//! `uring::build`, an arm in `syscall::attempt`, an `OpClass` variant and a public method.
//! Every one of those matches is exhaustive (as are the fault backend's `memory_of` and
//! `shortened`), so the compiler names each place forgotten.

use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::opcode;

/// How a plain-syscall backend runs an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exec {
    /// A non-blocking attempt; on EAGAIN it waits for this readiness of its fd.
    Poll(Direction),
    /// A syscall that never waits for readiness and may block its thread for long (regular
    /// files, paths, fsync): a plain-syscall backend runs it on the blocking pool.
    Pooled,
    /// A quick syscall that never waits (NOP, close, shutdown, socket, bind, listen): run on
    /// the calling thread.
    Inline,
    /// A timer (epoll: a deadline heap; never a syscall).
    Timer,
    /// Only io_uring can run it; elsewhere it completes with `-EOPNOTSUPP`.
    UringOnly,
}

/// The readiness an op waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

use Direction::{Read as R, Write as W};
use Exec::{Inline, Poll, Pooled, Timer, UringOnly};

macro_rules! op_table {
    ($(
        $(#[$doc:meta])*
        $name:ident $({ $($field:ident : $ty:ty),* $(,)? })?
            => fd: $fd:expr, exec: $exec:expr, opcode: $code:expr, class: $class:ident,
               core: $core:literal $(, syscall_without: $feature:ident)?;
    )*) => {
        /// One kernel operation, described with raw pointers into memory the driver keeps
        /// alive (see the table in `backend/op.rs`).
        #[derive(Debug, Clone, Copy)]
        pub enum OpKind {
            $( $(#[$doc])* $name $({ $($field: $ty),* })?, )*
        }

        impl OpKind {
            /// The fd the op names, `-1` for none.
            #[allow(unused_variables)]
            #[inline]
            pub(crate) fn fd(&self) -> RawFd {
                match *self { $( OpKind::$name $({ $($field),* })? => $fd, )* }
            }

            /// How a plain-syscall backend runs it.
            #[allow(unused_variables)]
            #[inline]
            pub(crate) fn exec(&self) -> Exec {
                match *self { $( OpKind::$name $({ $($field),* })? => $exec, )* }
            }

            /// The io_uring opcode it needs.
            #[inline]
            pub(crate) fn opcode(&self) -> u8 {
                match self { $( OpKind::$name { .. } => $code, )* }
            }

            /// Its class in fault plans.
            #[cfg(feature = "fault-injection")]
            pub(crate) fn class(&self) -> super::fault::OpClass {
                match self { $( OpKind::$name { .. } => super::fault::OpClass::$class, )* }
            }
        }

        /// Each row's opcode, `core` and `syscall_without` columns, in table order.
        pub(super) const ROWS: &[Row] = &[
            $( Row {
                opcode: $code,
                core: $core,
                syscall_without: syscall_without!($($feature)?),
            }, )*
        ];
    };
}

macro_rules! syscall_without {
    () => {
        None
    };
    ($feature:ident) => {
        Some(crate::Feature::$feature)
    };
}

/// The columns of a row that sets of opcodes and features are derived from (`opcodes.rs`).
pub(super) struct Row {
    pub(super) opcode: u8,
    pub(super) core: bool,
    pub(super) syscall_without: Option<crate::Feature>,
}

op_table! {
    Nop => fd: -1, exec: Inline, opcode: opcode::Nop::CODE, class: Nop, core: true;
    Read { fd: RawFd, buf: *mut u8, len: u32, offset: u64 }
        => fd: fd, exec: Poll(R), opcode: opcode::Read::CODE, class: Read, core: true;
    Write { fd: RawFd, buf: *const u8, len: u32, offset: u64 }
        => fd: fd, exec: Poll(W), opcode: opcode::Write::CODE, class: Write, core: true;
    /// A read into registered buffer `index` (`buf..buf + len` lies inside it).
    ReadFixed { fd: RawFd, buf: *mut u8, len: u32, offset: u64, index: u16 }
        => fd: fd, exec: Poll(R), opcode: opcode::ReadFixed::CODE, class: Read, core: false;
    /// A write from registered buffer `index`.
    WriteFixed { fd: RawFd, buf: *const u8, len: u32, offset: u64, index: u16 }
        => fd: fd, exec: Poll(W), opcode: opcode::WriteFixed::CODE, class: Write, core: false;
    /// `Read` on registered file `slot` of this ring's table (`fd`: the same file, for the
    /// syscall path).
    ReadSlot { fd: RawFd, slot: u32, buf: *mut u8, len: u32, offset: u64 }
        => fd: fd, exec: Poll(R), opcode: opcode::Read::CODE, class: Read, core: false;
    /// `Write` on registered file `slot`.
    WriteSlot { fd: RawFd, slot: u32, buf: *const u8, len: u32, offset: u64 }
        => fd: fd, exec: Poll(W), opcode: opcode::Write::CODE, class: Write, core: false;
    /// `Send` on registered file `slot`.
    SendSlot { fd: RawFd, slot: u32, buf: *const u8, len: u32, flags: i32 }
        => fd: fd, exec: Poll(W), opcode: opcode::Send::CODE, class: Send, core: false;
    /// `Recv` on registered file `slot`.
    RecvSlot { fd: RawFd, slot: u32, buf: *mut u8, len: u32, flags: i32 }
        => fd: fd, exec: Poll(R), opcode: opcode::Recv::CODE, class: Recv, core: false;
    /// `Fsync` on registered file `slot`.
    FsyncSlot { fd: RawFd, slot: u32, datasync: bool }
        => fd: fd, exec: Pooled, opcode: opcode::Fsync::CODE, class: Fsync, core: false;
    Readv { fd: RawFd, iov: *const libc::iovec, count: u32, offset: u64 }
        => fd: fd, exec: Poll(R), opcode: opcode::Readv::CODE, class: Readv, core: true;
    Writev { fd: RawFd, iov: *const libc::iovec, count: u32, offset: u64 }
        => fd: fd, exec: Poll(W), opcode: opcode::Writev::CODE, class: Writev, core: true;
    Fsync { fd: RawFd, datasync: bool }
        => fd: fd, exec: Pooled, opcode: opcode::Fsync::CODE, class: Fsync, core: true;
    OpenAt { dirfd: RawFd, path: *const libc::c_char, flags: i32, mode: u32 }
        => fd: dirfd, exec: Pooled, opcode: opcode::OpenAt::CODE, class: Open, core: true;
    Close { fd: RawFd }
        => fd: fd, exec: Inline, opcode: opcode::Close::CODE, class: Close, core: true;
    Statx { fd: RawFd, path: *const libc::c_char, flags: i32, mask: u32, buf: *mut libc::statx }
        => fd: fd, exec: Pooled, opcode: opcode::Statx::CODE, class: Statx, core: true;
    Accept { fd: RawFd, addr: *mut libc::sockaddr, len: *mut libc::socklen_t }
        => fd: fd, exec: Poll(R), opcode: opcode::Accept::CODE, class: Accept, core: true;
    Connect { fd: RawFd, addr: *const libc::sockaddr, len: libc::socklen_t }
        => fd: fd, exec: Poll(W), opcode: opcode::Connect::CODE, class: Connect, core: true;
    Send { fd: RawFd, buf: *const u8, len: u32, flags: i32 }
        => fd: fd, exec: Poll(W), opcode: opcode::Send::CODE, class: Send, core: true;
    /// recv into a buffer the kernel picks from provided-buffer group `bgid` (5.19+ rings).
    RecvSelect { fd: RawFd, len: u32, bgid: u16 }
        => fd: fd, exec: UringOnly, opcode: opcode::Recv::CODE, class: RecvSelect, core: false;
    /// Multishot accept (5.19+): a completion per connection, IORING_CQE_F_MORE while more
    /// follow. Like every io_uring-only kind, epoll completes it with -EOPNOTSUPP.
    AcceptMulti { fd: RawFd }
        => fd: fd, exec: UringOnly, opcode: opcode::AcceptMulti::CODE, class: AcceptMulti,
           core: false;
    /// Multishot recv over provided-buffer group `bgid` (6.0+): a completion per chunk; with
    /// `bundle` (IORING_RECVSEND_BUNDLE, 6.10+) a chunk may fill several buffers in ring order.
    RecvMulti { fd: RawFd, bgid: u16, bundle: bool }
        => fd: fd, exec: UringOnly, opcode: opcode::RecvMulti::CODE, class: RecvMulti, core: false;
    /// Multishot recvmsg over provided-buffer group `bgid` (6.0+): a completion per datagram,
    /// its buffer headed by `io_uring_recvmsg_out` and the sender's address. The kernel reads
    /// the name and control lengths of `msg`, kept by the op's slot.
    RecvMsgMulti { fd: RawFd, msg: *const libc::msghdr, bgid: u16 }
        => fd: fd, exec: UringOnly, opcode: opcode::RecvMsgMulti::CODE, class: RecvMsgMulti,
           core: false;
    /// OP_MSG_RING (5.18+): post a completion with `user_data` into the ring `ring_fd`.
    MsgRing { ring_fd: RawFd, user_data: u64 }
        => fd: -1, exec: UringOnly, opcode: opcode::MsgRingData::CODE, class: MsgRing, core: false;
    /// OP_MSG_RING with IORING_MSG_SEND_FD (6.0+): moves registered file `slot` into a slot
    /// the kernel allocates in `ring_fd`'s table; that ring gets a completion with `user_data`
    /// whose res is the slot.
    MsgRingFd { ring_fd: RawFd, slot: u32, user_data: u64 }
        => fd: -1, exec: UringOnly, opcode: opcode::MsgRingSendFd::CODE, class: MsgRingFd,
           core: false;
    /// OP_FIXED_FD_INSTALL (6.8+): a normal fd (close-on-exec) for registered file `slot`.
    FixedFdInstall { slot: u32 }
        => fd: -1, exec: UringOnly, opcode: opcode::FixedFdInstall::CODE, class: FixedFdInstall,
           core: false;
    /// Zero-copy send (6.0+): a result completion with F_MORE, then a notification. A plain
    /// send where it runs as a syscall.
    SendZc { fd: RawFd, buf: *const u8, len: u32, flags: i32 }
        => fd: fd, exec: Poll(W), opcode: opcode::SendZc::CODE, class: SendZc, core: false;
    Recv { fd: RawFd, buf: *mut u8, len: u32, flags: i32 }
        => fd: fd, exec: Poll(R), opcode: opcode::Recv::CODE, class: Recv, core: true;
    Shutdown { fd: RawFd, how: i32 }
        => fd: fd, exec: Inline, opcode: opcode::Shutdown::CODE, class: Shutdown, core: true;
    /// unlinkat(2) (5.11): `flags` 0 or AT_REMOVEDIR.
    UnlinkAt { dirfd: RawFd, path: *const libc::c_char, flags: i32 }
        => fd: dirfd, exec: Pooled, opcode: opcode::UnlinkAt::CODE, class: Unlink,
           core: false, syscall_without: UnlinkAt;
    /// renameat2(2) (5.11).
    RenameAt {
        olddirfd: RawFd,
        oldpath: *const libc::c_char,
        newdirfd: RawFd,
        newpath: *const libc::c_char,
        flags: u32,
    } => fd: olddirfd, exec: Pooled, opcode: opcode::RenameAt::CODE, class: Rename,
           core: false, syscall_without: RenameAt;
    /// mkdirat(2) (5.15).
    MkdirAt { dirfd: RawFd, path: *const libc::c_char, mode: u32 }
        => fd: dirfd, exec: Pooled, opcode: opcode::MkDirAt::CODE, class: Mkdir,
           core: false, syscall_without: MkdirAt;
    /// symlinkat(2) (5.15): a link at `linkpath` holding the text `target`.
    SymlinkAt { target: *const libc::c_char, newdirfd: RawFd, linkpath: *const libc::c_char }
        => fd: newdirfd, exec: Pooled, opcode: opcode::SymlinkAt::CODE, class: Symlink,
           core: false, syscall_without: SymlinkAt;
    /// linkat(2) (5.15).
    LinkAt {
        olddirfd: RawFd,
        oldpath: *const libc::c_char,
        newdirfd: RawFd,
        newpath: *const libc::c_char,
        flags: i32,
    } => fd: olddirfd, exec: Pooled, opcode: opcode::LinkAt::CODE, class: Link,
           core: false, syscall_without: LinkAt;
    /// fallocate(2) (5.6).
    Fallocate { fd: RawFd, mode: i32, offset: u64, len: u64 }
        => fd: fd, exec: Pooled, opcode: opcode::Fallocate::CODE, class: Fallocate,
           core: false, syscall_without: Fallocate;
    /// ftruncate(2) (6.9).
    Ftruncate { fd: RawFd, len: u64 }
        => fd: fd, exec: Pooled, opcode: opcode::Ftruncate::CODE, class: Ftruncate,
           core: false, syscall_without: Ftruncate;
    /// posix_fadvise(2) (5.6).
    Fadvise { fd: RawFd, offset: u64, len: u64, advice: i32 }
        => fd: fd, exec: Pooled, opcode: opcode::Fadvise::CODE, class: Fadvise,
           core: false, syscall_without: Fadvise;
    /// sync_file_range(2) (5.2).
    SyncFileRange { fd: RawFd, offset: u64, len: u32, flags: u32 }
        => fd: fd, exec: Pooled, opcode: opcode::SyncFileRange::CODE, class: SyncFileRange,
           core: false, syscall_without: SyncFileRange;
    /// sendmsg(2) (5.3): `msg` and the iovec, address and control data it points to are the
    /// op's.
    SendMsg { fd: RawFd, msg: *const libc::msghdr, flags: i32 }
        => fd: fd, exec: Poll(W), opcode: opcode::SendMsg::CODE, class: SendMsg, core: true;
    /// recvmsg(2) (5.3): the kernel writes the data, the sender's address, the control data
    /// and `msg_flags` through `msg`.
    RecvMsg { fd: RawFd, msg: *mut libc::msghdr, flags: i32 }
        => fd: fd, exec: Poll(R), opcode: opcode::RecvMsg::CODE, class: RecvMsg, core: true;
    /// A new socket (OP_SOCKET, 5.19); `ty` carries SOCK_CLOEXEC. socket(2) where it runs as
    /// a syscall (epoll, kernels before 5.19, `SocketOp` turned off).
    Socket { domain: i32, ty: i32, protocol: i32 }
        => fd: -1, exec: Inline, opcode: opcode::Socket::CODE, class: Socket,
           core: false, syscall_without: SocketOp;
    /// bind(2) (OP_BIND, 6.11): `addr` is `len` bytes kept by the op.
    Bind { fd: RawFd, addr: *const libc::sockaddr, len: libc::socklen_t }
        => fd: fd, exec: Inline, opcode: opcode::Bind::CODE, class: Bind,
           core: false, syscall_without: BindListen;
    /// listen(2) (OP_LISTEN, 6.11).
    Listen { fd: RawFd, backlog: i32 }
        => fd: fd, exec: Inline, opcode: opcode::Listen::CODE, class: Listen,
           core: false, syscall_without: BindListen;
    /// splice(2) (5.7): up to `len` bytes from `fd_in` to `fd_out`, one of them a pipe. An
    /// offset of `CURRENT_POS` is none (a pipe or socket end, or a file's position). Two fds:
    /// the op holds both (see "Ops on two fds" above).
    Splice { fd_in: RawFd, off_in: u64, fd_out: RawFd, off_out: u64, len: u32, flags: u32 }
        => fd: fd_in, exec: Poll(R), opcode: opcode::Splice::CODE, class: Splice,
           core: false, syscall_without: Splice;
    /// tee(2) (5.8): duplicates up to `len` bytes of pipe `fd_in` into pipe `fd_out`.
    Tee { fd_in: RawFd, fd_out: RawFd, len: u32, flags: u32 }
        => fd: fd_in, exec: Poll(R), opcode: opcode::Tee::CODE, class: Tee,
           core: false, syscall_without: Tee;
    /// Waits until `fd` is ready for `events` (POLLIN or POLLOUT); the result is the
    /// `revents` mask. Epoll waits for readiness in the direction `events` names.
    PollReady { fd: RawFd, events: u32 }
        => fd: fd, exec: Poll(if events & libc::POLLOUT as u32 != 0 { W } else { R }),
           opcode: opcode::PollAdd::CODE, class: Poll, core: true;
    /// A timer: io_uring reads `ts` (kept valid by the op), epoll uses `dur`.
    Timeout { ts: *const io_uring::types::Timespec, dur: Duration }
        => fd: -1, exec: Timer, opcode: opcode::Timeout::CODE, class: Timeout, core: true;
}

impl OpKind {
    /// The plain op a registered-file op (`*Slot`) stands for: same fd, memory and result
    /// (the syscall path, which has no table); any other op unchanged.
    pub(crate) fn plain(self) -> OpKind {
        match self {
            OpKind::ReadSlot {
                fd,
                buf,
                len,
                offset,
                ..
            } => OpKind::Read {
                fd,
                buf,
                len,
                offset,
            },
            OpKind::WriteSlot {
                fd,
                buf,
                len,
                offset,
                ..
            } => OpKind::Write {
                fd,
                buf,
                len,
                offset,
            },
            OpKind::SendSlot {
                fd,
                buf,
                len,
                flags,
                ..
            } => OpKind::Send {
                fd,
                buf,
                len,
                flags,
            },
            OpKind::RecvSlot {
                fd,
                buf,
                len,
                flags,
                ..
            } => OpKind::Recv {
                fd,
                buf,
                len,
                flags,
            },
            OpKind::FsyncSlot { fd, datasync, .. } => OpKind::Fsync { fd, datasync },
            op => op,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table alone decides what a plain-syscall backend sends to the blocking pool: the
    /// quick syscalls run inline, the ones that may wait for a device go to the pool.
    #[test]
    fn the_exec_column_decides_the_pool() {
        use crate::backend::pool::offloads;
        let inline = [
            OpKind::Nop,
            OpKind::Close { fd: 3 },
            OpKind::Shutdown { fd: 3, how: 0 },
        ];
        assert!(inline.iter().all(|op| !offloads(op)));
        assert!(offloads(&OpKind::Fsync {
            fd: 3,
            datasync: false
        }));
    }

    #[test]
    fn table_rows_name_their_fd_and_opcode() {
        let op = OpKind::Shutdown { fd: 7, how: 0 };
        assert_eq!((op.fd(), op.opcode(), op.exec()), (7, 34, Exec::Inline));
        let op = OpKind::OpenAt {
            dirfd: libc::AT_FDCWD,
            path: std::ptr::null(),
            flags: 0,
            mode: 0,
        };
        assert_eq!((op.fd(), op.opcode()), (libc::AT_FDCWD, 18));
        assert_eq!(op.exec(), Exec::Pooled);
        assert_eq!(OpKind::Nop.fd(), -1);
    }
}
