//! The blocking pool: a bounded set of threads that run one ring's blocking syscalls.
//!
//! epoll cannot wait for disk I/O, and open, statx or fsync have no readiness at all: run on the
//! ring's thread, one slow call stalls every task of the ring. Such an op is queued here
//! instead; a pool thread runs its syscall and appends `(user_data, result)` to a completion
//! list that the backend drains in `reap`, writing the ring's wake eventfd whenever that list
//! stops being empty, so a `turn` blocked in the kernel returns. io_uring rings use it for
//! blocking calls whose opcode they do not push (`backend/offload.rs`).
//!
//! **Soundness.** A job holds the op's raw pointers. Its result is published only after the
//! syscall has returned, and the driver keeps the op's memory (and fds) until it has reaped
//! that result, or leaks it (a ring dropped before its `drain_timeout` ran out), so no pointer
//! outlives its memory. Nothing but the syscall runs on a pool thread: no user code, no access
//! to the driver. The wake eventfd is a duplicate owned by the pool's shared state, so a thread
//! finishing after the ring is gone still writes to that eventfd, never to a reused fd number.
//!
//! **Cancellation.** A queued job is taken off the queue and completes with `-ECANCELED`; a
//! running syscall cannot be interrupted and completes normally, whenever it returns.
//!
//! **Threads** start on demand (no idle thread waiting, fewer than `max_threads` alive) and
//! exit after `idle_timeout` without work, so an idle ring has no pool thread at all. Dropping
//! the pool discards queued jobs (they never run) and lets running ones finish by themselves:
//! threads are never joined, since a syscall may block indefinitely (a FIFO open).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::OpKind;

/// Name of every pool thread (at most 15 bytes: the kernel's `comm`).
pub(crate) const THREAD_NAME: &str = "safer-ring-pool";

/// Runs an op's syscall to completion and returns a CQE-style result (value or -errno).
///
/// # Safety
/// Every pointer in the op is valid for the access the op makes.
pub(crate) type Runner = unsafe fn(OpKind) -> i32;

/// Whether a plain-syscall backend runs `op` on the pool: the ops the table marks
/// `Exec::Pooled` (open, statx, fsync, the path and space ops).
pub(crate) fn offloads(op: &OpKind) -> bool {
    op.exec() == super::op::Exec::Pooled
}

/// The runner both backends use: the op's plain syscall, blocking as long as it takes.
///
/// # Safety
/// The op's pointers are valid (the pool's submit contract).
pub(crate) unsafe fn run_blocking(op: OpKind) -> i32 {
    use super::syscall::{Attempt, attempt};
    // SAFETY: forwarded from the caller.
    match unsafe { attempt(op) } {
        Attempt::Done(r) => r,
        // A positional op on a non-blocking device: the epoll backend parks it on readiness.
        Attempt::WouldBlock(_) | Attempt::WouldBlockOn(..) => -libc::EAGAIN,
        Attempt::InProgress => -libc::EINPROGRESS,
    }
}

/// Size and lifetime of the pool's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolConfig {
    pub(crate) max_threads: usize,
    pub(crate) idle_timeout: Duration,
}

/// A queued op. Its pointers are only dereferenced by the syscall (see `Pool::submit`).
struct Job {
    ud: u64,
    op: OpKind,
}

// SAFETY: a `Job` is plain data (an fd, raw pointers, lengths); moving it to a pool thread moves
// no ownership. The pointers are used by that thread's syscall only, under `Pool::submit`'s
// contract (the memory stays valid and unaliased until the result is reaped).
unsafe impl Send for Job {}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads alive (running a job, looking for one or waiting).
    threads: usize,
    /// Threads waiting for work that no `submit` has notified yet.
    idle: usize,
    /// Notifications sent and not yet taken by a waking thread.
    notified: usize,
    /// Threads whose syscall returned and that will look at the queue next: a job queued now
    /// is theirs, no thread needs to be started for it.
    returning: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Mutex<Vec<(u64, i32)>>,
    /// A duplicate of the ring's wake eventfd, open as long as any thread may write it.
    wake: OwnedFd,
    run: Runner,
    idle_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; a poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Publishes a result; the first one on an empty list wakes the ring.
    fn complete(&self, ud: u64, res: i32) {
        let mut done = lock(&self.done);
        let was_empty = done.is_empty();
        done.push((ud, res));
        drop(done);
        if was_empty {
            super::sys::signal_eventfd(self.wake.as_raw_fd());
        }
    }

    /// A pool thread: runs queued jobs until none comes for `idle_timeout` or the pool closes.
    fn work(&self) {
        let mut st = lock(&self.state);
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                // SAFETY: `submit`'s contract: the op's memory stays valid until its result is
                // reaped, which cannot happen before `complete` below.
                let res = unsafe { (self.run)(job.op) };
                lock(&self.state).returning += 1;
                self.complete(job.ud, res);
                st = lock(&self.state);
                st.returning -= 1;
                continue;
            }
            if st.closed {
                break;
            }
            st.idle += 1;
            let exit = loop {
                let (g, wait) = self
                    .work
                    .wait_timeout(st, self.idle_timeout)
                    .unwrap_or_else(|e| e.into_inner());
                st = g;
                if st.notified > 0 {
                    // `submit` took us off `idle` when it notified.
                    st.notified -= 1;
                    break false;
                }
                if st.closed || wait.timed_out() {
                    st.idle -= 1;
                    break true;
                }
                // Spurious wake-up: keep waiting.
            };
            if exit && (st.closed || st.queue.is_empty()) {
                break;
            }
        }
        st.threads -= 1;
    }
}

/// One ring's pool; see the module documentation.
pub(crate) struct Pool {
    cfg: PoolConfig,
    run: Runner,
    wake_fd: RawFd,
    /// Created with the first job (no thread, no fd before).
    shared: Option<Arc<Shared>>,
    /// The other half of the completion list's double buffer.
    spare: Vec<(u64, i32)>,
}

impl Pool {
    /// A pool that runs jobs with `run` and wakes the ring through `wake_fd` (duplicated at the
    /// first job). Starts nothing.
    pub(crate) fn new(wake_fd: RawFd, cfg: PoolConfig, run: Runner) -> Pool {
        Pool {
            cfg,
            run,
            wake_fd,
            shared: None,
            spare: Vec::new(),
        }
    }

    fn shared(&mut self) -> io::Result<&Arc<Shared>> {
        if self.shared.is_none() {
            // SAFETY: the ring's wake eventfd is open for as long as the ring (and this pool).
            let wake = unsafe { BorrowedFd::borrow_raw(self.wake_fd) }.try_clone_to_owned()?;
            self.shared = Some(Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                done: Mutex::new(Vec::new()),
                wake,
                run: self.run,
                idle_timeout: self.cfg.idle_timeout,
            }));
        }
        Ok(self.shared.as_ref().expect("just created"))
    }

    /// Queues `op` under `user_data`; its result arrives through [`drain`](Self::drain).
    /// `Err(errno)`: nothing was queued (no thread could be started and none is alive, or the
    /// wake eventfd could not be duplicated); the caller completes the op with `-errno`.
    ///
    /// # Safety
    /// As `Backend::push`: every pointer in `op` stays valid, and the memory the op writes is
    /// not otherwise accessed, until this `user_data`'s result has been drained (or forever,
    /// if the op is leaked); every fd it names stays open as long.
    pub(crate) unsafe fn submit(&mut self, user_data: u64, op: OpKind) -> Result<(), i32> {
        let max = self.cfg.max_threads.max(1);
        let shared = self
            .shared()
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))?
            .clone();
        let mut st = lock(&shared.state);
        st.queue.push_back(Job { ud: user_data, op });
        // Threads about to look at the queue without being woken (their syscall returned) or
        // already woken: each takes one queued job. Only jobs beyond them need another thread;
        // counting them alone would leave this job behind whatever such a thread takes first
        // (a FIFO open may block for good) while the pool has room.
        if st.queue.len() <= st.returning + st.notified {
            return Ok(());
        }
        if st.idle > 0 {
            st.idle -= 1;
            st.notified += 1;
            drop(st);
            shared.work.notify_one();
            return Ok(());
        }
        if st.threads >= max {
            return Ok(()); // full: the first thread whose syscall returns takes it
        }
        st.threads += 1;
        drop(st);
        let worker = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            // A syscall and two locks: a small stack is plenty.
            .stack_size(128 << 10)
            .spawn(move || {
                super::sys::block_all_signals();
                worker.work()
            });
        let Err(e) = spawned else { return Ok(()) };
        let mut st = lock(&shared.state);
        st.threads -= 1;
        if st.threads > 0 {
            return Ok(()); // one of them takes it
        }
        let pos = st.queue.iter().position(|j| j.ud == user_data);
        pos.and_then(|p| st.queue.remove(p));
        tracing::warn!(error = %e, "no blocking-pool thread could be started");
        Err(e.raw_os_error().unwrap_or(libc::EAGAIN))
    }

    /// Cancels a queued job: it completes with `-ECANCELED` (through `drain`) and never runs.
    /// Returns false if `user_data` is not queued (running, finished, or never submitted): a
    /// running syscall completes normally.
    pub(crate) fn cancel(&mut self, user_data: u64) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let mut st = lock(&shared.state);
        let Some(pos) = st.queue.iter().position(|j| j.ud == user_data) else {
            return false;
        };
        st.queue.remove(pos);
        drop(st);
        shared.complete(user_data, -libc::ECANCELED);
        true
    }

    /// Whether results are waiting (a `turn` must not block then). For an io_uring turn, which
    /// drains in `reap` only; epoll drains before it decides to block.
    pub(crate) fn has_completions(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| !lock(&s.done).is_empty())
    }

    /// Hands every published result to `sink` as `(user_data, res)`.
    pub(crate) fn drain(&mut self, mut sink: impl FnMut(u64, i32)) {
        let Some(shared) = &self.shared else { return };
        {
            let mut done = lock(&shared.done);
            if done.is_empty() {
                return;
            }
            std::mem::swap(&mut *done, &mut self.spare);
        }
        for (ud, res) in self.spare.drain(..) {
            sink(ud, res);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let Some(shared) = &self.shared else { return };
        let mut st = lock(&shared.state);
        st.closed = true;
        // Never started: their memory may already be gone (the driver leaked or finished
        // every op it still tracks before dropping the backend).
        st.queue.clear();
        drop(st);
        shared.work.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Opened by the test that parks ops on it (`GATED`).
    static GATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    /// An fd that makes `sleepy` block until `GATE` opens: threads that stay busy for as long
    /// as the test needs, however slow the machine (a fixed sleep can end before the test
    /// looked).
    const GATED: i32 = 999;

    /// Sleeps `fd` milliseconds (a "syscall" that blocks), or until `GATE` opens for `GATED`;
    /// then returns `fd`.
    unsafe fn sleepy(op: OpKind) -> i32 {
        match op {
            OpKind::Fsync { fd: GATED, .. } => {
                let end = Instant::now() + Duration::from_secs(60);
                while !GATE.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(1));
                }
                GATED
            }
            OpKind::Fsync { fd, .. } => {
                std::thread::sleep(Duration::from_millis(fd as u64));
                fd
            }
            _ => -libc::EINVAL,
        }
    }

    fn wait_for(pool: &mut Pool, n: usize) -> Vec<(u64, i32)> {
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(30);
        while got.len() < n && Instant::now() < end {
            pool.drain(|ud, res| got.push((ud, res)));
            std::thread::sleep(Duration::from_millis(1));
        }
        got.sort();
        got
    }

    fn threads(pool: &Pool) -> usize {
        pool.shared.as_ref().map_or(0, |s| lock(&s.state).threads)
    }

    #[test]
    #[cfg_attr(miri, ignore = "eventfd and threads")]
    fn runs_in_parallel_up_to_the_cap_then_queues_and_cancels() {
        let wake = crate::kernel::sys::eventfd().unwrap();
        let cfg = PoolConfig {
            max_threads: 2,
            idle_timeout: Duration::from_millis(50),
        };
        let mut pool = Pool::new(wake.as_raw_fd(), cfg, sleepy);
        assert_eq!(threads(&pool), 0, "lazy");
        for ud in 0..3 {
            let op = OpKind::Fsync {
                fd: GATED,
                datasync: false,
            };
            // SAFETY: the op carries no pointers.
            unsafe { pool.submit(ud, op) }.unwrap();
        }
        assert_eq!(threads(&pool), 2, "capped");
        assert!(pool.cancel(2), "the third is queued");
        assert!(!pool.cancel(2), "only once");
        GATE.store(true, std::sync::atomic::Ordering::SeqCst);
        let got = wait_for(&mut pool, 3);
        assert_eq!(got, vec![(0, GATED), (1, GATED), (2, -libc::ECANCELED)]);
        assert!(!pool.has_completions());
        // Idle threads exit.
        let end = Instant::now() + Duration::from_secs(30);
        while threads(&pool) > 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(threads(&pool), 0);
        // And come back on demand.
        // SAFETY: no pointers.
        unsafe {
            pool.submit(
                7,
                OpKind::Fsync {
                    fd: 1,
                    datasync: false,
                },
            )
        }
        .unwrap();
        assert_eq!(wait_for(&mut pool, 1), vec![(7, 1)]);
    }
}
