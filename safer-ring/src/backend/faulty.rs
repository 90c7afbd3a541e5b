//! The fault-injecting backend (feature `fault-injection`): wraps a real backend and, as a
//! [`FaultPlan`] says, fails operations before they reach the kernel, shortens transfers,
//! fails turns (EBUSY/EAGAIN storms), holds completions back and releases them out of order,
//! and caps the completion queue (overflow). Everything else is the real kernel's doing, so
//! the driver and the enhanced APIs above it are tested against real results plus the faults.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::fault::{FaultPlan, OpClass};
use super::{AnyBackend, Backend, Full, OpKind, TimeoutSpec};
use crate::config::BackendKind;

/// A completion as the sink takes it.
type Cqe = (u64, i32, u32);

/// An operation of a fault-injecting ring between its push and its last completion, with the
/// memory the kernel may read or write meanwhile.
struct InFlight {
    ring: usize,
    user_data: u64,
    mem: Vec<(usize, usize)>,
}

thread_local! {
    /// Every in-flight op of this thread's fault-injecting rings (rings are single-threaded).
    static IN_FLIGHT: RefCell<Vec<InFlight>> = const { RefCell::new(Vec::new()) };
}

/// Operations of this thread's fault-injecting rings pushed and not yet completed for good.
pub(crate) fn in_flight_ops() -> usize {
    IN_FLIGHT.with(|f| f.borrow().len())
}

/// Whether an in-flight op of this thread's fault-injecting rings may still read or write any
/// byte of `ptr..ptr + len`.
pub(crate) fn kernel_may_access(ptr: *const u8, len: usize) -> bool {
    let (start, end) = (ptr as usize, ptr as usize + len);
    IN_FLIGHT.with(|f| {
        f.borrow()
            .iter()
            .flat_map(|op| op.mem.iter())
            .any(|&(a, b)| a < end && start < b)
    })
}

/// The memory `op` lets the kernel touch, as address ranges.
///
/// # Safety
/// `op`'s pointers are valid as `Backend::push` requires (the iovec arrays are read).
unsafe fn memory_of(op: &OpKind) -> Vec<(usize, usize)> {
    let range = |p: usize, len: usize| (p, p + len);
    match *op {
        OpKind::Read { buf, len, .. }
        | OpKind::ReadFixed { buf, len, .. }
        | OpKind::ReadSlot { buf, len, .. }
        | OpKind::RecvSlot { buf, len, .. }
        | OpKind::Recv { buf, len, .. } => {
            vec![range(buf as usize, len as usize)]
        }
        OpKind::Write { buf, len, .. }
        | OpKind::WriteFixed { buf, len, .. }
        | OpKind::WriteSlot { buf, len, .. }
        | OpKind::SendSlot { buf, len, .. }
        | OpKind::Send { buf, len, .. }
        | OpKind::SendZc { buf, len, .. } => vec![range(buf as usize, len as usize)],
        OpKind::Readv { iov, count, .. } | OpKind::Writev { iov, count, .. } => {
            // SAFETY: the caller guarantees `count` valid iovecs at `iov`.
            let iovs = unsafe { std::slice::from_raw_parts(iov, count as usize) };
            let mut v: Vec<_> = iovs
                .iter()
                .map(|i| range(i.iov_base as usize, i.iov_len))
                .collect();
            v.push(range(iov as usize, std::mem::size_of_val(iovs)));
            v
        }
        OpKind::Statx { buf, path, .. } => vec![
            range(buf as usize, size_of::<libc::statx>()),
            range(path as usize, 1),
        ],
        OpKind::OpenAt { path, .. }
        | OpKind::UnlinkAt { path, .. }
        | OpKind::MkdirAt { path, .. } => vec![range(path as usize, 1)],
        OpKind::RenameAt {
            oldpath: a,
            newpath: b,
            ..
        }
        | OpKind::LinkAt {
            oldpath: a,
            newpath: b,
            ..
        }
        | OpKind::SymlinkAt {
            target: a,
            linkpath: b,
            ..
        } => vec![range(a as usize, 1), range(b as usize, 1)],
        OpKind::Accept { addr, len, .. } if !addr.is_null() => vec![
            range(len as usize, size_of::<libc::socklen_t>()),
            range(addr as usize, 1),
        ],
        OpKind::Connect { addr, len, .. } => vec![range(addr as usize, len as usize)],
        OpKind::Accept { .. } => Vec::new(),
        OpKind::Timeout { ts, .. } => vec![range(ts as usize, 1)],
        // The header only (its payload goes to the ring's provided buffers).
        OpKind::RecvMsgMulti { msg, .. } => vec![range(msg as usize, size_of::<libc::msghdr>())],
        // No memory of the caller's (provided buffers are the ring's own).
        OpKind::Nop
        | OpKind::Fsync { .. }
        | OpKind::FsyncSlot { .. }
        | OpKind::Close { .. }
        | OpKind::RecvSelect { .. }
        | OpKind::AcceptMulti { .. }
        | OpKind::RecvMulti { .. }
        | OpKind::MsgRing { .. }
        | OpKind::MsgRingFd { .. }
        | OpKind::FixedFdInstall { .. }
        | OpKind::Shutdown { .. }
        | OpKind::PollReady { .. }
        | OpKind::Fallocate { .. }
        | OpKind::Ftruncate { .. }
        | OpKind::Fadvise { .. }
        | OpKind::SyncFileRange { .. }
        | OpKind::Socket { .. }
        | OpKind::Listen { .. }
        | OpKind::Splice { .. }
        | OpKind::Tee { .. } => Vec::new(),
        OpKind::Bind { addr, len, .. } => vec![range(addr as usize, len as usize)],
        // SAFETY: the caller guarantees the header and its iovecs are valid.
        OpKind::SendMsg { msg, .. } => unsafe { msghdr_memory(msg) },
        // SAFETY: as above.
        OpKind::RecvMsg { msg, .. } => unsafe { msghdr_memory(msg) },
    }
}

/// A message header's memory: the header, its iovecs and buffers, the address, the control data.
///
/// # Safety
/// `msg` is a valid `msghdr` whose iovec array holds `msg_iovlen` entries (`memory_of`'s
/// contract).
unsafe fn msghdr_memory(msg: *const libc::msghdr) -> Vec<(usize, usize)> {
    let range = |p: usize, len: usize| (p, p + len);
    // SAFETY: the caller's guarantee.
    let m = unsafe { &*msg };
    let mut v = vec![range(msg as usize, size_of::<libc::msghdr>())];
    if !m.msg_iov.is_null() {
        // The field types differ between glibc (size_t) and musl (int, socklen_t).
        #[allow(clippy::unnecessary_cast)]
        let n = m.msg_iovlen as usize;
        // SAFETY: `msg_iovlen` valid iovecs at `msg_iov` (the caller's guarantee).
        let iovs = unsafe { std::slice::from_raw_parts(m.msg_iov, n) };
        v.extend(iovs.iter().map(|i| range(i.iov_base as usize, i.iov_len)));
    }
    if !m.msg_name.is_null() {
        v.push(range(m.msg_name as usize, m.msg_namelen as usize));
    }
    if !m.msg_control.is_null() {
        #[allow(clippy::unnecessary_cast)]
        let n = m.msg_controllen as usize;
        v.push(range(m.msg_control as usize, n));
    }
    v
}

/// A completion held back until turn `release`.
struct HeldCqe {
    cqe: Cqe,
    release: u64,
}

pub(crate) struct FaultyBackend {
    inner: AnyBackend,
    plan: FaultPlan,
    /// Operations of each class pushed so far (rules count per class).
    seen: [u32; OpClass::COUNT],
    /// Completions of operations failed before they reached the kernel.
    injected: Vec<Cqe>,
    /// Held completions, in the (shuffled) order they will be released.
    held: Vec<HeldCqe>,
    /// Released completions not yet taken by a reap (the overflow list when the CQ is capped).
    ready: VecDeque<Cqe>,
    turns: u64,
    rng: u64,
}

impl FaultyBackend {
    pub(crate) fn new(mut inner: AnyBackend, plan: FaultPlan) -> FaultyBackend {
        let rng = plan.seed | 1;
        if let Some(u) = inner.as_uring_mut() {
            u.refuse_ring_fd = plan.ring_fd_registration;
        }
        FaultyBackend {
            inner,
            plan,
            seen: [0; OpClass::COUNT],
            injected: Vec::new(),
            held: Vec::new(),
            ready: VecDeque::new(),
            turns: 0,
            rng,
        }
    }

    pub(crate) fn inner(&self) -> &AnyBackend {
        &self.inner
    }

    pub(crate) fn inner_mut(&mut self) -> &mut AnyBackend {
        &mut self.inner
    }

    /// xorshift64: deterministic for a seed, good enough to shuffle a test's completions.
    fn random(&mut self, below: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % below.max(1)
    }

    /// Holds `cqe` for a random number of turns (at most the plan's delay) at a random place
    /// among the held ones, but after every held completion of the same op, and never released
    /// before them: an op's own completions (multishot, zero-copy notification) keep their order.
    fn hold(&mut self, cqe: Cqe, max_turns: u32) {
        let last_same = self.held.iter().rposition(|h| h.cqe.0 == cqe.0);
        let not_before = last_same.map_or(0, |i| self.held[i].release);
        let release = (self.turns + self.random(u64::from(max_turns) + 1)).max(not_before);
        let from = last_same.map_or(0, |i| i + 1);
        let at = from + self.random((self.held.len() - from + 1) as u64) as usize;
        self.held.insert(at, HeldCqe { cqe, release });
    }

    /// Takes the inner backend's completions and the injected ones, and moves what is due
    /// into `ready`.
    fn collect(&mut self) {
        let mut fresh = std::mem::take(&mut self.injected);
        self.inner
            .reap(&mut |ud, res, flags| fresh.push((ud, res, flags)));
        match self.plan.delay {
            Some(max) => {
                for c in fresh {
                    self.hold(c, max);
                }
            }
            None => self.ready.extend(fresh),
        }
        let now = self.turns;
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].release <= now {
                let h = self.held.remove(i);
                self.ready.push_back(h.cqe);
            } else {
                i += 1;
            }
        }
    }

    fn id(&self) -> usize {
        self as *const FaultyBackend as usize
    }

    fn track(&self, user_data: u64, mem: Vec<(usize, usize)>) {
        let ring = self.id();
        IN_FLIGHT.with(|f| {
            f.borrow_mut().push(InFlight {
                ring,
                user_data,
                mem,
            })
        });
    }

    fn untrack(&self, user_data: u64) {
        let ring = self.id();
        IN_FLIGHT.with(|f| {
            let mut f = f.borrow_mut();
            if let Some(i) = f
                .iter()
                .position(|op| op.ring == ring && op.user_data == user_data)
            {
                f.swap_remove(i);
            }
        });
    }

    fn pending(&self) -> bool {
        !self.injected.is_empty() || !self.held.is_empty() || !self.ready.is_empty()
    }
}

impl Drop for FaultyBackend {
    fn drop(&mut self) {
        // Whatever is still in flight was leaked with the ring (never freed): not ours to track.
        let ring = self.id();
        let _ = IN_FLIGHT.try_with(|f| f.borrow_mut().retain(|op| op.ring != ring));
    }
}

/// `op` with its transfer length cut to at most `max` bytes (kinds without one: unchanged).
fn shortened(op: OpKind, max: u32) -> OpKind {
    let max = max.max(1);
    match op {
        OpKind::Read {
            fd,
            buf,
            len,
            offset,
        } => OpKind::Read {
            fd,
            buf,
            len: len.min(max),
            offset,
        },
        OpKind::Write {
            fd,
            buf,
            len,
            offset,
        } => OpKind::Write {
            fd,
            buf,
            len: len.min(max),
            offset,
        },
        OpKind::ReadFixed {
            fd,
            buf,
            len,
            offset,
            index,
        } => OpKind::ReadFixed {
            fd,
            buf,
            len: len.min(max),
            offset,
            index,
        },
        OpKind::WriteFixed {
            fd,
            buf,
            len,
            offset,
            index,
        } => OpKind::WriteFixed {
            fd,
            buf,
            len: len.min(max),
            offset,
            index,
        },
        OpKind::Send {
            fd,
            buf,
            len,
            flags,
        } => OpKind::Send {
            fd,
            buf,
            len: len.min(max),
            flags,
        },
        OpKind::SendZc {
            fd,
            buf,
            len,
            flags,
        } => OpKind::SendZc {
            fd,
            buf,
            len: len.min(max),
            flags,
        },
        OpKind::Recv {
            fd,
            buf,
            len,
            flags,
        } => OpKind::Recv {
            fd,
            buf,
            len: len.min(max),
            flags,
        },
        OpKind::ReadSlot {
            fd,
            slot,
            buf,
            len,
            offset,
        } => OpKind::ReadSlot {
            fd,
            slot,
            buf,
            len: len.min(max),
            offset,
        },
        OpKind::WriteSlot {
            fd,
            slot,
            buf,
            len,
            offset,
        } => OpKind::WriteSlot {
            fd,
            slot,
            buf,
            len: len.min(max),
            offset,
        },
        OpKind::SendSlot {
            fd,
            slot,
            buf,
            len,
            flags,
        } => OpKind::SendSlot {
            fd,
            slot,
            buf,
            len: len.min(max),
            flags,
        },
        OpKind::RecvSlot {
            fd,
            slot,
            buf,
            len,
            flags,
        } => OpKind::RecvSlot {
            fd,
            slot,
            buf,
            len: len.min(max),
            flags,
        },
        OpKind::RecvSelect { fd, len, bgid } => OpKind::RecvSelect {
            fd,
            len: len.min(max),
            bgid,
        },
        OpKind::Splice {
            fd_in,
            off_in,
            fd_out,
            off_out,
            len,
            flags,
        } => OpKind::Splice {
            fd_in,
            off_in,
            fd_out,
            off_out,
            len: len.min(max),
            flags,
        },
        OpKind::Tee {
            fd_in,
            fd_out,
            len,
            flags,
        } => OpKind::Tee {
            fd_in,
            fd_out,
            len: len.min(max),
            flags,
        },
        // No transfer length to cut (vectored ops keep their iovecs whole).
        OpKind::Nop
        | OpKind::Readv { .. }
        | OpKind::Writev { .. }
        | OpKind::Fsync { .. }
        | OpKind::FsyncSlot { .. }
        | OpKind::OpenAt { .. }
        | OpKind::Close { .. }
        | OpKind::Statx { .. }
        | OpKind::Accept { .. }
        | OpKind::Connect { .. }
        | OpKind::AcceptMulti { .. }
        | OpKind::RecvMulti { .. }
        | OpKind::RecvMsgMulti { .. }
        | OpKind::MsgRing { .. }
        | OpKind::MsgRingFd { .. }
        | OpKind::FixedFdInstall { .. }
        | OpKind::Shutdown { .. }
        | OpKind::PollReady { .. }
        | OpKind::UnlinkAt { .. }
        | OpKind::RenameAt { .. }
        | OpKind::MkdirAt { .. }
        | OpKind::SymlinkAt { .. }
        | OpKind::LinkAt { .. }
        | OpKind::Fallocate { .. }
        | OpKind::Ftruncate { .. }
        | OpKind::Fadvise { .. }
        | OpKind::SyncFileRange { .. }
        | OpKind::SendMsg { .. }
        | OpKind::RecvMsg { .. }
        | OpKind::Socket { .. }
        | OpKind::Bind { .. }
        | OpKind::Listen { .. }
        | OpKind::Timeout { .. } => op,
    }
}

impl Backend for FaultyBackend {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    unsafe fn push(
        &mut self,
        user_data: u64,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
    ) -> Result<(), Full> {
        let class = op.class();
        let nth = self.seen[class as usize];
        match self.plan.op_fault(class, nth) {
            Some(super::fault::Fault::Errno(errno)) => {
                // Never reaches the kernel: its one completion is the error.
                self.seen[class as usize] += 1;
                self.injected.push((user_data, -errno, 0));
                self.track(user_data, Vec::new());
                Ok(())
            }
            fault => {
                let op = match fault {
                    Some(super::fault::Fault::Short(max)) => shortened(op, max),
                    _ => op,
                };
                // SAFETY: forwarded from the caller; a shortened op covers a prefix of the
                // same memory.
                let r = unsafe { self.inner.push(user_data, op, timeout) };
                if r.is_ok() {
                    self.seen[class as usize] += 1;
                    // SAFETY: the caller keeps `op`'s pointers valid (push's contract).
                    let mem = unsafe { memory_of(&op) };
                    self.track(user_data, mem);
                }
                r
            }
        }
    }

    fn cancel(&mut self, user_data: u64) -> Result<(), Full> {
        // An injected failure is already its op's completion; a held one is the op's result
        // (the kernel finished it). Either way the op completes exactly once.
        if self.injected.iter().any(|c| c.0 == user_data) {
            return Ok(());
        }
        self.inner.cancel(user_data)
    }

    fn recancel(&mut self, user_data: u64) -> Result<(), Full> {
        if self.injected.iter().any(|c| c.0 == user_data) {
            return Ok(());
        }
        self.inner.recancel(user_data)
    }

    fn offers(&self, feature: crate::Feature) -> bool {
        self.inner.offers(feature)
    }

    fn leak_on_drop(&mut self) {
        self.inner.leak_on_drop()
    }

    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        self.turns += 1;
        if let Some(cap) = self.plan.cq_capacity
            && self.ready.len() > cap
        {
            // Like the kernel with NODROP: no new work while the overflow cannot be flushed.
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        if let Some(errno) = self.plan.take_turn_error() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        // Never sleep in the kernel on completions we hold ourselves.
        let wait = wait && !self.pending();
        self.inner.turn(wait, timeout)
    }

    fn reap(&mut self, sink: &mut impl FnMut(u64, i32, u32)) {
        self.collect();
        let take = self.plan.cq_capacity.unwrap_or(usize::MAX);
        for _ in 0..take {
            let Some((ud, res, flags)) = self.ready.pop_front() else {
                break;
            };
            if !io_uring::cqueue::more(flags) {
                self.untrack(ud);
            }
            sink(ud, res, flags);
        }
    }

    fn wants_nonblocking(&self) -> bool {
        self.inner.wants_nonblocking()
    }

    fn pollable_fd(&self) -> RawFd {
        self.inner.pollable_fd()
    }
}
