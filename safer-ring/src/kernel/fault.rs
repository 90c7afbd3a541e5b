//! Injected syscall failures (feature `fault-injection`; the public face is
//! `safer_ring::fault`): the checks the bottom-layer calls make, compiled to nothing without
//! the feature.

use std::io;

/// A syscall the backends make that a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// `io_uring_enter` (submit and wait).
    IoUringEnter,
    /// `epoll_wait`.
    EpollWait,
    /// `epoll_ctl` (registering an fd that an op waits on).
    EpollCtl,
    /// `uname`, which detection reads the kernel version from.
    Uname,
    /// `IORING_REGISTER_PROBE`, detection's opcode probe.
    IoUringProbe,
}

#[cfg(feature = "fault-injection")]
mod imp {
    use std::cell::Cell;

    use super::Syscall;

    thread_local! {
        static PLAN: Cell<[(i32, u32); 5]> = const { Cell::new([(0, 0); 5]) };
    }

    /// Makes the next `times` calls of `call` on this thread fail with `errno` (without reaching
    /// the kernel). `times = 0` clears the plan for `call`.
    pub fn fail_next(call: Syscall, errno: i32, times: u32) {
        PLAN.with(|p| {
            let mut plan = p.get();
            plan[call as usize] = (errno, times);
            p.set(plan);
        });
    }

    pub(crate) fn take(call: Syscall) -> Option<i32> {
        PLAN.with(|p| {
            let mut plan = p.get();
            let (errno, left) = &mut plan[call as usize];
            if *left == 0 {
                return None;
            }
            *left -= 1;
            let e = *errno;
            p.set(plan);
            Some(e)
        })
    }
}

#[cfg(feature = "fault-injection")]
pub use imp::fail_next;

/// `Err` if a failure of `call` was injected on this thread.
#[inline(always)]
pub(crate) fn check(call: Syscall) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(errno) = imp::take(call) {
        return Err(io::Error::from_raw_os_error(errno));
    }
    let _ = call;
    Ok(())
}
