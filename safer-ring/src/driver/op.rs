//! The future of one operation: lazy submission, result hand-back, and orphaning on drop.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{Later, Orphan, Polled, Waiter};
use crate::RingRef;
use crate::backend::{OpKind, TimeoutSpec};

/// What an operation owns and how it turns a completion into its output.
///
/// # Safety
/// Every pointer in the [`OpKind`] that `kind` returns must point into memory this value owns
/// on the heap (or `'static` memory) and stay valid, at the same address, while the value is
/// moved (into the ring's slab, when its future is dropped) and until it is dropped or
/// consumed by `complete`. Every fd it names must be held by this value (a `SharedFd` clone)
/// for as long. The driver relies on this to keep the kernel's pointers valid until the
/// operation's completion.
pub unsafe trait OpData: 'static {
    /// The future's output, usually `(io::Result<T>, buffer)`.
    type Output;
    /// Describes the kernel operation. Called once, right before submission.
    fn kind(&mut self) -> OpKind;
    /// Builds the output from the completion (`Ok(res)` for res >= 0).
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output;
}

/// An operation that has not yet produced its result; see [`Ring`](crate::Ring) for the operations.
///
/// Nothing happens until it is first polled. Dropping it before it completes is always safe:
/// its buffer moves into the ring, a cancel is requested, and the buffer is freed only once the
/// kernel reports the operation finished.
///
/// # Examples
/// ```
/// use safer_ring::{ops::ReadAt, Op};
/// # let ring = safer_ring::Ring::new(8)?;
/// let (rx, tx) = ring.pipe()?;
/// // Nothing is submitted until the first poll; dropping it is always safe.
/// let op: Op<'_, ReadAt<Vec<u8>>> = ring.read(&rx, Vec::with_capacity(8));
/// drop(op);
/// ring.block_on(async {
///     let (n, _) = ring.write(&tx, b"x".to_vec()).await;
///     n
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "operations do nothing unless awaited"]
pub struct Op<'r, T: OpData> {
    ring: &'r RingRef,
    /// `UNSUBMITTED`, `PUSHING`, or the op's `user_data` while it is in flight.
    ud: u64,
    data: Option<T>,
    /// What few ops have (a deadline, an input error), boxed so that the common op carries,
    /// moves and drops one null pointer for both.
    extra: Option<Box<Extra>>,
}

/// See [`Op::timeout`] and [`Op::fail`].
#[derive(Default)]
struct Extra {
    /// Read by the kernel (a linked timeout) until the op's completion: inside the box, its
    /// address does not move with the `Op`.
    timeout: Option<TimeoutSpec>,
    early: Option<io::Error>,
}

const UNSUBMITTED: u64 = u64::MAX;
/// Set before the push: if a panic unwinds out of it, the op may or may not have reached the
/// SQ, so its drop leaks the data instead of freeing it.
const PUSHING: u64 = u64::MAX - 1;

// Op never relies on its own address: everything the kernel sees lives on the heap.
impl<T: OpData> Unpin for Op<'_, T> {}

impl<'r, T: OpData> Op<'r, T> {
    pub(crate) fn new(ring: &'r RingRef, data: T) -> Self {
        Op {
            ring,
            ud: UNSUBMITTED,
            data: Some(data),
            extra: None,
        }
    }

    /// An op that completes with `err` on first poll without reaching the kernel (bad input).
    pub(crate) fn fail(ring: &'r RingRef, data: T, err: io::Error) -> Self {
        let mut op = Op::new(ring, data);
        op.extra.get_or_insert_default().early = Some(err);
        op
    }

    /// `data` as an op if `check` passed, else an op that completes with its error on first
    /// poll (handing the buffer back) without reaching the kernel.
    pub(crate) fn checked(ring: &'r RingRef, data: T, check: io::Result<()>) -> Self {
        match check {
            Ok(()) => Op::new(ring, data),
            Err(e) => Op::fail(ring, data, e),
        }
    }

    /// Bounds the operation by `dur`: if it has not completed by then it is cancelled and
    /// completes with [`io::ErrorKind::TimedOut`], still handing back its buffer.
    /// On io_uring this is a linked timeout (`IORING_OP_LINK_TIMEOUT`, one submission).
    /// Durations beyond about 136 years are treated as that long.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, _tx) = ring.pipe()?;
    /// let (res, buf) = ring.block_on(ring.read(&rx, vec![0u8; 8]).timeout(Duration::from_millis(20)));
    /// assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// assert_eq!(buf.len(), 8); // the buffer comes back
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_link_timeout")]
    pub fn timeout(mut self, dur: Duration) -> Self {
        self.extra.get_or_insert_default().timeout = Some(TimeoutSpec::value(dur));
        self
    }

    #[inline]
    fn deadline(&self) -> Option<&TimeoutSpec> {
        self.extra.as_ref().and_then(|x| x.timeout.as_ref())
    }

    fn finish(&mut self, res: i32, flags: u32) -> T::Output {
        self.ud = UNSUBMITTED;
        let data = self.data.take().expect("data of a live op");
        let result = if res >= 0 {
            Ok(res as u32)
        } else if self.deadline().is_some() && (res == -libc::ECANCELED || res == -libc::EINTR) {
            // The linked timeout fired: ECANCELED, or EINTR when the kernel had to
            // interrupt an io-wq worker (seen on 5.10 for pipe reads).
            Err(io::Error::from_raw_os_error(libc::ETIMEDOUT))
        } else {
            Err(io::Error::from_raw_os_error(-res))
        };
        data.complete(result, flags)
    }
}

impl<T: OpData> Future for Op<'_, T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        // One thread-local read: the polling task's budget and, if it is a task of this
        // ring's executor, its id (its op then names it instead of holding a waker).
        let cur = super::budget::current(cx);
        let task = cur.and_then(|c| c.task_of(this.ring.exec_id()));
        if this.ud == UNSUBMITTED {
            return this.submit(cx, task);
        }
        std::task::ready!(super::budget::check(cur, cx));
        let done = this.ring.driver().poll_op(this.ud, task, cx.waker());
        match done {
            Ok(Polled::Pending) => Poll::Pending,
            Ok(Polled::Ready(res, flags)) => {
                super::budget::spend_from(cur);
                Poll::Ready(this.finish(res, flags))
            }
            Ok(Polled::NeedsWaker) => {
                this.set_waker(cx);
                Poll::Pending
            }
            Err(super::Lost) => lost(),
        }
    }
}

#[cold]
fn lost() -> ! {
    panic!(
        "safer-ring: the ring was dropped while this operation was in flight and the kernel \
         did not finish it within drain_timeout; its buffer is leaked, not handed back"
    )
}

impl<T: OpData> Op<'_, T> {
    /// The first poll: pushes the op (or completes it with its input error).
    fn submit(&mut self, cx: &mut Context<'_>, task: Option<usize>) -> Poll<T::Output> {
        let data = self.data.as_mut().expect("Op polled after completion");
        if let Some(e) = self.extra.as_mut().and_then(|x| x.early.take()) {
            let data = self.data.take().expect("checked above");
            return Poll::Ready(data.complete(Err(e), 0));
        }
        // User code (the buffer's IoBuf methods, a foreign waker's clone) runs here, before
        // the driver is borrowed.
        let kind = data.kind();
        let waiter = match task {
            Some(t) => Waiter::Task(t),
            None => Waiter::Waker(cx.waker().clone()),
        };
        let mut driver = self.ring.driver();
        self.ud = PUSHING;
        // SAFETY: `kind` points into `self.data` (OpData's contract: heap memory that does
        // not move) and `self.extra` (boxed). Both stay in this Op until `poll_op` reports
        // the slot Done, or move into the slot with `drop_op`: valid until the completion.
        let pushed = unsafe { driver.push(kind, self.deadline(), waiter) };
        match pushed {
            Ok(ud) => {
                // Recorded before `driver` is released (and collected user code runs).
                self.ud = ud;
                drop(driver);
                Poll::Pending
            }
            Err(e) => {
                self.ud = UNSUBMITTED;
                drop(driver);
                let data = self.data.take().expect("checked above");
                Poll::Ready(data.complete(Err(e), 0))
            }
        }
    }

    /// The op waits, polled by someone other than the waiter it names: it takes this poll's
    /// waker, cloned with the driver free (user code); the previous one is dropped after the
    /// borrow too.
    #[cold]
    fn set_waker(&mut self, cx: &Context<'_>) {
        let waker = cx.waker().clone();
        let done_meanwhile = self.ring.driver().set_waker(self.ud, waker);
        if done_meanwhile.is_err() {
            // Completed while the driver was free: poll again.
            cx.waker().wake_by_ref();
        }
        drop(done_meanwhile);
    }
}

/// The data of an op whose future was dropped; completing it runs the op's own completion so
/// that kernel-created resources (accepted fds, opened files) are released.
struct Abandoned<T: OpData>(T, #[allow(dead_code)] Option<Box<Extra>>);

impl<T: OpData> Orphan for Abandoned<T> {
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
    #[inline]
    fn drop(&mut self) {
        // The common case, a finished (or never polled) op, costs one compare here.
        if self.ud != UNSUBMITTED {
            self.drop_submitted();
        }
    }
}

impl<T: OpData> Op<'_, T> {
    #[inline(never)]
    fn drop_submitted(&mut self) {
        if self.ud == PUSHING {
            // Unwound out of the push: the SQE may be queued. Leak, never free.
            std::mem::forget(self.data.take());
            std::mem::forget(self.extra.take());
            return;
        }
        let Some(data) = self.data.take() else {
            return;
        };
        let orphan: Box<dyn Orphan> = Box::new(Abandoned(data, self.extra.take()));
        let Some(mut driver) = self.ring.driver_in_drop() else {
            // The driver is busy: dropped by user code it runs while borrowed (a `tracing`
            // subscriber). The next turn cancels it, before it enters the kernel.
            self.ring
                .chore_queue()
                .push(super::Chore::Dropped(self.ud, orphan));
            return;
        };
        if let super::Dropped::Finished(o, res, flags) = driver.drop_op(self.ud, orphan) {
            // Completing it drops the user's buffer: user code, run after the release.
            driver.defer(Later::Complete(o, res, flags));
        }
    }
}
