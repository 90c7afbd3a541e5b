//! nop and sleep.

use std::io;
use std::time::Duration;

use crate::Ring;
use crate::backend::{LinkTimeout, OpKind};
use crate::driver::op::{Op, OpData};

/// A no-op round trip through the backend; see [`Ring::nop`].
pub struct Nop;

// SAFETY: no pointers, no fd.
unsafe impl OpData for Nop {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Nop
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// A timer; see [`Ring::sleep`].
pub struct Sleep {
    spec: Box<LinkTimeout>,
}

// SAFETY: the timespec is boxed (does not move with `self`).
unsafe impl OpData for Sleep {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Timeout {
            ts: &self.spec.ts,
            dur: self.spec.dur,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Ring {
    /// Does nothing, through the kernel: measures the per-operation overhead.
    #[doc(alias = "io_uring_prep_nop")]
    pub fn nop(&self) -> Op<'_, Nop> {
        Op::new(self, Nop)
    }

    /// Completes after `dur`.
    #[doc(alias = "io_uring_prep_timeout")]
    pub fn sleep(&self, dur: Duration) -> Op<'_, Sleep> {
        Op::new(
            self,
            Sleep {
                spec: LinkTimeout::new(dur),
            },
        )
    }
}
