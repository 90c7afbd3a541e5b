//! io_uring backend on the `io-uring` crate.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

use super::EnterCounts;
use super::op::Direction;
use super::opcodes::OpcodeSet;
use super::syscall::Attempt;
use super::{Backend, Full, OpKind, TimeoutSpec};
use crate::config::{BackendKind, SaferRingConfig};
use crate::kernel::cqe_flags;
use crate::kernel::probe::sys_features;

use crate::kernel::user_data::{
    CANCEL_TOKEN, LINK_TAG, MSG_TOKEN, PARK_TAG, POOL_TIMER, RECANCEL_TAG, RESERVED_USER_DATA,
    SPLICE_TIMER_TAG, TIMER_TOKEN, URING_TAGS, WAKE_TOKEN,
};

/// A fallback op waiting for its fd's readiness.
struct ParkedOp {
    ud: u64,
    op: OpKind,
    /// The op's linked timeout, valid until the op's completion (`Backend::push`'s contract).
    timeout: Option<*const TimeoutSpec>,
    /// A cancel was asked for: the poll's completion ends the op, whatever it says.
    cancelled: bool,
}

/// Which setup flags the kernel accepted, and the ring's reported features.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// if let Some(setup) = ring.info().setup {
///     println!("SQ {} / CQ {} entries, DEFER_TASKRUN: {}", setup.sq_entries, setup.cq_entries, setup.defer_taskrun);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetupReport {
    /// `IORING_SETUP_COOP_TASKRUN` (with `TASKRUN_FLAG`) was accepted.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SINGLE_ISSUER` was accepted.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` was accepted.
    pub defer_taskrun: bool,
    /// `params.features` as returned by `io_uring_setup`.
    pub features: u32,
    /// Submission queue entries granted.
    pub sq_entries: u32,
    /// Completion queue entries granted.
    pub cq_entries: u32,
}

pub(crate) struct IoUringBackend {
    ring: IoUring,
    report: SetupReport,
    wake_fd: RawFd,
    wake_armed: bool,
    timer: types::Timespec,
    /// Index of this ring in the thread's registered ring fds, when registered.
    ring_index: Option<u32>,
    doorbells: u32,
    buf_ring: Option<super::buf_ring::BufRing>,
    buf_ring_failed: bool,
    /// The registered-file table (user slots, native fd passing); `Err(e)` once registering
    /// it failed (the kernel's answer, kept for the next caller).
    files: Option<Result<super::file_table::FileTable, (io::ErrorKind, Option<i32>)>>,
    /// User slots the table gets (`SaferRingConfig::registered_files`).
    user_files: u32,
    leak: bool,
    /// The buffers registered with this ring (`register_buffers`): kept alive while the kernel
    /// may use them, i.e. until the ring is gone (or forever if it leaks).
    fixed: Option<Rc<crate::buf::FixedShared>>,
    /// What the detection this ring was built from found (see `offers`).
    detected: crate::AvailableFeatures,
    /// Enter calls by path, shared with the ring's stats (`Feature::RegisteredRingFd`).
    enters: Rc<EnterCounts>,
    /// Opcodes pushed as SQEs; any other op runs as its syscall (`run_fallback`).
    supported: OpcodeSet,
    /// Opcodes whose fallback was logged (once each).
    logged: OpcodeSet,
    /// Results of ops that ran as syscalls at push time, handed out by the next `reap`.
    ready: Vec<(u64, i32)>,
    /// Blocking ops whose opcode the ring does not push, on the blocking pool (made at the
    /// first one).
    offload: Option<Box<super::offload::Offload>>,
    pool_cfg: super::pool::PoolConfig,
    /// Syscall-run ops that would block (splice/tee on a pipe or socket), each waiting for a
    /// poll SQE whose user_data is `PARK_TAG | token`; see `park`.
    parked: HashMap<u64, ParkedOp>,
    /// The token of each parked op, by its user_data (for `cancel`).
    park_of: HashMap<u64, u64>,
    next_park: u64,
    /// Native splice/tee ops in flight: their cancel is submitted at once (see `cancel`).
    splicing: std::collections::HashSet<u64>,
    /// A cancel's immediate submission failed; see `take_unsent_cancel`.
    cancel_unsent: bool,
    /// The fault plan's refusal of ring-fd registration (an errno).
    #[cfg(feature = "fault-injection")]
    pub(crate) refuse_ring_fd: Option<i32>,
}

impl IoUringBackend {
    /// Creates a ring with the fastest setup flags the kernel accepts: each flag the kernel
    /// rejects with EINVAL is dropped (newest first) and setup retried.
    /// `opcodes` is the probe's answer (`None`: no probe, every opcode is assumed).
    pub(crate) fn new(
        cfg: &SaferRingConfig,
        wake_fd: RawFd,
        detected: crate::AvailableFeatures,
        opcodes: Option<&[u8]>,
    ) -> io::Result<IoUringBackend> {
        use crate::features::Feature;
        let allowed = |f| cfg.enhancement.wish(f) != Some(false);
        let mut want = (
            cfg.coop_taskrun && allowed(Feature::CoopTaskrun),
            cfg.single_issuer && allowed(Feature::SingleIssuer),
            cfg.defer_taskrun && allowed(Feature::DeferTaskrun) && allowed(Feature::SingleIssuer),
        );
        let ring = loop {
            let mut b = IoUring::builder();
            b.setup_cqsize(cfg.cq_size());
            if want.0 {
                b.setup_coop_taskrun();
            }
            if want.0 || want.2 {
                // The kernel then flags pending task work in the SQ, so idle turns skip the syscall.
                b.setup_taskrun_flag();
            }
            if want.1 {
                b.setup_single_issuer();
            }
            if want.2 {
                b.setup_defer_taskrun();
            }
            match b.build(cfg.entries) {
                Ok(r) => break r,
                Err(e)
                    if e.raw_os_error() == Some(libc::EINVAL) && want != (false, false, false) =>
                {
                    tracing::debug!(
                        ?want,
                        "io_uring_setup rejected flags (EINVAL); retrying with fewer"
                    );
                    want = match want {
                        (c, s, true) => (c, s, false),
                        (c, true, false) => (c, false, false),
                        _ => (false, false, false),
                    };
                }
                Err(e) => return Err(e),
            }
        };
        let params = ring.params();
        let report = SetupReport {
            coop_taskrun: want.0,
            single_issuer: want.1,
            defer_taskrun: want.2,
            features: sys_features(params),
            sq_entries: params.sq_entries(),
            cq_entries: params.cq_entries(),
        };
        let mut backend = IoUringBackend {
            ring,
            report,
            wake_fd,
            wake_armed: false,
            timer: types::Timespec::new(),
            ring_index: None,
            doorbells: 0,
            buf_ring: None,
            buf_ring_failed: false,
            files: None,
            user_files: cfg.registered_files,
            leak: false,
            fixed: None,
            detected,
            enters: Rc::default(),
            supported: opcodes.map_or(OpcodeSet::ALL, OpcodeSet::from_list),
            logged: OpcodeSet::default(),
            ready: Vec::new(),
            offload: None,
            pool_cfg: cfg.blocking,
            parked: HashMap::new(),
            park_of: HashMap::new(),
            next_park: 0,
            splicing: Default::default(),
            cancel_unsent: false,
            #[cfg(feature = "fault-injection")]
            refuse_ring_fd: None,
        };
        backend.arm_wake();
        Ok(backend)
    }

    pub(crate) fn report(&self) -> SetupReport {
        self.report
    }

    /// Makes `native` and the path taken agree for features whose op has a syscall fallback
    /// ([`super::opcodes::SYSCALL_FALLBACK`]): the opcodes of those the ring does not use natively
    /// (turned off by the configuration) are not pushed, and those whose opcode this ring
    /// cannot push (forced on where the probe lacks it) leave `native`.
    pub(crate) fn use_native(&mut self, native: &mut crate::AvailableFeatures) {
        for &f in super::opcodes::SYSCALL_FALLBACK {
            let crate::features::Detection::Probe(ops) = f.detection() else {
                continue;
            };
            if !native.contains(f) {
                ops.iter().for_each(|&o| self.supported.remove(o));
            } else if !ops.iter().all(|&o| self.supported.contains(o)) {
                native.remove(f);
            }
        }
    }

    /// Runs `op`, whose opcode this ring does not push, as its syscall: on the blocking pool
    /// if it may block (`pool::offloads`), else here (fds are blocking here), its result handed
    /// out by a later `reap`, so it completes like any op. An op whose syscall form is
    /// non-blocking (splice, tee) and would block is parked on a poll SQE for the end that
    /// blocked, with the op's timeout linked to the poll. `Err(Full)` only for a pooled op
    /// whose deadline timer found the SQ full (nothing was started).
    ///
    /// # Safety
    /// `Backend::push`'s contract for `op` and `timeout`.
    #[cold]
    unsafe fn run_fallback(
        &mut self,
        user_data: u64,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
    ) -> Result<(), Full> {
        let code = op.opcode();
        let pooled = super::pool::offloads(&op);
        if !self.logged.contains(code) {
            self.logged.insert(code);
            tracing::debug!(
                opcode = %crate::features::opcode_name(code),
                on_pool = pooled,
                "running the op as a syscall (io_uring lacks its opcode here, or it is turned \
                 off, or a splice/tee reads a pipe or socket: parked on readiness)"
            );
        }
        if pooled {
            let (wake_fd, cfg) = (self.wake_fd, self.pool_cfg);
            let offload = self
                .offload
                .get_or_insert_with(|| Box::new(super::offload::Offload::new(wake_fd, cfg)));
            if let Some(t) = timeout {
                let e = offload.timer(user_data, t.dur);
                let mut sq = self.ring.submission();
                // SAFETY: the timer's timespec is the offload's until the timer completes.
                if unsafe { sq.push(&e) }.is_err() {
                    drop(sq);
                    offload.unpushed_timer(user_data);
                    return Err(Full);
                }
            }
            // SAFETY: forwarded from the caller (valid until reaped, which is after the pool
            // published the result).
            if let Err(errno) = unsafe { offload.submit(user_data, op) } {
                self.ready.push((user_data, -errno));
            }
            return Ok(());
        }
        // SAFETY: forwarded from the caller.
        let res = match unsafe { super::syscall::attempt(op) } {
            Attempt::Done(r) => r,
            Attempt::WouldBlockOn(fd, dir) => {
                let parked = ParkedOp {
                    ud: user_data,
                    op,
                    timeout: timeout.map(|t| t as *const TimeoutSpec),
                    cancelled: false,
                };
                self.park(parked, fd, dir);
                return Ok(());
            }
            // Blocking fds do not ask to wait; should one, the caller sees the errno.
            Attempt::WouldBlock(_) => -libc::EAGAIN,
            Attempt::InProgress => -libc::EINPROGRESS,
        };
        // It completed at once: a timeout has nothing left to bound.
        self.ready.push((user_data, res));
        Ok(())
    }

    /// Hands out the pool's results; removes the deadline timers of those that had one.
    #[cold]
    fn drain_offload(&mut self, sink: &mut dyn FnMut(u64, i32, u32)) {
        let Some(offload) = self.offload.as_mut() else {
            return;
        };
        let mut disarm = Vec::new();
        offload.drain(sink, &mut disarm);
        for ud in disarm {
            let e = opcode::TimeoutRemove::new(POOL_TIMER | ud)
                .build()
                .user_data(CANCEL_TOKEN);
            // SAFETY: a timeout removal carries no pointers. If the SQ is full the timer just
            // fires later and finds nothing to cancel.
            let _ = unsafe { self.push_entries(&[e]) };
        }
    }

    /// Waits for `dir` readiness of `fd` with a poll SQE (one-shot), then retries the op
    /// (`reap`). Its timeout, linked to the poll, restarts with each wait.
    fn park(&mut self, p: ParkedOp, fd: RawFd, dir: Direction) {
        let mask = match dir {
            Direction::Read => libc::POLLIN,
            Direction::Write => libc::POLLOUT,
        };
        let token = self.next_park;
        self.next_park = (self.next_park + 1) & 0xffff_ffff; // clear of every tag bit
        let poll = opcode::PollAdd::new(types::Fd(fd), mask as u32)
            .build()
            .user_data(PARK_TAG | token);
        let entries = match p.timeout {
            None => vec![poll],
            Some(t) => {
                // SAFETY: `t` is valid until the op's completion (push contract), which comes
                // from this poll's completion or a later one's, after the kernel read it.
                let ts = unsafe { &(*t).ts };
                let lt = opcode::LinkTimeout::new(ts)
                    .build()
                    .user_data(LINK_TAG | p.ud);
                vec![poll.flags(squeue::Flags::IO_LINK), lt]
            }
        };
        // SAFETY: a poll carries no pointers (the op holds `fd` open until it completes), the
        // linked timeout's as above; all-or-nothing, so the link is never split.
        let mut pushed = unsafe { self.push_entries(&entries) };
        if pushed.is_err() {
            // The SQ is full: hand it to the kernel and try once more.
            let _ = self.enter(0);
            // SAFETY: as above.
            pushed = unsafe { self.push_entries(&entries) };
        }
        if pushed.is_err() {
            self.ready.push((p.ud, -libc::EAGAIN));
            return;
        }
        self.park_of.insert(p.ud, token);
        self.parked.insert(token, p);
    }

    /// A parked op's poll completed: retry it (`res` >= 0), or complete it with the poll's
    /// error (-ECANCELED: cancelled, or its linked timeout fired).
    fn unpark(&mut self, token: u64, res: i32) {
        let Some(p) = self.parked.remove(&token) else {
            return; // not a poll of ours (never expected)
        };
        self.park_of.remove(&p.ud);
        if res < 0 || p.cancelled {
            // A poll that won the race with the cancel still ends the op: it was cancelled.
            let res = if res < 0 { res } else { -libc::ECANCELED };
            self.ready.push((p.ud, res));
            return;
        }
        // SAFETY: a parked op has not completed, so its pointers and timeout are valid (push
        // contract).
        unsafe {
            let timeout = p.timeout.map(|t| &*t);
            // A parked op is never a pooled one, so this cannot fail for a full SQ.
            let _ = self.run_fallback(p.ud, p.op, timeout);
        }
    }

    /// Counts this backend's `io_uring_enter` calls into `enters` from now on.
    pub(crate) fn count_enters(&mut self, enters: Rc<EnterCounts>) {
        self.enters = enters;
    }

    /// # Safety
    /// Every pointer in `entries` stays valid until its completion is reaped (the contract of
    /// `Backend::push`), or points to `self` fields that live as long as the ring.
    unsafe fn push_entries(&mut self, entries: &[squeue::Entry]) -> Result<(), Full> {
        let mut sq = self.ring.submission();
        // SAFETY: forwarded from the caller.
        unsafe { sq.push_multiple(entries) }.map_err(|_| Full)
    }

    fn arm_wake(&mut self) {
        let e = opcode::PollAdd::new(types::Fd(self.wake_fd), libc::POLLIN as u32)
            .build()
            .user_data(WAKE_TOKEN);
        // SAFETY: a poll names only an fd (the wake eventfd, open as long as the ring).
        if unsafe { self.push_entries(&[e]) }.is_ok() {
            self.wake_armed = true;
        }
    }

    fn submit_and_wait(&mut self, want: usize) -> io::Result<usize> {
        super::fault::check(super::fault::Syscall::IoUringEnter)?;
        let Some(index) = self.ring_index else {
            self.enters.plain.set(self.enters.plain.get() + 1);
            return self.ring.submit_and_wait(want);
        };
        self.enters.registered.set(self.enters.registered.get() + 1);
        let (len, busy) = {
            let sq = self.ring.submission();
            (sq.len(), sq.taskrun() || sq.cq_overflow())
        };
        super::ring_fd::enter(index, len as u32, want as u32, want > 0 || busy).map(|()| len)
    }

    fn enter(&mut self, want: usize) -> io::Result<()> {
        loop {
            match self.submit_and_wait(want) {
                Ok(_) => return Ok(()),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) if want > 0 => return Ok(()),
                    Some(libc::EINTR) => continue,
                    // CQ overflow with NODROP: the caller reaps, then submits again.
                    Some(libc::EBUSY) | Some(libc::EAGAIN) => return Err(e),
                    // ETIME is the EXT_ARG timeout; nothing to report.
                    Some(libc::ETIME) => return Ok(()),
                    _ => return Err(e),
                },
            }
        }
    }
}

/// The calls only io_uring can make, reached through `AnyBackend::as_uring_mut`.
impl IoUringBackend {
    /// Whether a cancel that had to reach the kernel at once is still in the SQ (its enter
    /// failed): the driver then reaps, which lets the next enter through, and submits.
    pub(crate) fn take_unsent_cancel(&mut self) -> bool {
        std::mem::take(&mut self.cancel_unsent)
    }

    /// The provided-buffer group for `RecvSelect` (created on first use): `(bgid, buffer
    /// size)`, or `None` when the kernel refused it.
    pub(crate) fn buffer_group(&mut self, incremental: bool) -> Option<super::BufGroup> {
        if self.buf_ring.is_none() && !self.buf_ring_failed {
            // 64 buffers of 16 KiB: 1 MiB per ring, shared by every receive in flight.
            let new = |inc| super::buf_ring::BufRing::new(&self.ring, 0, 64, 16 * 1024, inc);
            let made = match new(incremental) {
                Err(e) if incremental => {
                    tracing::info!(error = %e, "incremental buffer ring refused; a plain one");
                    new(false)
                }
                made => made,
            };
            match made {
                Ok(b) => self.buf_ring = Some(b),
                Err(e) => {
                    tracing::info!(error = %e, "provided-buffer ring unavailable; plain recv");
                    self.buf_ring_failed = true;
                }
            }
        }
        self.buf_ring.as_ref().map(|b| super::BufGroup {
            bgid: b.bgid,
            size: b.buf_size(),
            incremental: b.incremental(),
        })
    }

    /// Bytes `from..to` (clamped) of provided buffer `bid`; empty unless a completion of this
    /// ring handed `bid` to us and it has not been recycled since.
    pub(crate) fn chunk(&self, bid: u16, from: usize, to: usize) -> &[u8] {
        self.buf_ring
            .as_ref()
            .map_or(&[], |b| b.chunk(bid, from, to))
    }

    /// Lends bytes `from..to` of provided buffer `bid` (see [`BufRing::lend`]).
    ///
    /// [`BufRing::lend`]: super::buf_ring::BufRing::lend
    pub(crate) fn lend(&self, bid: u16, from: usize, to: usize) -> Option<super::buf_ring::Lent> {
        self.buf_ring.as_ref()?.lend(bid, from, to)
    }

    /// Returns provided buffer `bid` to the kernel (once; a buffer not ours is ignored).
    pub(crate) fn recycle_buffer(&mut self, bid: u16) {
        if let Some(b) = self.buf_ring.as_mut() {
            b.recycle(bid);
        }
    }

    /// Returns the buffers holding a completion's `len` bytes from the start of `bid` on
    /// (a bundle's run; one buffer otherwise).
    pub(crate) fn recycle_run(&mut self, bid: u16, len: u32) {
        if let Some(b) = self.buf_ring.as_mut() {
            b.recycle_run(bid, len);
        }
    }

    /// The buffer that follows `bid` in the bundle completion that handed both to us.
    pub(crate) fn next_buffer(&self, bid: u16) -> Option<u16> {
        self.buf_ring.as_ref().and_then(|b| b.next_out(bid))
    }

    /// Provided buffers handed to us and not yet given back.
    pub(crate) fn buffers_out(&self) -> usize {
        self.buf_ring.as_ref().map_or(0, |b| b.out_count())
    }

    /// This ring's registered-file table, registered on first use; the kernel's refusal
    /// (remembered: it is asked once).
    fn file_table(&mut self) -> io::Result<&mut super::file_table::FileTable> {
        let (ring, users) = (&self.ring, self.user_files);
        let files = self.files.get_or_insert_with(|| {
            super::file_table::FileTable::register(ring, users).map_err(|e| {
                tracing::info!(error = %e, "no registered-file table: plain fds only");
                (e.kind(), e.raw_os_error())
            })
        });
        match files {
            Ok(t) => Ok(t),
            Err((_, Some(errno))) => Err(io::Error::from_raw_os_error(*errno)),
            Err((kind, None)) => Err((*kind).into()),
        }
    }

    /// Registers this ring's file table for native fd passing (once); whether fds can pass.
    pub(crate) fn enable_fd_passing(&mut self) -> bool {
        self.file_table().is_ok_and(|t| t.passes_fds())
    }

    /// Whether the file table is registered.
    pub(crate) fn has_file_table(&self) -> bool {
        matches!(self.files, Some(Ok(_)))
    }

    /// Puts `fd` into a free user slot of the file table (`Ring::register_file`).
    pub(crate) fn register_user_file(&mut self, fd: RawFd) -> io::Result<u32> {
        self.file_table()?;
        match &mut self.files {
            Some(Ok(t)) => t.add_user(&self.ring, fd),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Puts `fd` into a staging slot of the file table, for `OpKind::MsgRingFd`.
    pub(crate) fn stage_fd(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
        if !self.enable_fd_passing() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        match &mut self.files {
            Some(Ok(t)) => t.stage(&self.ring, std::os::fd::AsRawFd::as_raw_fd(&fd)),
            _ => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    /// Empties file-table `slot`: a staged fd that was sent, or an arrival now installed.
    pub(crate) fn release_file(&mut self, slot: u32) {
        if let Some(Ok(t)) = &mut self.files {
            t.release(&self.ring, slot);
        }
    }

    /// Doorbell completions (OP_MSG_RING from another ring) reaped since the last call.
    /// Registers `pool`'s buffers (`IORING_REGISTER_BUFFERS`); a ring has one registration.
    pub(crate) fn register_buffers(
        &mut self,
        pool: &Rc<crate::buf::FixedShared>,
    ) -> io::Result<()> {
        if self.fixed.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this ring already has registered buffers (one pool per ring)",
            ));
        }
        let iovecs = pool.iovecs();
        // SAFETY: every iovec lies in the pool's allocation, which `self.fixed` keeps alive
        // until the ring's fd is closed (the registration ends with it) or leaks it with the ring.
        unsafe { self.ring.submitter().register_buffers(&iovecs)? };
        self.fixed = Some(pool.clone());
        Ok(())
    }

    /// Whether `pool` is the one registered with this ring (its indices mean its buffers).
    pub(crate) fn has_buffers(&self, pool: &Rc<crate::buf::FixedShared>) -> bool {
        self.fixed.as_ref().is_some_and(|p| Rc::ptr_eq(p, pool))
    }

    pub(crate) fn take_doorbells(&mut self) -> u32 {
        std::mem::take(&mut self.doorbells)
    }

    /// Registers the ring fd for this thread (Linux 5.18+) and uses it for every enter;
    /// returns its index.
    pub(crate) fn register_ring_fd(&mut self) -> io::Result<u32> {
        if let Some(i) = self.ring_index {
            return Ok(i);
        }
        #[cfg(feature = "fault-injection")]
        if let Some(errno) = self.refuse_ring_fd {
            return Err(io::Error::from_raw_os_error(errno));
        }
        use std::os::fd::AsRawFd;
        let i = super::ring_fd::register(self.ring.as_raw_fd())?;
        self.ring_index = Some(i);
        Ok(i)
    }
}

impl Drop for IoUringBackend {
    fn drop(&mut self) {
        if let Some(b) = self.buf_ring.take() {
            b.release(&self.ring, self.leak);
        }
        // Release passed fds nobody installed now, not when the last RingHandle (which keeps
        // the ring open as a MSG_RING target) goes; later senders then fall back.
        if let Some(Ok(_)) = self.files.take()
            && !self.leak
        {
            let _ = self.ring.submitter().unregister_files();
        }
        if self.leak {
            // Ops may still be in flight on these buffers: the memory must outlive them.
            std::mem::forget(self.fixed.take());
        } else if self.fixed.take().is_some() {
            // Drained: no op uses them. Unregister now, as a `RingHandle` may keep the ring
            // fd (and so the registration) open after the memory goes.
            let _ = self.ring.submitter().unregister_buffers();
        }
        // The registration holds a reference to the ring: release it before the ring closes.
        if let Some(index) = self.ring_index.take() {
            use std::os::fd::AsRawFd;
            if let Err(e) = super::ring_fd::unregister(self.ring.as_raw_fd(), index) {
                tracing::warn!(error = %e, "unregistering the ring fd failed");
            }
        }
    }
}

#[inline(always)]
fn build(op: OpKind) -> squeue::Entry {
    match op {
        OpKind::Nop => opcode::Nop::new().build(),
        OpKind::Read {
            fd,
            buf,
            len,
            offset,
        } => opcode::Read::new(types::Fd(fd), buf, len)
            .offset(offset)
            .build(),
        OpKind::ReadFixed {
            fd,
            buf,
            len,
            offset,
            index,
        } => opcode::ReadFixed::new(types::Fd(fd), buf, len, index)
            .offset(offset)
            .build(),
        OpKind::WriteFixed {
            fd,
            buf,
            len,
            offset,
            index,
        } => opcode::WriteFixed::new(types::Fd(fd), buf, len, index)
            .offset(offset)
            .build(),
        OpKind::Write {
            fd,
            buf,
            len,
            offset,
        } => opcode::Write::new(types::Fd(fd), buf, len)
            .offset(offset)
            .build(),
        // A registered file: `types::Fixed` names table slot `slot` (the crate sets
        // IOSQE_FIXED_FILE); `fd` is only for the syscall path.
        OpKind::ReadSlot {
            slot,
            buf,
            len,
            offset,
            ..
        } => opcode::Read::new(types::Fixed(slot), buf, len)
            .offset(offset)
            .build(),
        OpKind::WriteSlot {
            slot,
            buf,
            len,
            offset,
            ..
        } => opcode::Write::new(types::Fixed(slot), buf, len)
            .offset(offset)
            .build(),
        OpKind::SendSlot {
            slot,
            buf,
            len,
            flags,
            ..
        } => opcode::Send::new(types::Fixed(slot), buf, len)
            .flags(flags | libc::MSG_NOSIGNAL)
            .build(),
        OpKind::RecvSlot {
            slot,
            buf,
            len,
            flags,
            ..
        } => opcode::Recv::new(types::Fixed(slot), buf, len)
            .flags(flags)
            .build(),
        OpKind::FsyncSlot { slot, datasync, .. } => {
            let flags = if datasync {
                types::FsyncFlags::DATASYNC
            } else {
                types::FsyncFlags::empty()
            };
            opcode::Fsync::new(types::Fixed(slot)).flags(flags).build()
        }
        OpKind::Readv {
            fd,
            iov,
            count,
            offset,
        } => opcode::Readv::new(types::Fd(fd), iov, count)
            .offset(offset)
            .build(),
        OpKind::Writev {
            fd,
            iov,
            count,
            offset,
        } => opcode::Writev::new(types::Fd(fd), iov, count)
            .offset(offset)
            .build(),
        OpKind::Fsync { fd, datasync } => {
            let flags = if datasync {
                types::FsyncFlags::DATASYNC
            } else {
                types::FsyncFlags::empty()
            };
            opcode::Fsync::new(types::Fd(fd)).flags(flags).build()
        }
        OpKind::OpenAt {
            dirfd,
            path,
            flags,
            mode,
        } => opcode::OpenAt::new(types::Fd(dirfd), path)
            .flags(flags)
            .mode(mode)
            .build(),
        OpKind::Close { fd } => opcode::Close::new(types::Fd(fd)).build(),
        OpKind::Statx {
            fd,
            path,
            flags,
            mask,
            buf,
        } => opcode::Statx::new(types::Fd(fd), path, buf.cast())
            .flags(flags)
            .mask(mask)
            .build(),
        OpKind::Accept { fd, addr, len } => opcode::Accept::new(types::Fd(fd), addr, len)
            .flags(libc::SOCK_CLOEXEC)
            .build(),
        OpKind::Connect { fd, addr, len } => opcode::Connect::new(types::Fd(fd), addr, len).build(),
        OpKind::Send {
            fd,
            buf,
            len,
            flags,
        } => opcode::Send::new(types::Fd(fd), buf, len)
            .flags(flags | libc::MSG_NOSIGNAL)
            .build(),
        OpKind::Recv {
            fd,
            buf,
            len,
            flags,
        } => opcode::Recv::new(types::Fd(fd), buf, len)
            .flags(flags)
            .build(),
        OpKind::SendZc {
            fd,
            buf,
            len,
            flags,
        } => opcode::SendZc::new(types::Fd(fd), buf, len)
            .flags(flags | libc::MSG_NOSIGNAL)
            .build(),
        OpKind::SendMsg { fd, msg, flags } => opcode::SendMsg::new(types::Fd(fd), msg)
            .flags((flags | libc::MSG_NOSIGNAL) as u32)
            .build(),
        OpKind::RecvMsg { fd, msg, flags } => opcode::RecvMsg::new(types::Fd(fd), msg)
            .flags((flags | libc::MSG_CMSG_CLOEXEC) as u32)
            .build(),
        OpKind::Socket {
            domain,
            ty,
            protocol,
        } => opcode::Socket::new(domain, ty, protocol).build(),
        OpKind::Bind { fd, addr, len } => opcode::Bind::new(types::Fd(fd), addr, len).build(),
        OpKind::Listen { fd, backlog } => opcode::Listen::new(types::Fd(fd), backlog).build(),
        OpKind::AcceptMulti { fd } => opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build(),
        OpKind::RecvMulti {
            fd,
            bgid,
            bundle: false,
        } => opcode::RecvMulti::new(types::Fd(fd), bgid).build(),
        // IORING_RECVSEND_BUNDLE (6.10+): a completion may fill several buffers in ring order.
        OpKind::RecvMulti {
            fd,
            bgid,
            bundle: true,
        } => opcode::RecvMultiBundle::new(types::Fd(fd), bgid).build(),
        OpKind::RecvMsgMulti { fd, msg, bgid } => {
            opcode::RecvMsgMulti::new(types::Fd(fd), msg, bgid)
                .flags(libc::MSG_CMSG_CLOEXEC as u32)
                .build()
        }
        OpKind::RecvSelect { fd, len, bgid } => {
            opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), len)
                .buf_group(bgid)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        }
        OpKind::MsgRing { ring_fd, user_data } => {
            opcode::MsgRingData::new(types::Fd(ring_fd), 0, user_data, None).build()
        }
        OpKind::MsgRingFd {
            ring_fd,
            slot,
            user_data,
        } => opcode::MsgRingSendFd::new(
            types::Fd(ring_fd),
            types::Fixed(slot),
            types::DestinationSlot::auto_target(),
            user_data,
        )
        .build(),
        OpKind::FixedFdInstall { slot } => {
            opcode::FixedFdInstall::new(types::Fixed(slot), 0).build()
        }
        OpKind::Shutdown { fd, how } => opcode::Shutdown::new(types::Fd(fd), how).build(),
        OpKind::PollReady { fd, events } => opcode::PollAdd::new(types::Fd(fd), events).build(),
        OpKind::UnlinkAt { dirfd, path, flags } => opcode::UnlinkAt::new(types::Fd(dirfd), path)
            .flags(flags)
            .build(),
        OpKind::RenameAt {
            olddirfd,
            oldpath,
            newdirfd,
            newpath,
            flags,
        } => opcode::RenameAt::new(types::Fd(olddirfd), oldpath, types::Fd(newdirfd), newpath)
            .flags(flags)
            .build(),
        OpKind::MkdirAt { dirfd, path, mode } => opcode::MkDirAt::new(types::Fd(dirfd), path)
            .mode(mode)
            .build(),
        OpKind::SymlinkAt {
            target,
            newdirfd,
            linkpath,
        } => opcode::SymlinkAt::new(types::Fd(newdirfd), target, linkpath).build(),
        OpKind::LinkAt {
            olddirfd,
            oldpath,
            newdirfd,
            newpath,
            flags,
        } => opcode::LinkAt::new(types::Fd(olddirfd), oldpath, types::Fd(newdirfd), newpath)
            .flags(flags)
            .build(),
        OpKind::Fallocate {
            fd,
            mode,
            offset,
            len,
        } => opcode::Fallocate::new(types::Fd(fd), len)
            .offset(offset)
            .mode(mode)
            .build(),
        OpKind::Ftruncate { fd, len } => opcode::Ftruncate::new(types::Fd(fd), len).build(),
        OpKind::Fadvise {
            fd,
            offset,
            len,
            advice,
        } => opcode::Fadvise::new(types::Fd(fd), len as libc::off_t, advice)
            .offset(offset)
            .build(),
        OpKind::SyncFileRange {
            fd,
            offset,
            len,
            flags,
        } => opcode::SyncFileRange::new(types::Fd(fd), len)
            .offset(offset)
            .flags(flags)
            .build(),
        // Plain fds (never SPLICE_F_FD_IN_FIXED); `CURRENT_POS` is the kernel's "no offset", -1.
        OpKind::Splice {
            fd_in,
            off_in,
            fd_out,
            off_out,
            len,
            flags,
        } => opcode::Splice::new(
            types::Fd(fd_in),
            off_in as i64,
            types::Fd(fd_out),
            off_out as i64,
            len,
        )
        .flags(flags)
        .build(),
        OpKind::Tee {
            fd_in,
            fd_out,
            len,
            flags,
        } => opcode::Tee::new(types::Fd(fd_in), types::Fd(fd_out), len)
            .flags(flags)
            .build(),
        OpKind::Timeout { ts, .. } => opcode::Timeout::new(ts).build(),
    }
}

/// Whether `fd` is a pipe or a socket: bytes arrive on it (a regular file's are there).
#[cold]
fn reads_arrivals(fd: RawFd) -> bool {
    crate::kernel::sys::fd_kind(fd)
        .is_ok_and(|(mode, _)| mode == libc::S_IFIFO || mode == libc::S_IFSOCK)
}

impl Backend for IoUringBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }

    #[inline]
    unsafe fn push(
        &mut self,
        user_data: u64,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
    ) -> Result<(), Full> {
        if !self.supported.contains(op.opcode()) {
            // SAFETY: forwarded from the caller.
            return unsafe { self.run_fallback(user_data, op, timeout) };
        }
        if let OpKind::Splice { fd_in, .. } | OpKind::Tee { fd_in, .. } = op
            && reads_arrivals(fd_in)
        {
            // Natively the kernel runs a splice out of a pipe or socket on a worker thread,
            // whose move can beat the cancel of a dropped op to bytes that arrive after the
            // drop. Parked on readiness (a poll SQE, then a non-blocking splice on this
            // thread), a dropped one is a cancelled poll and moves nothing.
            // SAFETY: forwarded from the caller.
            return unsafe { self.run_fallback(user_data, op, timeout) };
        }
        let entry = build(op).user_data(user_data);
        if matches!(op, OpKind::Splice { .. } | OpKind::Tee { .. }) {
            self.splicing.insert(user_data);
            if let Some(t) = timeout {
                // A linked timeout did not end a splice blocked on a worker thread (seen on
                // 6.18: the op waited on, empty pipe and all), while an explicit cancel does.
                // So a plain timer, submitted with the op, and on expiry the cancel (`reap`).
                let timer = opcode::Timeout::new(&t.ts)
                    .build()
                    .user_data(SPLICE_TIMER_TAG | user_data);
                // SAFETY: the caller keeps `t` valid until the op's completion; the timer is
                // submitted with the op, and the kernel reads `ts` then.
                return unsafe { self.push_entries(&[entry, timer]) };
            }
        }
        match timeout {
            // SAFETY: the caller keeps `op`'s pointers valid until the completion.
            None => unsafe { self.ring.submission().push(&entry) }.map_err(|_| Full),
            Some(t) => {
                let lt = opcode::LinkTimeout::new(&t.ts)
                    .build()
                    .user_data(LINK_TAG | user_data);
                // push_multiple is all-or-nothing, so the link is never split across submits.
                // SAFETY: the caller keeps `op`'s pointers and `t` valid until the completion.
                unsafe { self.push_entries(&[entry.flags(squeue::Flags::IO_LINK), lt]) }
            }
        }
    }

    fn cancel(&mut self, user_data: u64) -> Result<(), Full> {
        if let Some(o) = self.offload.as_mut()
            && o.holds(user_data)
        {
            // Only a queued job stops; its -ECANCELED arrives through the pool.
            o.cancel(user_data);
            return Ok(());
        }
        if let Some(&token) = self.park_of.get(&user_data) {
            let e = opcode::AsyncCancel::new(PARK_TAG | token)
                .build()
                .user_data(CANCEL_TOKEN);
            // SAFETY: a cancel carries no pointers.
            unsafe { self.push_entries(&[e]) }?;
            // The poll's completion ends the op (not earlier: its linked timeout may not be
            // submitted yet, and the op's memory holds the timespec it reads).
            if let Some(p) = self.parked.get_mut(&token) {
                p.cancelled = true;
            }
            return Ok(());
        }
        // The op may still be in the SQ, unsubmitted: checked before the cancel joins it.
        let queued = !self.ring.submission().is_empty();
        let e = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(CANCEL_TOKEN);
        // SAFETY: a cancel carries no pointers.
        unsafe { self.push_entries(&[e]) }?;
        // The cancel is submitted now, not at the next turn, where waiting would let a dropped
        // receive or accept take data that arrives after its drop (a datagram, a connection)
        // into an orphan and lose it; once the cancel is in, that data stays in the socket:
        // - an op still in the SQ would be submitted with its cancel, run first, and find the
        //   data there;
        // - without DEFER_TASKRUN the kernel runs a ring's completion work when its thread
        //   returns from *any* system call, before the next turn. (With it, the work waits for
        //   the ring's own enter, which submits the cancel first.)
        // And a splice blocked on a worker thread holds its pipe's lock, which closing either
        // end of the pipe waits for: the caller may do that right after this (a dropped
        // future's pipe); submitting now interrupts the worker first.
        // An enter per dropped in-flight op, then. If it fails (a CQ overflow, EAGAIN), the
        // driver reaps and submits at once (`take_unsent_cancel`).
        if queued || !self.report.defer_taskrun || self.splicing.contains(&user_data) {
            self.cancel_unsent = self.enter(0).is_err();
        }
        Ok(())
    }

    fn recancel(&mut self, user_data: u64) -> Result<(), Full> {
        let offloaded = self.offload.as_ref().is_some_and(|o| o.holds(user_data));
        if offloaded || self.park_of.contains_key(&user_data) {
            return self.cancel(user_data);
        }
        let e = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(RECANCEL_TAG | user_data);
        // SAFETY: a cancel carries no pointers.
        unsafe { self.push_entries(&[e]) }
    }

    fn leak_on_drop(&mut self) {
        self.leak = true;
    }

    fn offers(&self, feature: crate::Feature) -> bool {
        self.detected.contains(feature) && !crate::features::is_demoted(feature)
    }

    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        if !self.wake_armed {
            self.arm_wake();
        }
        // Completions of fallback ops are waiting: never block on the kernel for more.
        let wait = wait
            && self.ready.is_empty()
            && !self.offload.as_ref().is_some_and(|o| o.has_results());
        if !wait {
            let (sq_empty, busy) = {
                let sq = self.ring.submission();
                (sq.is_empty(), sq.taskrun() || sq.cq_overflow())
            };
            // With DEFER_TASKRUN completions only appear after an enter with GETEVENTS; the
            // kernel flags pending work in the SQ (TASKRUN_FLAG), so an idle turn costs no syscall.
            if sq_empty && !busy {
                return Ok(());
            }
            return self.enter(0);
        }
        if !self.ring.completion().is_empty() {
            return self.enter(0);
        }
        if let Some(t) = timeout {
            self.timer = t.into();
            let e = opcode::Timeout::new(&self.timer)
                .build()
                .user_data(TIMER_TOKEN);
            // SAFETY: `self.timer` lives as long as the ring (and is only rewritten by a later
            // turn, after this timeout was submitted, which is when the kernel reads it).
            if unsafe { self.push_entries(&[e]) }.is_err() {
                return self.enter(0);
            }
        }
        self.enter(1)
    }

    #[inline]
    fn reap(&mut self, sink: &mut impl FnMut(u64, i32, u32)) {
        if !self.ready.is_empty() {
            for (ud, res) in self.ready.drain(..) {
                sink(ud, res, 0);
            }
        }
        if self.offload.is_some() {
            self.drain_offload(sink);
        }
        let mut rearm = false;
        let mut woken = Vec::new();
        let (mut expired, mut timers_done) = (Vec::new(), Vec::new());
        for cqe in self.ring.completion() {
            let ud = cqe.user_data();
            let mut flags = cqe.flags();
            if flags & 1 != 0
                && let Some(b) = self.buf_ring.as_mut()
            {
                // IORING_CQE_F_BUFFER: the kernel handed us this provided buffer (and, for a
                // bundle, the ones after it in the ring that the result's bytes fill), or a
                // part of it; the flags carry on where that part starts.
                let bid = (flags >> 16) as u16;
                let more = io_uring::cqueue::buffer_more(flags);
                let start = b.completed(bid, cqe.result(), more);
                flags = cqe_flags::pack_buffer(flags, bid, start);
            }
            if ud >= RESERVED_USER_DATA {
                if ud == WAKE_TOKEN {
                    rearm = true;
                } else if ud == MSG_TOKEN {
                    self.doorbells += 1;
                }
            } else if ud & URING_TAGS == 0 {
                let mut res = cqe.result();
                if !self.splicing.is_empty() && self.splicing.remove(&ud) {
                    timers_done.push(ud);
                    // A cancelled splice whose worker was interrupted reports the kernel's
                    // internal ERESTARTSYS (512; seen on 6.18): what a syscall sees is EINTR.
                    if res == -512 {
                        res = -libc::EINTR;
                    }
                }
                sink(ud, res, flags);
            } else if ud & PARK_TAG != 0 {
                woken.push((ud & !PARK_TAG, cqe.result()));
            } else if ud & SPLICE_TIMER_TAG != 0 {
                let op = ud & !SPLICE_TIMER_TAG;
                if cqe.result() == -libc::ETIME && self.splicing.contains(&op) {
                    expired.push(op);
                }
            } else if let Some(o) = self.offload.as_mut() {
                // POOL_TIMER: a pooled op's deadline.
                o.timer_done(ud & !POOL_TIMER, cqe.result());
            }
        }
        if rearm {
            super::sys::drain_eventfd(self.wake_fd);
            self.wake_armed = false;
            self.arm_wake();
        }
        for ud in expired {
            // Its timer fired: cancel it (it completes with -ECANCELED or -EINTR, which the
            // driver reports as TimedOut). A full SQ is retried by the driver's own cancels.
            let _ = self.cancel(ud);
        }
        for ud in timers_done {
            // The op is done: disarm its timer (a spare one, were the op's user_data reused,
            // would cancel the next op). Nothing to do if it fired or is not armed.
            let e = opcode::TimeoutRemove::new(SPLICE_TIMER_TAG | ud)
                .build()
                .user_data(CANCEL_TOKEN);
            // SAFETY: a timeout removal carries no pointers.
            let _ = unsafe { self.push_entries(&[e]) };
        }
        if !woken.is_empty() {
            for (token, res) in woken {
                self.unpark(token, res);
            }
            for (ud, res) in self.ready.drain(..) {
                sink(ud, res, 0);
            }
        }
    }

    fn wants_nonblocking(&self) -> bool {
        false
    }

    fn pollable_fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.ring.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A blocking op whose opcode the probe lacks runs on the blocking pool, not on the ring's
    /// thread: a FIFO open that waits for a writer does not hold up a NOP pushed after it; a
    /// second one queued behind it (one pool thread) is stopped by its deadline timer; one
    /// that finishes first has its timer removed, and no timer completion reaches the sink.
    #[test]
    #[cfg_attr(miri, ignore = "io_uring syscalls")]
    fn blocking_ops_the_probe_lacks_run_on_the_pool() {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let wake = crate::kernel::sys::eventfd().unwrap();
        let open = OpKind::OpenAt {
            dirfd: 0,
            path: std::ptr::null(),
            flags: 0,
            mode: 0,
        }
        .opcode();
        let all_but: Vec<u8> = (0..=u8::MAX).filter(|&o| o != open).collect();
        let cfg = SaferRingConfig::default().blocking_threads(1);
        let mut b = match IoUringBackend::new(
            &cfg,
            wake.as_raw_fd(),
            crate::AvailableFeatures::empty(),
            Some(&all_but),
        ) {
            Ok(b) => b,
            Err(e) => return eprintln!("skipped: no io_uring here ({e})"),
        };
        let dir = std::env::temp_dir().join(format!("safer-ring-offload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let fifo_c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo_c.as_ptr(), 0o600) }, 0);
        let null = CString::new("/dev/null").unwrap();
        let open_at = |path: &CString| OpKind::OpenAt {
            dirfd: libc::AT_FDCWD,
            path: path.as_ptr(),
            flags: libc::O_RDONLY | libc::O_CLOEXEC,
            mode: 0,
        };
        let short = TimeoutSpec::new(Duration::from_millis(50));
        let long = TimeoutSpec::new(Duration::from_secs(30));
        // SAFETY: the paths and timeouts outlive every completion reaped below (the loop waits
        // for all four).
        unsafe {
            b.push(1, open_at(&fifo_c), None).unwrap();
            b.push(2, open_at(&fifo_c), Some(&short)).unwrap();
            b.push(3, OpKind::Nop, None).unwrap();
        }
        let mut got = Vec::new();
        // A hang, not speed.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let reap_until = |b: &mut IoUringBackend, got: &mut Vec<(u64, i32)>, n: usize| {
            while got.len() < n {
                assert!(std::time::Instant::now() < deadline, "stuck with {got:?}");
                b.turn(true, Some(Duration::from_millis(100))).unwrap();
                b.reap(&mut |ud, res, _| got.push((ud, res)));
            }
        };
        reap_until(&mut b, &mut got, 2);
        got.sort();
        assert_eq!(got, [(2, -libc::ECANCELED), (3, 0)], "op 1 still blocks");
        // A writer lets the first open finish.
        let writer = std::thread::spawn({
            let fifo = fifo.clone();
            move || std::fs::OpenOptions::new().write(true).open(fifo).unwrap()
        });
        reap_until(&mut b, &mut got, 3);
        let (ud, fd) = got[2];
        assert!(ud == 1 && fd >= 0, "{got:?}");
        // SAFETY: the open made `fd` and nothing else owns it.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        drop(writer.join().unwrap());
        // Finishes long before its deadline: the timer is removed, its completion consumed.
        // SAFETY: as above.
        unsafe { b.push(4, open_at(&null), Some(&long)) }.unwrap();
        reap_until(&mut b, &mut got, 4);
        let (ud, fd) = got[3];
        assert!(ud == 4 && fd >= 0, "{got:?}");
        // SAFETY: as above.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        for _ in 0..20 {
            b.turn(true, Some(Duration::from_millis(10))).unwrap();
            b.reap(&mut |ud, res, _| got.push((ud, res)));
        }
        assert_eq!(got.len(), 4, "only the ops' own completions: {got:?}");
        assert!(b.offload.as_ref().is_some_and(|o| o.timers_armed() == 0));
        assert!(!b.offload.as_ref().unwrap().holds(1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An op whose opcode the probe lacks never becomes an SQE: it runs as its syscall at push
    /// time and completes through `reap` like any op, with the syscall's result.
    #[test]
    #[cfg_attr(miri, ignore = "io_uring syscalls")]
    fn ops_the_probe_lacks_run_as_syscalls() {
        let wake = crate::kernel::sys::eventfd().unwrap();
        let shutdown = OpKind::Shutdown { fd: 0, how: 0 }.opcode();
        let all_but: Vec<u8> = (0..=u8::MAX).filter(|&o| o != shutdown).collect();
        let cfg = SaferRingConfig::default();
        let mut b = match IoUringBackend::new(
            &cfg,
            wake.as_raw_fd(),
            crate::AvailableFeatures::empty(),
            Some(&all_but),
        ) {
            Ok(b) => b,
            Err(e) => return eprintln!("skipped: no io_uring here ({e})"),
        };
        let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
        let ops = [
            (
                1,
                OpKind::Shutdown {
                    fd: x.as_raw_fd(),
                    how: libc::SHUT_WR,
                },
            ),
            (
                2,
                OpKind::Shutdown {
                    fd: -1,
                    how: libc::SHUT_WR,
                },
            ),
            (3, OpKind::Nop),
        ];
        for (ud, op) in ops {
            // SAFETY: no pointers; the sockets outlive the backend's use of them.
            unsafe { b.push(ud, op, None) }.unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 3 {
            b.turn(true, Some(Duration::from_secs(5))).unwrap();
            b.reap(&mut |ud, res, _| got.push((ud, res)));
        }
        got.sort();
        assert_eq!(got, [(1, 0), (2, -libc::EBADF), (3, 0)]);
        // The shutdown happened: the peer reads end of stream.
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &y, &mut buf).unwrap(), 0);
        assert!(b.logged.contains(shutdown) && !b.logged.contains(0));
    }
}
