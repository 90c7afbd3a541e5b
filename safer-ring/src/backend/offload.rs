//! The blocking pool behind an io_uring ring: an op whose opcode this kernel lacks (or the
//! configuration turns off) and that may block (open, statx, fsync, the path and space ops:
//! `pool::offloads`) runs on the pool's threads, as on the epoll backend, instead of stalling
//! every task of the ring while its syscall runs on the ring's thread.
//!
//! Its result arrives through the pool's completion list, which `reap` drains; the pool writes
//! the ring's wake eventfd, which the ring always has a poll armed on, so a `turn` blocked in
//! `io_uring_enter` returns.
//!
//! **Timeouts.** A pooled op cannot carry a linked timeout (there is no SQE to link to). Its
//! deadline is a plain kernel timer instead (`IORING_OP_TIMEOUT`, `user_data` tagged with
//! [`POOL_TIMER`]); when it fires and the op is still queued, the op is cancelled as the epoll
//! backend does: a queued job completes with `-ECANCELED` (reported as a timeout), a running
//! syscall completes normally. The timer's timespec is this module's own (the kernel reads it
//! when the SQE is submitted, which may come after the op has finished and its memory gone)
//! and lives until the timer's completion; a finished op's timer is removed.

use std::collections::{HashMap, HashSet};

use io_uring::{opcode, types};

use super::OpKind;
use super::pool::{Pool, PoolConfig, run_blocking};
use crate::kernel::user_data::POOL_TIMER;

pub(super) struct Offload {
    pool: Pool,
    /// Ops on the pool; their results come through `drain`.
    pooled: HashSet<u64>,
    /// The timespec of each armed deadline timer, until its completion arrives.
    timers: HashMap<u64, Box<types::Timespec>>,
}

impl Offload {
    pub(super) fn new(wake_fd: std::os::fd::RawFd, cfg: PoolConfig) -> Offload {
        Offload {
            pool: Pool::new(wake_fd, cfg, run_blocking),
            pooled: HashSet::new(),
            timers: HashMap::new(),
        }
    }

    /// The timer SQE bounding pooled op `ud` by `dur`; its timespec is kept until the timer's
    /// completion (see the module comment).
    pub(super) fn timer(&mut self, ud: u64, dur: std::time::Duration) -> io_uring::squeue::Entry {
        let ts = Box::new(types::Timespec::from(dur));
        let e = opcode::Timeout::new(&*ts)
            .build()
            .user_data(POOL_TIMER | ud);
        // Moving the box moves no timespec: the SQE's pointer stays good.
        self.timers.insert(ud, ts);
        e
    }

    /// Forgets the timer of `ud` whose SQE could not be pushed.
    pub(super) fn unpushed_timer(&mut self, ud: u64) {
        self.timers.remove(&ud);
    }

    /// Hands `op` to the pool. `Err(errno)`: nothing queued, the op completes with `-errno`.
    ///
    /// # Safety
    /// `Pool::submit`'s contract: the op's memory and fds stay valid until its result has been
    /// drained (or forever, if the ring leaks its ops).
    pub(super) unsafe fn submit(&mut self, ud: u64, op: OpKind) -> Result<(), i32> {
        // SAFETY: forwarded from the caller.
        unsafe { self.pool.submit(ud, op) }?;
        self.pooled.insert(ud);
        Ok(())
    }

    /// Deadline timers whose completion has not arrived.
    #[cfg(test)]
    pub(super) fn timers_armed(&self) -> usize {
        self.timers.len()
    }

    /// Whether `ud` is on the pool.
    pub(super) fn holds(&self, ud: u64) -> bool {
        self.pooled.contains(&ud)
    }

    /// Cancels `ud` if it is still queued (it then completes with `-ECANCELED`).
    pub(super) fn cancel(&mut self, ud: u64) {
        self.pool.cancel(ud);
    }

    /// Whether results wait to be drained (a `turn` must not block then).
    pub(super) fn has_results(&self) -> bool {
        !self.pooled.is_empty() && self.pool.has_completions()
    }

    /// Hands the pool's results to `sink`; returns the ops whose deadline timer is still armed
    /// into `disarm` (the caller removes those timers).
    pub(super) fn drain(&mut self, sink: &mut dyn FnMut(u64, i32, u32), disarm: &mut Vec<u64>) {
        if self.pooled.is_empty() {
            return;
        }
        let Offload {
            pool,
            pooled,
            timers,
        } = self;
        pool.drain(|ud, res| {
            pooled.remove(&ud);
            if timers.contains_key(&ud) {
                disarm.push(ud);
            }
            sink(ud, res, 0);
        });
    }

    /// A deadline timer's completion (`ud` without its tag): frees its timespec and, if it
    /// fired with the op still on the pool, cancels the op.
    pub(super) fn timer_done(&mut self, ud: u64, res: i32) {
        self.timers.remove(&ud);
        if res == -libc::ETIME && self.pooled.contains(&ud) {
            self.pool.cancel(ud);
        }
    }
}
