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
//!
//! Every op is declared once, in the table of `op.rs`. The trait holds only what both backends
//! do; io_uring-only calls are inherent methods of `IoUringBackend`, reached through
//! [`AnyBackend::as_uring_mut`] (`None`: take the fallback).

mod buf_ring;
mod epoll;
pub mod fault;
#[cfg(feature = "fault-injection")]
mod fault_plan;
#[cfg(feature = "fault-injection")]
mod faulty;
pub(crate) mod file_table;
mod offload;
pub(crate) mod op;
pub(crate) mod opcodes;
pub(crate) mod pool;
mod ring_fd;
pub(crate) mod syscall;
#[cfg(feature = "tokio")]
mod tokio;
mod uring;

pub use op::OpKind;
pub use uring::SetupReport;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

pub(crate) use buf_ring::Lent;

/// `io_uring_enter` calls through the registered ring fd and through the plain fd, counted by
/// the io_uring backend (plain cells: one increment per system call, no borrow) for the
/// ring's enhancement stats.
#[derive(Debug, Default)]
pub(crate) struct EnterCounts {
    pub(crate) registered: std::cell::Cell<u64>,
    pub(crate) plain: std::cell::Cell<u64>,
}

/// A ring's provided-buffer group: its id, buffer size, and whether its buffers are
/// consumed incrementally (IOU_PBUF_RING_INC).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BufGroup {
    pub(crate) bgid: u16,
    pub(crate) size: u32,
    pub(crate) incremental: bool,
}
pub(crate) use epoll::EpollBackend;
pub(crate) use uring::IoUringBackend;

use crate::config::BackendKind;
// The children's `super::sys` paths: the syscall wrappers live in the kernel layer.
use crate::kernel::sys;

/// Offset meaning "the file's current position" (stream semantics).
pub(crate) const CURRENT_POS: u64 = u64::MAX;

/// A relative deadline in both forms the backends need, kept at a stable address.
#[derive(Debug)]
pub struct TimeoutSpec {
    pub(crate) ts: io_uring::types::Timespec,
    pub(crate) dur: Duration,
}

/// Longest timeout: longer ones are clamped, so no deadline arithmetic overflows (an epoll
/// `Instant`, the kernel's signed seconds).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(u32::MAX as u64);

impl TimeoutSpec {
    pub(crate) fn new(dur: Duration) -> Box<TimeoutSpec> {
        Box::new(TimeoutSpec::value(dur))
    }

    /// As `new`, for a caller that keeps it at a stable address itself.
    pub(crate) fn value(dur: Duration) -> TimeoutSpec {
        let dur = dur.min(MAX_TIMEOUT);
        TimeoutSpec {
            ts: dur.into(),
            dur,
        }
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
    /// Cancels again an op whose linked timeout or last repeat did not find it; the cancel's
    /// own completion, `RECANCEL_TAG | user_data`, reaches the sink (io_uring only: elsewhere
    /// no linked timeout reports a miss).
    fn recancel(&mut self, user_data: u64) -> Result<(), Full> {
        self.cancel(user_data)
    }
    /// Whether this backend can offer `feature` at all (io_uring: detected and not demoted;
    /// epoll: no io_uring feature). The ring combines this with the configuration.
    fn offers(&self, feature: crate::Feature) -> bool;
    /// Operations may still be in flight at drop: leak kernel-visible memory, never free it.
    fn leak_on_drop(&mut self);
    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()>;
    fn reap(&mut self, sink: &mut impl FnMut(u64, i32, u32));
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

    /// The io_uring backend, for the calls only it can make (provided buffers, the file
    /// table, the registered ring fd, doorbells); `None` on epoll and on a closed ring, where
    /// callers take their fallback.
    #[inline]
    pub(crate) fn as_uring_mut(&mut self) -> Option<&mut IoUringBackend> {
        match self {
            AnyBackend::Uring(b) => Some(b),
            AnyBackend::Epoll(_) | AnyBackend::Closed(_) => None,
            #[cfg(feature = "fault-injection")]
            AnyBackend::Faulty(b) => b.inner_mut().as_uring_mut(),
        }
    }

    /// As [`as_uring_mut`](Self::as_uring_mut), shared.
    pub(crate) fn as_uring(&self) -> Option<&IoUringBackend> {
        match self {
            AnyBackend::Uring(b) => Some(b),
            AnyBackend::Epoll(_) | AnyBackend::Closed(_) => None,
            #[cfg(feature = "fault-injection")]
            AnyBackend::Faulty(b) => b.inner().as_uring(),
        }
    }

    /// Whether the ring was dropped (its backend is gone).
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, AnyBackend::Closed(_))
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
    fn offers(&self, _: crate::Feature) -> bool {
        false
    }
    fn leak_on_drop(&mut self) {}
    fn turn(&mut self, _: bool, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn reap(&mut self, _: &mut impl FnMut(u64, i32, u32)) {}
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
    fn recancel(&mut self, user_data: u64) -> Result<(), Full> {
        dispatch!(self, b => b.recancel(user_data))
    }
    fn offers(&self, feature: crate::Feature) -> bool {
        dispatch!(self, b => b.offers(feature))
    }
    fn leak_on_drop(&mut self) {
        dispatch!(self, b => b.leak_on_drop())
    }
    #[inline]
    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        dispatch!(self, b => b.turn(wait, timeout))
    }
    #[inline]
    fn reap(&mut self, sink: &mut impl FnMut(u64, i32, u32)) {
        dispatch!(self, b => b.reap(sink))
    }
    fn wants_nonblocking(&self) -> bool {
        dispatch!(self, b => b.wants_nonblocking())
    }
    fn pollable_fd(&self) -> RawFd {
        dispatch!(self, b => b.pollable_fd())
    }
}
