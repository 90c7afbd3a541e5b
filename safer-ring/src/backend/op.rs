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
//!   `core` rows' opcodes with those a ring pushes on its own ([`RING_OWN`]); a kernel lacking
//!   one runs `auto` rings on epoll;
//! - `syscall_without` (optional): the feature without which (absent, or turned off) io_uring
//!   runs the op as its syscall; [`SYSCALL_FALLBACK`] lists these features.
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
    /// A syscall that never waits for readiness (regular files, paths, fsync, close); it may
    /// block the calling thread.
    Blocking,
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
use Exec::{Blocking, Poll, Timer, UringOnly};

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
        const ROWS: &[Row] = &[
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

/// The columns of a row that sets of opcodes and features are derived from.
struct Row {
    opcode: u8,
    core: bool,
    syscall_without: Option<crate::Feature>,
}

op_table! {
    Nop => fd: -1, exec: Blocking, opcode: opcode::Nop::CODE, class: Nop, core: true;
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
        => fd: fd, exec: Blocking, opcode: opcode::Fsync::CODE, class: Fsync, core: false;
    Readv { fd: RawFd, iov: *const libc::iovec, count: u32, offset: u64 }
        => fd: fd, exec: Poll(R), opcode: opcode::Readv::CODE, class: Readv, core: true;
    Writev { fd: RawFd, iov: *const libc::iovec, count: u32, offset: u64 }
        => fd: fd, exec: Poll(W), opcode: opcode::Writev::CODE, class: Writev, core: true;
    Fsync { fd: RawFd, datasync: bool }
        => fd: fd, exec: Blocking, opcode: opcode::Fsync::CODE, class: Fsync, core: true;
    OpenAt { dirfd: RawFd, path: *const libc::c_char, flags: i32, mode: u32 }
        => fd: dirfd, exec: Blocking, opcode: opcode::OpenAt::CODE, class: Open, core: true;
    Close { fd: RawFd }
        => fd: fd, exec: Blocking, opcode: opcode::Close::CODE, class: Close, core: true;
    Statx { fd: RawFd, path: *const libc::c_char, flags: i32, mask: u32, buf: *mut libc::statx }
        => fd: fd, exec: Blocking, opcode: opcode::Statx::CODE, class: Statx, core: true;
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
    /// Multishot recv over provided-buffer group `bgid` (6.0+): a completion per chunk.
    RecvMulti { fd: RawFd, bgid: u16 }
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
        => fd: fd, exec: Blocking, opcode: opcode::Shutdown::CODE, class: Shutdown, core: true;
    /// unlinkat(2) (5.11): `flags` 0 or AT_REMOVEDIR.
    UnlinkAt { dirfd: RawFd, path: *const libc::c_char, flags: i32 }
        => fd: dirfd, exec: Blocking, opcode: opcode::UnlinkAt::CODE, class: Unlink,
           core: false, syscall_without: UnlinkAt;
    /// renameat2(2) (5.11).
    RenameAt {
        olddirfd: RawFd,
        oldpath: *const libc::c_char,
        newdirfd: RawFd,
        newpath: *const libc::c_char,
        flags: u32,
    } => fd: olddirfd, exec: Blocking, opcode: opcode::RenameAt::CODE, class: Rename,
           core: false, syscall_without: RenameAt;
    /// mkdirat(2) (5.15).
    MkdirAt { dirfd: RawFd, path: *const libc::c_char, mode: u32 }
        => fd: dirfd, exec: Blocking, opcode: opcode::MkDirAt::CODE, class: Mkdir,
           core: false, syscall_without: MkdirAt;
    /// symlinkat(2) (5.15): a link at `linkpath` holding the text `target`.
    SymlinkAt { target: *const libc::c_char, newdirfd: RawFd, linkpath: *const libc::c_char }
        => fd: newdirfd, exec: Blocking, opcode: opcode::SymlinkAt::CODE, class: Symlink,
           core: false, syscall_without: SymlinkAt;
    /// linkat(2) (5.15).
    LinkAt {
        olddirfd: RawFd,
        oldpath: *const libc::c_char,
        newdirfd: RawFd,
        newpath: *const libc::c_char,
        flags: i32,
    } => fd: olddirfd, exec: Blocking, opcode: opcode::LinkAt::CODE, class: Link,
           core: false, syscall_without: LinkAt;
    /// fallocate(2) (5.6).
    Fallocate { fd: RawFd, mode: i32, offset: u64, len: u64 }
        => fd: fd, exec: Blocking, opcode: opcode::Fallocate::CODE, class: Fallocate,
           core: false, syscall_without: Fallocate;
    /// ftruncate(2) (6.9).
    Ftruncate { fd: RawFd, len: u64 }
        => fd: fd, exec: Blocking, opcode: opcode::Ftruncate::CODE, class: Ftruncate,
           core: false, syscall_without: Ftruncate;
    /// posix_fadvise(2) (5.6).
    Fadvise { fd: RawFd, offset: u64, len: u64, advice: i32 }
        => fd: fd, exec: Blocking, opcode: opcode::Fadvise::CODE, class: Fadvise,
           core: false, syscall_without: Fadvise;
    /// sync_file_range(2) (5.2).
    SyncFileRange { fd: RawFd, offset: u64, len: u32, flags: u32 }
        => fd: fd, exec: Blocking, opcode: opcode::SyncFileRange::CODE, class: SyncFileRange,
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
        => fd: -1, exec: Blocking, opcode: opcode::Socket::CODE, class: Socket,
           core: false, syscall_without: SocketOp;
    /// bind(2) (OP_BIND, 6.11): `addr` is `len` bytes kept by the op.
    Bind { fd: RawFd, addr: *const libc::sockaddr, len: libc::socklen_t }
        => fd: fd, exec: Blocking, opcode: opcode::Bind::CODE, class: Bind,
           core: false, syscall_without: BindListen;
    /// listen(2) (OP_LISTEN, 6.11).
    Listen { fd: RawFd, backlog: i32 }
        => fd: fd, exec: Blocking, opcode: opcode::Listen::CODE, class: Listen,
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

/// Opcodes every io_uring ring pushes on its own, outside the table: the wake fd's poll, the
/// ring's timer, an op's cancel and the deadline linked to it.
const RING_OWN: [u8; 4] = [
    opcode::PollAdd::CODE,
    opcode::Timeout::CODE,
    opcode::AsyncCancel::CODE,
    opcode::LinkTimeout::CODE,
];

/// The opcodes an io_uring ring cannot do without: the `core` rows' and [`RING_OWN`].
const CORE: OpcodeSet = {
    let mut s = OpcodeSet::EMPTY;
    let mut i = 0;
    while i < ROWS.len() {
        if ROWS[i].core {
            s.insert(ROWS[i].opcode);
        }
        i += 1;
    }
    let mut i = 0;
    while i < RING_OWN.len() {
        s.insert(RING_OWN[i]);
        i += 1;
    }
    s
};

/// [`CORE`] as a sorted list: `features::CORE_OPCODES`, which `auto` checks the probe against.
pub(crate) const CORE_OPCODES: &[u8] = &{
    const LEN: usize = CORE.len();
    CORE.to_array::<LEN>()
};

/// Features that are one op whose io_uring opcode a kernel may lack, with the op's syscall as
/// the fallback: the `syscall_without` column, each once, in table order. Their opcodes
/// (`Detection::Probe`) are not pushed when the ring does not use the feature natively (the
/// configuration can turn each off to run the fallback).
pub(crate) const SYSCALL_FALLBACK: &[crate::Feature] = &{
    const LEN: usize = fallback_features(&mut [None; ROWS.len()]);
    let mut all = [None; ROWS.len()];
    fallback_features(&mut all);
    let mut out = [crate::Feature::BatchedSubmissions; LEN];
    let mut i = 0;
    while i < LEN {
        if let Some(f) = all[i] {
            out[i] = f;
        }
        i += 1;
    }
    out
};

/// Writes the distinct `syscall_without` features into `out` in table order; returns how many.
const fn fallback_features(out: &mut [Option<crate::Feature>]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < ROWS.len() {
        if let Some(f) = ROWS[i].syscall_without {
            let mut seen = false;
            let mut j = 0;
            while j < n {
                if let Some(g) = out[j] {
                    seen |= g as usize == f as usize;
                }
                j += 1;
            }
            if !seen {
                out[n] = Some(f);
                n += 1;
            }
        }
        i += 1;
    }
    n
}

/// A set of io_uring opcodes (one bit each), checked on every io_uring push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpcodeSet([u64; 4]);

impl OpcodeSet {
    /// Every opcode (a kernel whose probe could not be read: assume all, as before).
    pub(crate) const ALL: OpcodeSet = OpcodeSet([u64::MAX; 4]);
    const EMPTY: OpcodeSet = OpcodeSet([0; 4]);

    pub(crate) fn from_list(ops: &[u8]) -> OpcodeSet {
        let mut s = OpcodeSet::default();
        for &o in ops {
            s.insert(o);
        }
        s
    }

    #[inline]
    pub(crate) const fn contains(&self, op: u8) -> bool {
        self.0[(op >> 6) as usize] & (1 << (op & 63)) != 0
    }

    pub(crate) const fn insert(&mut self, op: u8) {
        self.0[(op >> 6) as usize] |= 1 << (op & 63);
    }

    pub(crate) fn remove(&mut self, op: u8) {
        self.0[usize::from(op >> 6)] &= !(1 << (op & 63));
    }

    /// How many opcodes it holds.
    const fn len(&self) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.0.len() {
            n += self.0[i].count_ones() as usize;
            i += 1;
        }
        n
    }

    /// Its opcodes in ascending order (`N` is [`len`](Self::len)).
    const fn to_array<const N: usize>(self) -> [u8; N] {
        let mut out = [0; N];
        let (mut n, mut op) = (0, 0usize);
        while op <= u8::MAX as usize {
            if self.contains(op as u8) {
                out[n] = op as u8;
                n += 1;
            }
            op += 1;
        }
        assert!(n == N);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_set_holds_each_bit_apart() {
        let mut s = OpcodeSet::from_list(&[0, 63, 64, 255]);
        for o in [0, 63, 64, 255] {
            assert!(s.contains(o), "{o}");
        }
        assert!(!s.contains(1) && !s.contains(128));
        s.remove(64);
        assert!(!s.contains(64) && s.contains(63));
        assert!(OpcodeSet::ALL.contains(200));
    }

    /// The derived sets equal the lists written by hand before the columns existed.
    #[test]
    fn derived_sets_equal_the_former_literals() {
        assert_eq!(
            CORE_OPCODES,
            [
                0, 1, 2, 3, 6, 9, 10, 11, 13, 14, 15, 16, 18, 19, 21, 22, 23, 26, 27, 34
            ]
        );
        use crate::Feature::*;
        let former = [
            UnlinkAt,
            RenameAt,
            MkdirAt,
            SymlinkAt,
            LinkAt,
            Fallocate,
            Ftruncate,
            Fadvise,
            SyncFileRange,
            SocketOp,
            BindListen,
            Splice,
            Tee,
        ];
        assert_eq!(SYSCALL_FALLBACK, former);
    }

    /// Each fallback feature's probe asks for exactly the opcodes of the rows naming it, and
    /// no core opcode depends on a feature.
    #[test]
    fn fallback_features_probe_their_rows_opcodes() {
        for &f in SYSCALL_FALLBACK {
            let crate::features::Detection::Probe(probed) = f.detection() else {
                panic!("{f}: detected by the probe")
            };
            let rows: Vec<u8> = ROWS
                .iter()
                .filter(|r| r.syscall_without == Some(f))
                .map(|r| r.opcode)
                .collect();
            assert_eq!(probed, rows, "{f}");
            assert!(rows.iter().all(|o| !CORE.contains(*o)), "{f}");
        }
        assert!(
            ROWS.iter()
                .all(|r| !(r.core && r.syscall_without.is_some()))
        );
    }

    #[test]
    fn table_rows_name_their_fd_and_opcode() {
        let op = OpKind::Shutdown { fd: 7, how: 0 };
        assert_eq!((op.fd(), op.opcode(), op.exec()), (7, 34, Exec::Blocking));
        let op = OpKind::OpenAt {
            dirfd: libc::AT_FDCWD,
            path: std::ptr::null(),
            flags: 0,
            mode: 0,
        };
        assert_eq!((op.fd(), op.opcode()), (libc::AT_FDCWD, 18));
        assert_eq!(OpKind::Nop.fd(), -1);
    }
}
