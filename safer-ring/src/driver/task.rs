//! Spawned tasks: the [`JoinHandle`] that reports a task's output, panic or cancellation, and
//! the wrapper that catches a task's panic at the task boundary so the executor, the main
//! future and the other tasks go on.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Why a task produced no output.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let err = ring.block_on(ring.spawn(async { panic!("oops") })).unwrap_err();
/// assert_eq!(err.to_string(), "task panicked: oops");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub enum JoinError {
    /// [`JoinHandle::abort`] dropped it first.
    Cancelled,
    /// It panicked; the payload is what `panic!` was given.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// Whether the task was aborted.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, _tx) = ring.pipe()?;
    /// let r = ring.clone();
    /// let task = ring.spawn(async move { r.read(&rx, vec![0u8; 8]).await.1 });
    /// task.abort();
    /// let err = ring.block_on(task).unwrap_err();
    /// assert!(err.is_cancelled() && !err.is_panic());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let task = ring.spawn(async { panic!("boom") });
    /// let err = ring.block_on(task).unwrap_err(); // the ring and other tasks go on
    /// assert!(err.is_panic());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload (for `std::panic::resume_unwind`), or `Err(self)` if cancelled.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let task = ring.spawn(async { panic!("boom") });
    /// let payload = ring.block_on(task).unwrap_err().try_into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self {
            JoinError::Panicked(p) => Ok(p),
            e => Err(e),
        }
    }
}

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>")
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
            JoinError::Panicked(p) => write!(f, "JoinError::Panicked({:?})", panic_message(&**p)),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked(p) => write!(f, "task panicked: {}", panic_message(&**p)),
        }
    }
}

impl std::error::Error for JoinError {}

/// What a task and its handle share.
struct Shared<T> {
    result: RefCell<Option<Result<T, JoinError>>>,
    /// The awaiting future's waker.
    waiter: RefCell<Option<Waker>>,
    abort: Cell<bool>,
    finished: Cell<bool>,
    /// Wakes the task itself (so an abort is seen at its next poll); set at spawn.
    task: RefCell<Option<Waker>>,
    detached: Cell<bool>,
}

/// Owned permission to await a spawned task's output; see [`Ring::spawn`](crate::RingRef::spawn).
///
/// Dropping it detaches the task (it keeps running). A task's panic is caught at the task
/// boundary and returned here as [`JoinError::Panicked`]; for a detached task it is logged.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let r = ring.clone();
/// let handle = ring.spawn(async move { r.nop().await.map(|()| "done") });
/// assert_eq!(ring.block_on(handle)??, "done"); // JoinError, then the task's own error
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinHandle<T> {
    shared: Rc<Shared<T>>,
    /// Where the task lives, so that `abort` can drop it at once: its executor and its key.
    home: Option<(std::rc::Weak<dyn AbortTask>, usize)>,
}

/// What `JoinHandle::abort` asks of the ring the task was spawned on.
pub(crate) trait AbortTask {
    /// Drops task `id` now if it is the one `waker` wakes and is not running; whether it did.
    fn abort_task(&self, id: usize, waker: &Waker) -> bool;
}

impl<T> JoinHandle<T> {
    /// Cancels the task: unless it is running, it is dropped now (its operations cancelled;
    /// their receives take nothing that arrives after `abort` returns), else when its current
    /// poll returns; the handle yields [`JoinError::Cancelled`] unless it had already finished.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let r = ring.clone();
    /// let task = ring.spawn(async move { r.sleep(Duration::from_secs(3600)).await });
    /// task.abort(); // its sleep is cancelled in the kernel
    /// assert!(ring.block_on(task).unwrap_err().is_cancelled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn abort(&self) {
        self.shared.abort.set(true);
        // Cloned, not borrowed: dropping the task below empties `shared.task` (`finish`).
        let Some(w) = self.shared.task.borrow().clone() else {
            return; // finished
        };
        // Dropped now, so its operations' cancels reach the kernel before `abort` returns and
        // its receives take nothing that arrives after. A running task (aborting itself, or
        // from a future it polls) sees the flag when its poll returns.
        if let Some((home, id)) = &self.home
            && let Some(home) = home.upgrade()
            && home.abort_task(*id, &w)
        {
            return;
        }
        w.wake_by_ref();
    }

    /// Records where the task lives (`Ring::spawn`).
    pub(crate) fn set_home(&mut self, home: std::rc::Weak<dyn AbortTask>, id: usize) {
        self.home = Some((home, id));
    }

    /// Whether the task has finished (with an output, a panic or a cancellation).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let task = ring.spawn(async { 7 });
    /// assert!(!task.is_finished()); // tasks run inside block_on
    /// ring.block_on(ring.nop())?;
    /// assert!(task.is_finished());
    /// assert_eq!(ring.block_on(task)?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.finished.get()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(r) = self.shared.result.borrow_mut().take() {
            return Poll::Ready(r);
        }
        let old = self.shared.waiter.replace(Some(cx.waker().clone()));
        drop(old);
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.shared.detached.set(true);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A spawned future plus the slot its result goes to; the executor polls it as a
/// `Future<Output = ()>`.
pub(crate) struct Task<F: Future> {
    fut: F,
    /// Dropped after `fut` (field order): a task dropped unfinished (aborted, its ring dropped,
    /// or the main future panicked) reports `Cancelled`.
    shared: Finish<F::Output>,
}

struct Finish<T>(Rc<Shared<T>>);

impl<T> Drop for Finish<T> {
    fn drop(&mut self) {
        if !self.0.finished.get() {
            self.0.finish(Err(JoinError::Cancelled));
        }
    }
}

impl<T> std::ops::Deref for Finish<T> {
    type Target = Shared<T>;
    fn deref(&self) -> &Shared<T> {
        &self.0
    }
}

/// A task for `fut` and the handle to its result.
pub(crate) fn task<F: Future>(fut: F) -> (Task<F>, JoinHandle<F::Output>) {
    let shared = Rc::new(Shared {
        result: RefCell::new(None),
        waiter: RefCell::new(None),
        abort: Cell::new(false),
        finished: Cell::new(false),
        task: RefCell::new(None),
        detached: Cell::new(false),
    });
    let handle = JoinHandle {
        shared: shared.clone(),
        home: None,
    };
    (
        Task {
            fut,
            shared: Finish(shared),
        },
        handle,
    )
}

impl<F: Future> Task<F> {
    /// Tells the task how to wake itself (for `abort`).
    pub(crate) fn set_waker(&self, w: &Waker) {
        *self.shared.task.borrow_mut() = Some(w.clone());
    }
}

impl<T> Shared<T> {
    fn finish(&self, r: Result<T, JoinError>) {
        self.finished.set(true);
        drop(self.task.borrow_mut().take());
        if self.detached.get() {
            if let Err(JoinError::Panicked(p)) = &r {
                tracing::error!(panic = panic_message(&**p), "a detached task panicked");
            }
            // Nobody takes the output: dropping it is the task's own code; its panic stays here.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(r))).is_err() {
                tracing::error!("dropping a detached task's output panicked");
            }
            return;
        }
        *self.result.borrow_mut() = Some(r);
        let waiter = self.waiter.borrow_mut().take();
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl<F: Future> Future for Task<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `fut` is structurally pinned: it is never moved out or handed out unpinned,
        // and `Task` has no `Drop` (its `Finish` field's does not touch `fut`); `shared` is a
        // disjoint field that is never pinned.
        let (fut, shared) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.fut), &this.shared)
        };
        if shared.abort.get() {
            shared.finish(Err(JoinError::Cancelled));
            return Poll::Ready(());
        }
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                shared.finish(Ok(v));
                Poll::Ready(())
            }
            Err(p) => {
                shared.finish(Err(JoinError::Panicked(p)));
                Poll::Ready(())
            }
        }
    }
}
