//! Fault injection for tests (feature `fault-injection`): make the next calls of a syscall the
//! backends make fail on this thread, to exercise every path where submitting or waiting
//! fails. Without the feature the checks compile to nothing.
//!
//! ```
//! # #[cfg(feature = "fault-injection")] {
//! use safer_ring::fault::{Syscall, fail_next};
//! fail_next(Syscall::IoUringEnter, libc::ENOMEM, 1); // the next io_uring_enter: ENOMEM
//! # fail_next(Syscall::IoUringEnter, 0, 0);
//! # }
//! ```

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
}

#[cfg(feature = "fault-injection")]
mod imp {
    use std::cell::Cell;

    use super::Syscall;

    thread_local! {
        static PLAN: Cell<[(i32, u32); 3]> = const { Cell::new([(0, 0); 3]) };
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
