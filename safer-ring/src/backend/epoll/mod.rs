//! epoll fallback backend.
//!
//! Sockets and pipes are made O_NONBLOCK (by the I/O types) and attempted at once; an attempt that
//! would block parks the op on its fd, which is registered edge-triggered for both directions
//! with EPOLL_CTL_ADD (EEXIST means it already is: no MOD churn, no error). Readiness retries the
//! parked ops of that direction in order. What readiness cannot wait for runs on the ring's
//! blocking pool (`backend/pool.rs`): positional file reads and writes that would block (a
//! page-cache hit finishes inline, see `files.rs`), open, statx, fsync; their results come back
//! through the pool's completion list, which `turn` and `reap` drain. Close, NOP and reads or
//! writes at a file's current position still run inline. Timeouts live in a heap of deadlines
//! that bounds `epoll_wait`; a deadline cancels a pool op only while it is queued (a running
//! syscall completes normally).

mod files;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::op::{Direction, Exec};
use super::pool::{Pool, PoolConfig};
use super::syscall::{self as exec, Attempt};
use super::{Backend, Full, OpKind, TimeoutSpec};
use crate::config::BackendKind;
use files::{NoWait, Route};

const WAKE_KEY: u64 = u64::MAX;
const TIMER_KEY: u64 = u64::MAX - 1;

struct Parked {
    op: OpKind,
    /// The fd whose queue it waits in: the op's, or the end a splice/tee blocked on.
    fd: RawFd,
    deadline: Option<Instant>,
    connecting: bool,
    /// The fd queue it waits in (`None` for timers).
    dir: Option<Direction>,
}

/// An op handed to the pool, until its result is drained.
struct Pooled {
    op: OpKind,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct FdQueues {
    readers: Vec<u64>,
    writers: Vec<u64>,
}

pub(crate) struct EpollBackend {
    epfd: OwnedFd,
    ready: Vec<(u64, i32)>,
    parked: HashMap<u64, Parked>,
    by_fd: HashMap<RawFd, FdQueues>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    events: Vec<libc::epoll_event>,
    wake_fd: RawFd,
    /// Armed to the earliest deadline so the epoll fd itself turns readable when a timer is
    /// due (an external event loop polling it then wakes us).
    timerfd: OwnedFd,
    armed: Option<Instant>,
    /// Boxed: kept out of `AnyBackend`'s inline size.
    blocking: Box<Blocking>,
}

/// The blocking pool and what the backend knows about the ops it holds.
struct Blocking {
    pool: Pool,
    pooled: HashMap<u64, Pooled>,
    nowait: NoWait,
}

impl EpollBackend {
    pub(crate) fn new(wake_fd: RawFd, pool: PoolConfig) -> io::Result<EpollBackend> {
        // SAFETY: epoll_create1 takes no pointers.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let backend = EpollBackend {
            epfd,
            ready: Vec::new(),
            parked: HashMap::new(),
            by_fd: HashMap::new(),
            timers: BinaryHeap::new(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            wake_fd,
            timerfd: super::sys::timerfd()?,
            armed: None,
            blocking: Box::new(Blocking {
                pool: Pool::new(wake_fd, pool, super::pool::run_blocking),
                pooled: HashMap::new(),
                nowait: NoWait::from_env(),
            }),
        };
        backend.register(wake_fd, libc::EPOLLIN as u32, WAKE_KEY)?;
        backend.register(backend.timerfd.as_raw_fd(), libc::EPOLLIN as u32, TIMER_KEY)?;
        Ok(backend)
    }

    fn register(&self, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        super::fault::check(super::fault::Syscall::EpollCtl)?;
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: `ev` is a live local the kernel only reads.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn park(
        &mut self,
        ud: u64,
        op: OpKind,
        fd: RawFd,
        dir: Direction,
        deadline: Option<Instant>,
        connecting: bool,
    ) {
        let interest = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        if let Err(e) = self.register(fd, interest, fd as u64) {
            // E.g. EPERM: the fd cannot be polled. Report it rather than hang.
            self.ready
                .push((ud, -e.raw_os_error().unwrap_or(libc::EIO)));
            return;
        }
        let q = self.by_fd.entry(fd).or_default();
        match dir {
            Direction::Read => q.readers.push(ud),
            Direction::Write => q.writers.push(ud),
        }
        if let Some(d) = deadline {
            self.add_timer(d, ud);
        }
        self.parked.insert(
            ud,
            Parked {
                op,
                fd,
                deadline,
                connecting,
                dir: Some(dir),
            },
        );
    }

    /// Retries parked ops on `fd` in one direction, in order, until one would block again.
    ///
    /// Parked ops were pushed under `Backend::push`'s contract and have not completed, so
    /// their pointers are valid.
    fn retry(&mut self, fd: RawFd, dir: Direction) {
        let Some(q) = self.by_fd.get_mut(&fd) else {
            return;
        };
        let list = match dir {
            Direction::Read => &mut q.readers,
            Direction::Write => &mut q.writers,
        };
        let mut done = 0;
        let mut moved = Vec::new();
        for &ud in list.iter() {
            let Some(p) = self.parked.get_mut(&ud) else {
                done += 1; // cancelled or timed out: drop the stale entry
                continue;
            };
            let res = if p.connecting {
                exec::connect_result(fd)
            } else {
                // SAFETY: a parked op has not completed: its pointers are valid (push contract).
                unsafe { exec::attempt(p.op) }
            };
            match res {
                Attempt::Done(r) => {
                    self.parked.remove(&ud);
                    self.ready.push((ud, r));
                    done += 1;
                }
                // A splice/tee now blocked on its other end: wait there instead.
                Attempt::WouldBlockOn(f, d) if (f, d) != (fd, dir) => {
                    if let Some(p) = self.parked.remove(&ud) {
                        moved.push((ud, p, f, d));
                    }
                    done += 1;
                }
                Attempt::WouldBlock(_) | Attempt::WouldBlockOn(..) | Attempt::InProgress => break,
            }
        }
        list.drain(..done);
        if q.readers.is_empty() && q.writers.is_empty() {
            self.by_fd.remove(&fd);
        }
        for (ud, p, f, d) in moved {
            // Its deadline timer stays in the heap and still matches (`fire_timers`).
            self.park(ud, p.op, f, d, None, false);
            if let Some(q) = self.parked.get_mut(&ud) {
                q.deadline = p.deadline;
            }
        }
    }

    /// Removes a parked op and its fd-queue entry (eagerly: `user_data` values are reused, so a
    /// stale queue entry could later name a different op).
    fn unpark(&mut self, ud: u64) -> Option<Parked> {
        let p = self.parked.remove(&ud)?;
        if let Some(dir) = p.dir {
            let fd = p.fd;
            if let Some(q) = self.by_fd.get_mut(&fd) {
                match dir {
                    Direction::Read => q.readers.retain(|&u| u != ud),
                    Direction::Write => q.writers.retain(|&u| u != ud),
                }
                if q.readers.is_empty() && q.writers.is_empty() {
                    self.by_fd.remove(&fd);
                }
            }
        }
        Some(p)
    }

    fn add_timer(&mut self, when: Instant, ud: u64) {
        self.timers.push(Reverse((when, ud)));
        if self.armed.is_none_or(|a| when < a) {
            self.arm(when);
        }
    }

    fn arm(&mut self, when: Instant) {
        let d = when
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        super::sys::timerfd_set(self.timerfd.as_raw_fd(), d);
        self.armed = Some(when);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((when, ud))) = self.timers.peek().copied() {
            if when > now {
                break;
            }
            self.timers.pop();
            if let Some(p) = self.parked.get(&ud)
                && p.deadline == Some(when)
            {
                let res = if matches!(p.op, OpKind::Timeout { .. }) {
                    -libc::ETIME
                } else {
                    -libc::ECANCELED
                };
                self.unpark(ud);
                self.ready.push((ud, res));
            } else if self
                .blocking
                .pooled
                .get(&ud)
                .is_some_and(|p| p.deadline == Some(when))
            {
                // Only a queued op can be stopped; its -ECANCELED arrives through the pool.
                self.blocking.pool.cancel(ud);
            }
        }
        // Re-arm for the next live deadline (stale heap entries only cause an early wake).
        self.armed = None;
        if let Some(Reverse((when, _))) = self.timers.peek().copied() {
            self.arm(when);
        }
    }

    /// Hands `op` to the pool (the push contract keeps its pointers valid until reaped).
    fn send_to_pool(&mut self, ud: u64, op: OpKind, deadline: Option<Instant>) {
        // SAFETY: `push`'s contract: the op's memory and fds stay valid until its completion
        // has been reaped, which `collect` only reports after the pool published it.
        match unsafe { self.blocking.pool.submit(ud, op) } {
            Ok(()) => {
                if let Some(d) = deadline {
                    self.add_timer(d, ud);
                }
                self.blocking.pooled.insert(ud, Pooled { op, deadline });
            }
            Err(errno) => self.ready.push((ud, -errno)),
        }
    }

    /// Moves the pool's results to `ready`. A positional op on a non-blocking device that
    /// answered EAGAIN on the pool waits for readiness like any other.
    fn collect(&mut self) {
        let Blocking { pool, pooled, .. } = &mut *self.blocking;
        let ready = &mut self.ready;
        let mut again = Vec::new();
        pool.drain(|ud, res| match pooled.remove(&ud) {
            Some(p) if res == -libc::EAGAIN && matches!(p.op.exec(), Exec::Poll(_)) => {
                again.push((ud, p))
            }
            _ => ready.push((ud, res)),
        });
        for (ud, p) in again {
            let Exec::Poll(dir) = p.op.exec() else {
                continue; // checked above
            };
            self.park(ud, p.op, p.op.fd(), dir, p.deadline, false);
        }
    }

    fn next_timeout_ms(&self, cap: Option<Duration>) -> i32 {
        let now = Instant::now();
        let timer = self
            .timers
            .peek()
            .map(|Reverse((when, _))| when.saturating_duration_since(now));
        let d = match (timer, cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match d {
            None => -1,
            // Round up so a timer never fires early and spins.
            Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        }
    }
}

impl Backend for EpollBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Epoll
    }

    unsafe fn push(
        &mut self,
        ud: u64,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
    ) -> Result<(), Full> {
        // Durations are clamped (`MAX_TIMEOUT`), so these never overflow.
        let deadline = timeout.map(|t| Instant::now() + t.dur);
        if let OpKind::Timeout { dur, .. } = op {
            let when = Instant::now() + dur.min(super::MAX_TIMEOUT);
            self.add_timer(when, ud);
            self.parked.insert(
                ud,
                Parked {
                    op,
                    fd: -1,
                    deadline: Some(when),
                    connecting: false,
                    dir: None,
                },
            );
            return Ok(());
        }
        match files::route(&op) {
            Route::Pool => {
                self.send_to_pool(ud, op, deadline);
                return Ok(());
            }
            Route::File => {
                // SAFETY: the caller keeps `op`'s pointers valid until its completion is reaped.
                match unsafe { files::try_inline(op, &mut self.blocking.nowait) } {
                    Some(r) => self.ready.push((ud, r)),
                    None => self.send_to_pool(ud, op, deadline),
                }
                return Ok(());
            }
            Route::Ready => {}
        }
        // Keep per-fd order: queue behind ops already waiting in the same direction.
        if let Exec::Poll(dir) = op.exec() {
            let fd = op.fd();
            if let Some(q) = self.by_fd.get(&fd) {
                let waiting = match dir {
                    Direction::Read => &q.readers,
                    Direction::Write => &q.writers,
                };
                if waiting.iter().any(|u| self.parked.contains_key(u)) {
                    self.park(ud, op, fd, dir, deadline, false);
                    return Ok(());
                }
            }
        }
        // SAFETY: the caller keeps `op`'s pointers valid until its completion is reaped.
        match unsafe { exec::attempt(op) } {
            Attempt::Done(r) => self.ready.push((ud, r)),
            Attempt::WouldBlock(dir) => self.park(ud, op, op.fd(), dir, deadline, false),
            Attempt::WouldBlockOn(fd, dir) => self.park(ud, op, fd, dir, deadline, false),
            Attempt::InProgress => self.park(ud, op, op.fd(), Direction::Write, deadline, true),
        }
        Ok(())
    }

    fn cancel(&mut self, ud: u64) -> Result<(), Full> {
        if self.unpark(ud).is_some() {
            self.ready.push((ud, -libc::ECANCELED));
        } else if self.blocking.pooled.contains_key(&ud) {
            // Queued: completes with -ECANCELED through the pool. Running: completes normally.
            self.blocking.pool.cancel(ud);
        }
        Ok(())
    }

    fn offers(&self, _feature: crate::Feature) -> bool {
        false
    }

    // Nothing to leak here: parked and pooled ops are descriptions (pointers into memory the
    // driver leaks). Pool threads still running keep only those pointers, and the pool's own
    // state is shared with them, so dropping the backend frees nothing they use.
    fn leak_on_drop(&mut self) {}

    fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        self.fire_timers();
        // A pool result published after this writes the wake eventfd: epoll_wait returns.
        self.collect();
        let ms = if wait && self.ready.is_empty() {
            self.next_timeout_ms(timeout)
        } else {
            0
        };
        super::fault::check(super::fault::Syscall::EpollWait)?;
        // SAFETY: `events` is a live buffer of `len` entries the kernel fills.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for i in 0..n as usize {
            let ev = self.events[i];
            let (key, mask) = (ev.u64, ev.events as i32);
            if key == TIMER_KEY {
                super::sys::drain_eventfd(self.timerfd.as_raw_fd());
                continue; // fire_timers below
            }
            if key == WAKE_KEY {
                // Level-triggered: drain it or every later wait returns at once.
                super::sys::drain_eventfd(self.wake_fd);
                continue;
            }
            let fd = key as RawFd;
            if mask & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                self.retry(fd, Direction::Read);
            }
            if mask & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                self.retry(fd, Direction::Write);
            }
        }
        self.fire_timers();
        Ok(())
    }

    fn reap(&mut self, sink: &mut impl FnMut(u64, i32, u32)) {
        self.collect();
        for (ud, res) in self.ready.drain(..) {
            sink(ud, res, 0);
        }
    }

    fn wants_nonblocking(&self) -> bool {
        true
    }

    fn pollable_fd(&self) -> RawFd {
        self.epfd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Feature;

    fn test_pool() -> PoolConfig {
        PoolConfig {
            max_threads: 4,
            idle_timeout: Duration::from_millis(100),
        }
    }

    /// The io_uring-only calls are out of reach: callers take their fallback.
    #[test]
    #[cfg_attr(miri, ignore = "epoll and timerfd syscalls")]
    fn io_uring_only_calls_are_out_of_reach() {
        let wake = crate::kernel::sys::eventfd().unwrap();
        let mut b = super::super::AnyBackend::Epoll(
            EpollBackend::new(wake.as_raw_fd(), test_pool()).unwrap(),
        );
        assert!(b.as_uring_mut().is_none() && b.as_uring().is_none());
        assert!(!b.offers(Feature::MsgRing));
    }

    /// An io_uring-only operation pushed to epoll completes once, with -EOPNOTSUPP (what the
    /// enhanced APIs turn into "this ring only: fall back").
    #[test]
    #[cfg_attr(miri, ignore = "epoll and timerfd syscalls")]
    fn io_uring_only_operations_complete_with_eopnotsupp() {
        let wake = crate::kernel::sys::eventfd().unwrap();
        let mut b = EpollBackend::new(wake.as_raw_fd(), test_pool()).unwrap();
        let fd = wake.as_raw_fd();
        let ops = [
            OpKind::AcceptMulti { fd },
            OpKind::RecvMulti {
                fd,
                bgid: 0,
                bundle: false,
            },
            OpKind::RecvSelect {
                fd,
                len: 16,
                bgid: 0,
            },
            OpKind::MsgRing {
                ring_fd: fd,
                user_data: 1,
            },
            OpKind::FixedFdInstall { slot: 0 },
        ];
        for (ud, op) in ops.into_iter().enumerate() {
            // SAFETY: these kinds carry no pointers; `wake` outlives the backend.
            unsafe { b.push(ud as u64, op, None) }.unwrap();
        }
        let mut got = Vec::new();
        b.turn(false, None).unwrap();
        b.reap(&mut |ud, res, flags| got.push((ud, res, flags)));
        got.sort();
        let want: Vec<_> = (0..5).map(|ud| (ud, -libc::EOPNOTSUPP, 0)).collect();
        assert_eq!(got, want);
    }
}
