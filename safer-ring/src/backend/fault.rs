//! Fault injection for tests (feature `fault-injection`), at two levels:
//!
//! - [`fail_next`]: make the next calls of a syscall fail on this thread (submitting, waiting,
//!   registering interest, and detection's `uname` and opcode probe). Without the feature the
//!   checks compile to nothing.
//! - [`FaultPlan`], given to a ring with `SaferRingConfig::fault_plan`: the ring's backend wraps
//!   the real one and fails operations before they reach the kernel (a "backport" that answers
//!   EINVAL, ENOMEM), shortens transfers, fails turns (EBUSY/EAGAIN storms), holds completions
//!   back and releases them out of order, caps the completion queue, or refuses the ring-fd
//!   registration. The kernel does everything else for real.
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
pub use super::fault_plan::{Fault, FaultPlan, OpClass};
#[cfg(feature = "fault-injection")]
pub use imp::fail_next;

/// Operations of this thread's fault-injecting rings (see [`FaultPlan`]) pushed and not yet
/// completed for good (a multishot op counts until its last completion).
#[cfg(feature = "fault-injection")]
pub fn in_flight_ops() -> usize {
    super::faulty::in_flight_ops()
}

/// Whether an in-flight operation of this thread's fault-injecting rings may still read or
/// write any byte of `ptr..ptr + len` (only compared, never dereferenced): a buffer handed
/// back to the caller must never be (pass its whole capacity).
#[cfg(feature = "fault-injection")]
pub fn kernel_may_access(ptr: *const u8, len: usize) -> bool {
    super::faulty::kernel_may_access(ptr, len)
}

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
