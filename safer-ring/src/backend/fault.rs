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

pub use crate::kernel::fault::Syscall;
pub(crate) use crate::kernel::fault::check;
#[cfg(feature = "fault-injection")]
pub use crate::kernel::fault::fail_next;

#[cfg(feature = "fault-injection")]
pub use super::fault_plan::{Fault, FaultPlan, OpClass};

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
