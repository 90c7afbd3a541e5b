//! io_uring backend on the `io-uring` crate.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

use super::{Backend, Full, OpKind, RESERVED_USER_DATA, TimeoutSpec};
use crate::config::{BackendKind, SaferRingConfig};
use crate::enhanced::EnterCounts;

const CANCEL_TOKEN: u64 = RESERVED_USER_DATA;
const WAKE_TOKEN: u64 = RESERVED_USER_DATA + 2;
const TIMER_TOKEN: u64 = RESERVED_USER_DATA + 3;

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
    /// The file table for native fd passing; `Err(())` once registering it failed.
    files: Option<Result<super::file_table::FileTable, ()>>,
    leak: bool,
    /// What the detection this ring was built from found (see `offers`).
    detected: crate::AvailableFeatures,
    /// Enter calls by path, shared with the ring's stats (`Feature::RegisteredRingFd`).
    enters: Rc<EnterCounts>,
}

impl IoUringBackend {
    /// Creates a ring with the fastest setup flags the kernel accepts: each flag the kernel
    /// rejects with EINVAL is dropped (newest first) and setup retried.
    pub(crate) fn new(
        cfg: &SaferRingConfig,
        wake_fd: RawFd,
        detected: crate::AvailableFeatures,
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
            leak: false,
            detected,
            enters: Rc::default(),
        };
        backend.arm_wake();
        Ok(backend)
    }

    pub(crate) fn report(&self) -> SetupReport {
        self.report
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
        // The registration holds a reference to the ring: release it before the ring closes.
        if let Some(index) = self.ring_index.take() {
            use std::os::fd::AsRawFd;
            if let Err(e) = super::ring_fd::unregister(self.ring.as_raw_fd(), index) {
                tracing::warn!(error = %e, "unregistering the ring fd failed");
            }
        }
    }
}

pub(crate) fn sys_features(p: &io_uring::Parameters) -> u32 {
    // The crate exposes features as predicates; rebuild the kernel's bit set (IORING_FEAT_*)
    // from those it makes public. REG_REG_RING (bit 13) and RW_ATTR (bit 16) are not exposed.
    let bits = [
        (0, p.is_feature_single_mmap()),
        (1, p.is_feature_nodrop()),
        (2, p.is_feature_submit_stable()),
        (3, p.is_feature_rw_cur_pos()),
        (4, p.is_feature_cur_personality()),
        (5, p.is_feature_fast_poll()),
        (6, p.is_feature_poll_32bits()),
        (7, p.is_feature_sqpoll_nonfixed()),
        (8, p.is_feature_ext_arg()),
        (9, p.is_feature_native_workers()),
        (10, p.is_feature_resource_tagging()),
        (11, p.is_feature_skip_cqe_on_success()),
        (12, p.is_feature_linked_file()),
        (14, p.is_feature_recvsend_bundle()),
        (15, p.is_feature_min_timeout()),
        (17, p.is_feature_no_iowait()),
    ];
    bits.iter()
        .fold(0, |acc, &(i, b)| acc | (u32::from(b) << i))
}

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
        OpKind::Write {
            fd,
            buf,
            len,
            offset,
        } => opcode::Write::new(types::Fd(fd), buf, len)
            .offset(offset)
            .build(),
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
        OpKind::AcceptMulti { fd } => opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build(),
        OpKind::RecvMulti { fd, bgid } => opcode::RecvMulti::new(types::Fd(fd), bgid).build(),
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
        OpKind::Timeout { ts, .. } => opcode::Timeout::new(ts).build(),
    }
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
        let entry = build(op).user_data(user_data);
        match timeout {
            // SAFETY: the caller keeps `op`'s pointers valid until the completion.
            None => unsafe { self.ring.submission().push(&entry) }.map_err(|_| Full),
            Some(t) => {
                let lt = opcode::LinkTimeout::new(&t.ts)
                    .build()
                    .user_data(super::LINK_TAG | user_data);
                // push_multiple is all-or-nothing, so the link is never split across submits.
                // SAFETY: the caller keeps `op`'s pointers and `t` valid until the completion.
                unsafe { self.push_entries(&[entry.flags(squeue::Flags::IO_LINK), lt]) }
            }
        }
    }

    fn cancel(&mut self, user_data: u64) -> Result<(), Full> {
        let e = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(CANCEL_TOKEN);
        // SAFETY: a cancel carries no pointers.
        unsafe { self.push_entries(&[e]) }
    }

    fn buffer_group(&mut self) -> Option<(u16, u32)> {
        if self.buf_ring.is_none() && !self.buf_ring_failed {
            // 64 buffers of 16 KiB: 1 MiB per ring, shared by every receive in flight.
            match super::buf_ring::BufRing::new(&self.ring, 0, 64, 16 * 1024) {
                Ok(b) => self.buf_ring = Some(b),
                Err(e) => {
                    tracing::info!(error = %e, "provided-buffer ring unavailable; plain recv");
                    self.buf_ring_failed = true;
                }
            }
        }
        self.buf_ring.as_ref().map(|b| (b.bgid, b.buf_size()))
    }

    fn chunk(&self, bid: u16, from: usize, to: usize) -> &[u8] {
        self.buf_ring
            .as_ref()
            .map_or(&[], |b| b.chunk(bid, from, to))
    }

    fn recycle_buffer(&mut self, bid: u16) {
        if let Some(b) = self.buf_ring.as_mut() {
            b.recycle(bid);
        }
    }

    fn leak_on_drop(&mut self) {
        self.leak = true;
    }

    fn enable_fd_passing(&mut self) -> bool {
        let ring = &self.ring;
        let files = self.files.get_or_insert_with(|| {
            super::file_table::FileTable::register(ring).map_err(|e| {
                tracing::info!(error = %e, "no registered-file table; fds travel in the queue");
            })
        });
        files.is_ok()
    }

    fn stage_fd(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
        if !self.enable_fd_passing() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        match &mut self.files {
            Some(Ok(t)) => t.stage(&self.ring, std::os::fd::AsRawFd::as_raw_fd(&fd)),
            _ => unreachable!("enabled just above"),
        }
    }

    fn release_file(&mut self, slot: u32) {
        if let Some(Ok(t)) = &mut self.files {
            t.release(&self.ring, slot);
        }
    }

    fn offers(&self, feature: crate::Feature) -> bool {
        self.detected.contains(feature) && !crate::features::is_demoted(feature)
    }

    fn take_doorbells(&mut self) -> u32 {
        std::mem::take(&mut self.doorbells)
    }

    fn register_ring_fd(&mut self) -> io::Result<u32> {
        if let Some(i) = self.ring_index {
            return Ok(i);
        }
        use std::os::fd::AsRawFd;
        let i = super::ring_fd::register(self.ring.as_raw_fd())?;
        self.ring_index = Some(i);
        Ok(i)
    }

    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        if !self.wake_armed {
            self.arm_wake();
        }
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
    fn reap(&mut self, sink: &mut dyn FnMut(u64, i32, u32)) {
        let mut rearm = false;
        for cqe in self.ring.completion() {
            let ud = cqe.user_data();
            if cqe.flags() & 1 != 0
                && let Some(b) = self.buf_ring.as_mut()
            {
                // IORING_CQE_F_BUFFER: the kernel handed us this provided buffer.
                b.mark_out((cqe.flags() >> 16) as u16);
            }
            if ud < RESERVED_USER_DATA {
                sink(ud, cqe.result(), cqe.flags());
            } else if ud == WAKE_TOKEN {
                rearm = true;
            } else if ud == super::MSG_TOKEN {
                self.doorbells += 1;
            }
        }
        if rearm {
            super::sys::drain_eventfd(self.wake_fd);
            self.wake_armed = false;
            self.arm_wake();
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
