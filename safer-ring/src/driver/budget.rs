//! Cooperative budget: a task may complete at most [`BUDGET`] operations without waiting per
//! poll; after that its next operation yields once (waking the task), so a socket that always
//! has data, or a multishot op that always has completions queued, cannot starve the other
//! tasks, the timers or the ring's own turn. Only this ring's executor sets a budget: polled
//! anywhere else (tokio), operations are never held back.

use std::cell::Cell;
use std::task::{Context, Poll, Waker};

/// Operations per task poll (tokio uses the same figure).
pub(crate) const BUDGET: u32 = 128;

thread_local! {
    /// Units left, and the data pointer of the polled task's waker: only ops polled with that
    /// waker are held back, so a future the task polls by hand (a `Waker::noop` loop, another
    /// executor nested in the task) is never told to yield to a scheduler that is not its own.
    static LEFT: Cell<Option<(u32, *const ())>> = const { Cell::new(None) };
}

/// Runs one poll of a task (`f`), woken through `waker`, with a fresh budget.
pub(crate) fn with_budget<R>(waker: &Waker, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(u32, *const ())>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LEFT.set(self.0);
        }
    }
    let _restore = Restore(LEFT.replace(Some((BUDGET, waker.data()))));
    f()
}

fn throttled(cx: &Context<'_>) -> Option<u32> {
    match LEFT.get() {
        Some((n, task)) if std::ptr::eq(task, cx.waker().data()) => Some(n),
        _ => None,
    }
}

/// `Ready` if the current task may complete another operation now; else wakes it and returns
/// `Pending`, so it yields to the others once.
#[inline]
pub(crate) fn poll_proceed(cx: &Context<'_>) -> Poll<()> {
    if throttled(cx) == Some(0) {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(())
}

/// The unit an operation may spend, read with one thread-local access: `Op::poll` checks the
/// budget and spends from it without reading the thread-local again.
pub(crate) struct Unit(Option<(u32, *const ())>);

impl Unit {
    /// The operation completed without waiting: the unit is spent.
    #[inline]
    pub(crate) fn spend(self) {
        if self.0.is_some() {
            LEFT.set(self.0);
        }
    }
}

/// As [`poll_proceed`], handing out the unit to [`Unit::spend`] if the op completes.
#[inline]
pub(crate) fn poll_unit(cx: &Context<'_>) -> Poll<Unit> {
    match LEFT.get() {
        Some((n, task)) if std::ptr::eq(task, cx.waker().data()) => {
            if n == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Unit(Some((n - 1, task))))
        }
        _ => Poll::Ready(Unit(None)),
    }
}

/// Polls `f` within the budget: yields first if it is spent, spends a unit if `f` is ready.
pub(crate) fn counted<T>(
    cx: &mut Context<'_>,
    f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    std::task::ready!(poll_proceed(cx));
    let r = f(cx);
    if r.is_ready() {
        spend(cx);
    }
    r
}

/// An operation completed without waiting: one unit of the task's budget is spent.
#[inline]
pub(crate) fn spend(cx: &Context<'_>) {
    if let Some(n) = throttled(cx) {
        LEFT.set(LEFT.get().map(|(_, task)| (n.saturating_sub(1), task)));
    }
}
