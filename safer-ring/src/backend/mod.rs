//! The backend contract.
//!
//! A backend turns [`OpKind`] descriptions into kernel work and reports one completion per
//! pushed operation. Every backend must provide:
//!
//! - **`push`** (`unsafe`): queue one operation under a caller-chosen `user_data`. The caller
//!   keeps the pointers inside the [`OpKind`] (and the optional [`TimeoutSpec`]) valid until the
//!   completion for that `user_data` has been handed to `reap`'s sink; the backend may read or
//!   write through them at any time until then. `Err(Full)` means nothing was queued: the
//!   caller drives a turn and retries. Once `Ok`, the op is in flight until its completion,
//!   whatever a later `turn` reports.
//! - **`cancel`**: ask for an earlier push to finish early. The operation still completes exactly
//!   once (with `-ECANCELED` if the cancel won); the cancel itself never produces a completion.
//! - **`turn`**: hand queued work to the kernel and, if `wait` is set and nothing has completed
//!   yet, block in the kernel (`io_uring_enter` / `epoll_wait`) until something does, the
//!   wake eventfd is written, or `timeout` passes. `EBUSY`/`EAGAIN` (completion queue full) is
//!   returned as an error: the driver reaps and calls `turn` again (no completion is dropped).
//! - **`reap`**: move every available completion into the sink as `(user_data, res, flags)`
//!   where `res` is a byte count / fd on success and a negated errno on failure, as in a CQE.
//! - **`pollable_fd`**: an fd that polls readable when `turn` may find completions (the ring fd;
//!   the epoll fd), so an external event loop such as tokio can drive the ring.
//! - **The wake eventfd** given at creation is watched at all times; its readiness ends a
//!   blocking `turn` and is drained by the backend, never reported to the sink.
//!
//! Results are identical across backends: the same bytes moved, the same errno for the same
//! failure (`ECANCELED` for cancelled work, `ETIME` for an expired sleep).

mod buf_ring;
mod epoll;
pub mod fault;
#[cfg(feature = "fault-injection")]
mod fault_plan;
#[cfg(feature = "fault-injection")]
mod faulty;
mod file_table;
pub(crate) mod pool;
pub(crate) mod probe;
mod ring_fd;
pub(crate) mod sys;
#[cfg(feature = "tokio")]
mod tokio;
mod uring;

pub use uring::SetupReport;

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

pub(crate) use epoll::EpollBackend;
pub(crate) use uring::IoUringBackend;

use crate::config::BackendKind;

/// `user_data` values at and above this are the backends' own and never reach the sink.
pub(crate) const RESERVED_USER_DATA: u64 = u64::MAX - 16;

/// `user_data` of the doorbell completion that OP_MSG_RING posts into a target ring.
pub(crate) const MSG_TOKEN: u64 = RESERVED_USER_DATA + 4;

/// Tag bit of the `user_data` a passed fd arrives with: `MSG_FD_TAG | seq` (see
/// `enhanced::msg_ring`); the completion's res is the target file-table slot.
pub(crate) const MSG_FD_TAG: u64 = 1 << 61;

/// Tag bits: a completion with one of them set belongs to no op's slot.
pub(crate) const TAGS: u64 = LINK_TAG | MSG_FD_TAG;

/// The message sequence number of a passed fd's arrival completion.
pub(crate) fn parse_msg_fd(ud: u64) -> Option<u64> {
    (ud & MSG_FD_TAG != 0 && ud & LINK_TAG == 0).then_some(ud & !MSG_FD_TAG)
}

/// Offset meaning "the file's current position" (stream semantics).
pub(crate) const CURRENT_POS: u64 = u64::MAX;

/// One kernel operation, described with raw pointers into memory the driver keeps alive.
#[derive(Debug, Clone, Copy)]
pub enum OpKind {
    Nop,
    Read {
        fd: RawFd,
        buf: *mut u8,
        len: u32,
        offset: u64,
    },
    Write {
        fd: RawFd,
        buf: *const u8,
        len: u32,
        offset: u64,
    },
    Readv {
        fd: RawFd,
        iov: *const libc::iovec,
        count: u32,
        offset: u64,
    },
    Writev {
        fd: RawFd,
        iov: *const libc::iovec,
        count: u32,
        offset: u64,
    },
    Fsync {
        fd: RawFd,
        datasync: bool,
    },
    OpenAt {
        dirfd: RawFd,
        path: *const libc::c_char,
        flags: i32,
        mode: u32,
    },
    Close {
        fd: RawFd,
    },
    Statx {
        fd: RawFd,
        path: *const libc::c_char,
        flags: i32,
        mask: u32,
        buf: *mut libc::statx,
    },
    Accept {
        fd: RawFd,
        addr: *mut libc::sockaddr,
        len: *mut libc::socklen_t,
    },
    Connect {
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    },
    Send {
        fd: RawFd,
        buf: *const u8,
        len: u32,
        flags: i32,
    },
    /// recv into a buffer the kernel picks from provided-buffer group `bgid` (5.19+ rings).
    RecvSelect {
        fd: RawFd,
        len: u32,
        bgid: u16,
    },
    /// Multishot accept (5.19+): a completion per connection, IORING_CQE_F_MORE while more
    /// follow. Like every io_uring-only kind, epoll completes it with -EOPNOTSUPP.
    AcceptMulti {
        fd: RawFd,
    },
    /// Multishot recv over provided-buffer group `bgid` (6.0+): a completion per chunk.
    RecvMulti {
        fd: RawFd,
        bgid: u16,
    },
    /// OP_MSG_RING (5.18+): post a completion with `user_data` into the ring `ring_fd`.
    MsgRing {
        ring_fd: RawFd,
        user_data: u64,
    },
    /// OP_MSG_RING with IORING_MSG_SEND_FD (6.0+): moves registered file `slot` into a slot
    /// the kernel allocates in `ring_fd`'s table; that ring gets a completion with `user_data`
    /// whose res is the slot.
    MsgRingFd {
        ring_fd: RawFd,
        slot: u32,
        user_data: u64,
    },
    /// OP_FIXED_FD_INSTALL (6.8+): a normal fd (close-on-exec) for registered file `slot`.
    FixedFdInstall {
        slot: u32,
    },
    /// Zero-copy send (6.0+): a result completion with F_MORE, then a notification.
    SendZc {
        fd: RawFd,
        buf: *const u8,
        len: u32,
        flags: i32,
    },
    Recv {
        fd: RawFd,
        buf: *mut u8,
        len: u32,
        flags: i32,
    },
    Shutdown {
        fd: RawFd,
        how: i32,
    },
    /// A timer: io_uring reads `ts` (kept valid by the op), epoll uses `dur`.
    Timeout {
        ts: *const io_uring::types::Timespec,
        dur: Duration,
    },
}

/// A relative deadline in both forms the backends need, kept at a stable address.
#[derive(Debug)]
pub struct TimeoutSpec {
    pub(crate) ts: io_uring::types::Timespec,
    pub(crate) dur: Duration,
}

/// Longest timeout: longer ones are clamped, so no deadline arithmetic overflows (an epoll
/// `Instant`, the kernel's signed seconds).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(u32::MAX as u64);

/// Tag bit of a linked timeout's own `user_data`: `LINK_TAG | op's user_data`. Its completion
/// is reported to the sink so the driver can re-cancel an op whose timeout fired but missed it.
pub(crate) const LINK_TAG: u64 = 1 << 62;

/// The `user_data` of the op a linked timeout's completion belongs to.
pub(crate) fn parse_link(ud: u64) -> Option<u64> {
    (ud & LINK_TAG != 0).then_some(ud & !LINK_TAG)
}

impl TimeoutSpec {
    pub(crate) fn new(dur: Duration) -> Box<TimeoutSpec> {
        let dur = dur.min(MAX_TIMEOUT);
        Box::new(TimeoutSpec {
            ts: dur.into(),
            dur,
        })
    }

    /// Changes the duration (before the op is submitted).
    pub(crate) fn set(&mut self, dur: Duration) {
        let dur = dur.min(MAX_TIMEOUT);
        self.ts = dur.into();
        self.dur = dur;
    }
}

/// The submission queue has no room; drive a turn and push again.
#[derive(Debug)]
pub(crate) struct Full;

/// What every backend provides; see the module documentation for the contract.
pub(crate) trait Backend {
    fn kind(&self) -> BackendKind;
    /// Queues `op` under `user_data`.
    ///
    /// # Safety
    /// Every pointer in `op` and `timeout` stays valid (and is not otherwise accessed where the
    /// kernel writes) until the completion for `user_data` has been passed to `reap`'s sink, or
    /// forever if the op is leaked; every fd it names stays open as long.
    unsafe fn push(
        &mut self,
        user_data: u64,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
    ) -> Result<(), Full>;
    fn cancel(&mut self, user_data: u64) -> Result<(), Full>;
    /// Doorbell completions (OP_MSG_RING from another ring) reaped since the last call.
    fn take_doorbells(&mut self) -> u32;
    /// Whether this backend can offer `feature` at all (io_uring: detected and not demoted;
    /// epoll: no io_uring feature). The ring combines this with the configuration.
    fn offers(&self, feature: crate::Feature) -> bool;
    /// The provided-buffer group for `RecvSelect` (created on first use): `(bgid, buffer
    /// size)`, or `None` where the backend has none.
    fn buffer_group(&mut self) -> Option<(u16, u32)>;
    /// Bytes `from..to` (clamped) of provided buffer `bid`; empty unless a completion of this
    /// ring handed `bid` to us and it has not been recycled since.
    fn chunk(&self, bid: u16, from: usize, to: usize) -> &[u8];
    /// Returns provided buffer `bid` to the kernel (once; a buffer not ours is ignored).
    fn recycle_buffer(&mut self, bid: u16);
    /// Registers this ring's file table for native fd passing (once); whether it has one.
    fn enable_fd_passing(&mut self) -> bool;
    /// Puts `fd` into a staging slot of the file table, for `OpKind::MsgRingFd`. epoll:
    /// `UnsupportedFeature`.
    fn stage_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<u32>;
    /// Empties file-table `slot`: a staged fd that was sent, or an arrival now installed.
    fn release_file(&mut self, slot: u32);
    /// Operations may still be in flight at drop: leak kernel-visible memory, never free it.
    fn leak_on_drop(&mut self);
    /// Registers the ring fd for this thread (Linux 5.18+) and uses it for every enter; returns
    /// its index. epoll: `UnsupportedFeature` (as for every io_uring-only call).
    fn register_ring_fd(&mut self) -> io::Result<u32>;
    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()>;
    fn reap(&mut self, sink: &mut dyn FnMut(u64, i32, u32));
    /// Whether blocking fds (io_uring) or O_NONBLOCK fds (epoll) suit this backend.
    fn wants_nonblocking(&self) -> bool;
    /// An fd that polls readable when completions may be waiting (for external event loops);
    /// for io_uring, the ring fd (also the target of OP_MSG_RING).
    fn pollable_fd(&self) -> RawFd;
}

/// Static dispatch over the backends (no vtable on the per-op path).
pub(crate) enum AnyBackend {
    Uring(Box<IoUringBackend>),
    Epoll(EpollBackend),
    /// The ring was dropped: the real backend (and its fds) is gone.
    Closed(Closed),
    /// A real backend under a `FaultPlan` (tests).
    #[cfg(feature = "fault-injection")]
    Faulty(Box<faulty::FaultyBackend>),
}

impl AnyBackend {
    /// `self`, under `plan`'s faults when the configuration has one.
    pub(crate) fn with_faults(self, cfg: &crate::SaferRingConfig) -> AnyBackend {
        #[cfg(feature = "fault-injection")]
        if let Some(plan) = &cfg.faults {
            return AnyBackend::Faulty(Box::new(faulty::FaultyBackend::new(self, plan.clone())));
        }
        let _ = cfg;
        self
    }
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Uring($b) => $e,
            AnyBackend::Epoll($b) => $e,
            AnyBackend::Closed($b) => $e,
            #[cfg(feature = "fault-injection")]
            AnyBackend::Faulty($b) => $e,
        }
    };
}

/// What a dropped ring's driver keeps instead of its backend: nothing can be queued (the
/// driver refuses pushes first), nothing completes.
pub(crate) struct Closed(pub(crate) BackendKind);

impl Backend for Closed {
    fn kind(&self) -> BackendKind {
        self.0
    }
    unsafe fn push(&mut self, _: u64, _: OpKind, _: Option<&TimeoutSpec>) -> Result<(), Full> {
        Err(Full)
    }
    fn cancel(&mut self, _: u64) -> Result<(), Full> {
        Ok(())
    }
    fn take_doorbells(&mut self) -> u32 {
        0
    }
    fn offers(&self, _: crate::Feature) -> bool {
        false
    }
    fn buffer_group(&mut self) -> Option<(u16, u32)> {
        None
    }
    fn chunk(&self, _: u16, _: usize, _: usize) -> &[u8] {
        &[]
    }
    fn recycle_buffer(&mut self, _: u16) {}
    fn enable_fd_passing(&mut self) -> bool {
        false
    }
    fn stage_fd(&mut self, _: BorrowedFd<'_>) -> io::Result<u32> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn release_file(&mut self, _: u32) {}
    fn leak_on_drop(&mut self) {}
    fn register_ring_fd(&mut self) -> io::Result<u32> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn turn(&mut self, _: bool, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn reap(&mut self, _: &mut dyn FnMut(u64, i32, u32)) {}
    fn wants_nonblocking(&self) -> bool {
        false
    }
    fn pollable_fd(&self) -> RawFd {
        -1
    }
}

impl Backend for AnyBackend {
    fn kind(&self) -> BackendKind {
        dispatch!(self, b => b.kind())
    }
    #[inline]
    unsafe fn push(
        &mut self,
        user_data: u64,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
    ) -> Result<(), Full> {
        // SAFETY: forwarded from the caller.
        dispatch!(self, b => unsafe { b.push(user_data, op, timeout) })
    }
    fn cancel(&mut self, user_data: u64) -> Result<(), Full> {
        dispatch!(self, b => b.cancel(user_data))
    }
    fn register_ring_fd(&mut self) -> io::Result<u32> {
        dispatch!(self, b => b.register_ring_fd())
    }
    fn take_doorbells(&mut self) -> u32 {
        dispatch!(self, b => b.take_doorbells())
    }
    fn offers(&self, feature: crate::Feature) -> bool {
        dispatch!(self, b => b.offers(feature))
    }
    fn buffer_group(&mut self) -> Option<(u16, u32)> {
        dispatch!(self, b => b.buffer_group())
    }
    fn recycle_buffer(&mut self, bid: u16) {
        dispatch!(self, b => b.recycle_buffer(bid))
    }
    fn chunk(&self, bid: u16, from: usize, to: usize) -> &[u8] {
        dispatch!(self, b => b.chunk(bid, from, to))
    }
    fn enable_fd_passing(&mut self) -> bool {
        dispatch!(self, b => b.enable_fd_passing())
    }
    fn stage_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<u32> {
        dispatch!(self, b => b.stage_fd(fd))
    }
    fn release_file(&mut self, slot: u32) {
        dispatch!(self, b => b.release_file(slot))
    }
    fn leak_on_drop(&mut self) {
        dispatch!(self, b => b.leak_on_drop())
    }
    #[inline]
    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        dispatch!(self, b => b.turn(wait, timeout))
    }
    #[inline]
    fn reap(&mut self, sink: &mut dyn FnMut(u64, i32, u32)) {
        dispatch!(self, b => b.reap(sink))
    }
    fn wants_nonblocking(&self) -> bool {
        dispatch!(self, b => b.wants_nonblocking())
    }
    fn pollable_fd(&self) -> RawFd {
        dispatch!(self, b => b.pollable_fd())
    }
}
