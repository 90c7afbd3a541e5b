//! Cooperative budget: a task may complete at most [`BUDGET`] operations without waiting per
//! poll; after that its next operation yields once (waking the task), so a socket that always
//! has data, or a multishot op that always has completions queued, cannot starve the other
//! tasks, the timers or the ring's own turn. Only this ring's executor sets a budget: polled
//! anywhere else (tokio), operations are never held back.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Operations per task poll (tokio uses the same figure).
pub(crate) const BUDGET: u32 = 128;

thread_local! {
    static LEFT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Runs one poll of a task (`f`) with a fresh budget.
pub(crate) fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u32>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LEFT.set(self.0);
        }
    }
    let _restore = Restore(LEFT.replace(Some(BUDGET)));
    f()
}

/// `Ready` if the current task may complete another operation now; else wakes it and returns
/// `Pending`, so it yields to the others once.
#[inline]
pub(crate) fn poll_proceed(cx: &Context<'_>) -> Poll<()> {
    if LEFT.get() == Some(0) {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(())
}

/// An operation completed without waiting: one unit of the budget is spent.
#[inline]
pub(crate) fn spend() {
    if let Some(n) = LEFT.get() {
        LEFT.set(Some(n.saturating_sub(1)));
    }
}
