//! The future of one operation: lazy submission, result hand-back, and orphaning on drop.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{Orphan, Slot};
use crate::Ring;
use crate::backend::{LinkTimeout, OpKind};

/// What an operation owns and how it turns a completion into its output.
///
/// Implementations keep every pointer they put in [`OpKind`] inside heap memory they own, so the
/// pointers stay valid when the value moves (into the slab, on drop).
pub trait OpData: 'static {
    /// The future's output, usually `(io::Result<T>, buffer)`.
    type Output;
    /// Describes the kernel operation. Called once, right before submission.
    fn kind(&mut self) -> OpKind;
    /// Builds the output from the completion (`Ok(res)` for res >= 0).
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output;
}

/// An operation that has not yet produced its result; see [`Ring`] for the operations.
///
/// Nothing happens until it is first polled. Dropping it before it completes is always safe:
/// its buffer moves into the ring, a cancel is requested, and the buffer is freed only once the
/// kernel reports the operation finished.
#[must_use = "operations do nothing unless awaited"]
pub struct Op<'r, T: OpData> {
    ring: &'r Ring,
    key: usize,
    data: Option<T>,
    timeout: Option<Box<LinkTimeout>>,
    early: Option<io::Error>,
}

const UNSUBMITTED: usize = usize::MAX;

// Op never relies on its own address: everything the kernel sees lives on the heap.
impl<T: OpData> Unpin for Op<'_, T> {}

impl<'r, T: OpData> Op<'r, T> {
    pub(crate) fn new(ring: &'r Ring, data: T) -> Self {
        Op {
            ring,
            key: UNSUBMITTED,
            data: Some(data),
            timeout: None,
            early: None,
        }
    }

    /// An op that completes with `err` on first poll without reaching the kernel (bad input).
    pub(crate) fn fail(ring: &'r Ring, data: T, err: io::Error) -> Self {
        Op {
            ring,
            key: UNSUBMITTED,
            data: Some(data),
            timeout: None,
            early: Some(err),
        }
    }

    /// `data` as an op if `check` passed, else an op that completes with its error on first
    /// poll (handing the buffer back) without reaching the kernel.
    pub(crate) fn checked(ring: &'r Ring, data: T, check: io::Result<()>) -> Self {
        match check {
            Ok(()) => Op::new(ring, data),
            Err(e) => Op::fail(ring, data, e),
        }
    }

    /// Bounds the operation by `dur`: if it has not completed by then it is cancelled and
    /// completes with [`io::ErrorKind::TimedOut`], still handing back its buffer.
    /// On io_uring this is a linked timeout (`IORING_OP_LINK_TIMEOUT`, one submission).
    #[doc(alias = "io_uring_prep_link_timeout")]
    pub fn timeout(mut self, dur: Duration) -> Self {
        self.timeout = Some(LinkTimeout::new(dur));
        self
    }
}

impl<T: OpData> Future for Op<'_, T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        if this.key == UNSUBMITTED {
            let data = this.data.as_mut().expect("Op polled after completion");
            if let Some(e) = this.early.take() {
                return Poll::Ready(this.data.take().unwrap().complete(Err(e), 0));
            }
            let kind = data.kind();
            let pushed = this
                .ring
                .driver()
                .push(kind, this.timeout.as_deref(), cx.waker());
            return match pushed {
                Ok(key) => {
                    this.key = key;
                    Poll::Pending
                }
                Err(e) => Poll::Ready(this.data.take().unwrap().complete(Err(e), 0)),
            };
        }
        let mut driver = this.ring.driver();
        let d = &mut *driver;
        let slot = d.slots.get_mut(this.key).expect("slot of a live op");
        match slot {
            Slot::Waiting(w) | Slot::Partial { waker: w, .. } => {
                if !d.books.wakers.will_wake(*w, cx.waker()) {
                    let new = d.books.wakers.acquire(cx.waker());
                    d.books.wakers.release(*w);
                    *w = new;
                }
                Poll::Pending
            }
            Slot::Done { res, flags } => {
                let (res, flags) = (*res, *flags);
                driver.slots.remove(this.key);
                drop(driver);
                this.key = UNSUBMITTED;
                let data = this.data.take().expect("data of a live op");
                let result = if res >= 0 {
                    Ok(res as u32)
                } else if this.timeout.is_some() && (res == -libc::ECANCELED || res == -libc::EINTR)
                {
                    // The linked timeout fired: ECANCELED, or EINTR when the kernel had to
                    // interrupt an io-wq worker (seen on 5.10 for pipe reads).
                    Err(io::Error::from_raw_os_error(libc::ETIMEDOUT))
                } else {
                    Err(io::Error::from_raw_os_error(-res))
                };
                Poll::Ready(data.complete(result, flags))
            }
            _ => unreachable!("a live one-shot op's slot is never orphaned or multishot"),
        }
    }
}

/// The data of an op whose future was dropped; completing it runs the op's own completion so
/// that kernel-created resources (accepted fds, opened files) are released.
struct Dropped<T: OpData>(T, #[allow(dead_code)] Option<Box<LinkTimeout>>);

impl<T: OpData> Orphan for Dropped<T> {
    fn complete(self: Box<Self>, res: i32, flags: u32) {
        let r = if res >= 0 {
            Ok(res as u32)
        } else {
            Err(io::Error::from_raw_os_error(-res))
        };
        drop(self.0.complete(r, flags));
    }
}

impl<T: OpData> Drop for Op<'_, T> {
    fn drop(&mut self) {
        if self.key == UNSUBMITTED {
            return;
        }
        let mut driver = self.ring.driver();
        let key = self.key;
        match driver.slots.get_mut(key) {
            Some(Slot::Done { res, flags }) => {
                let (res, flags) = (*res, *flags);
                driver.slots.remove(key);
                if flags & 1 != 0 {
                    // IORING_CQE_F_BUFFER: a provided buffer nobody will read; give it back.
                    use crate::backend::Backend;
                    driver.backend.recycle_buffer((flags >> 16) as u16);
                }
                drop(driver);
                if let Some(data) = self.data.take() {
                    Box::new(Dropped(data, None)).complete(res, flags);
                }
            }
            Some(slot @ (Slot::Waiting(_) | Slot::Partial { .. })) => {
                let (Slot::Waiting(w) | Slot::Partial { waker: w, .. }) = *slot else {
                    unreachable!()
                };
                let data = self.data.take().expect("data of a live op");
                *slot = Slot::Orphan(Box::new(Dropped(data, self.timeout.take())));
                driver.books.wakers.release(w);
                driver.cancel(key);
            }
            _ => {}
        }
    }
}
