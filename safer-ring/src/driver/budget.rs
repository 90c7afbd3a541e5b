//! The task an executor is polling, read once per op poll: its cooperative budget and, for a
//! task of a safer-ring executor, its identity (so its ops name it instead of cloning a waker).
//!
//! Budget: a task may complete at most [`BUDGET`] operations without waiting per poll; after
//! that its next operation yields once (waking the task), so a socket that always has data, or
//! a multishot op that always has completions queued, cannot starve the other tasks, the timers
//! or the ring's own turn. Only this crate's executor sets a budget: polled anywhere else
//! (tokio), operations are never held back.

use std::cell::Cell;
use std::task::{Context, Poll, Waker};

/// Operations per task poll (tokio uses the same figure).
pub(crate) const BUDGET: u32 = 128;

/// The task being polled. Only ops polled with its own waker are held back or name it, so a
/// future the task polls by hand (a `Waker::noop` loop, a `FuturesUnordered`, another executor
/// nested in the task) is never told to yield to a scheduler that is not its own, nor woken
/// through one. The waker is known by its data pointer: the task's own `Arc`, which no other
/// live waker made in safe code shares.
#[derive(Clone, Copy)]
pub(crate) struct Current {
    /// The polled task's waker data; null when no task of this crate is being polled.
    data: *const (),
    /// The executor polling it (its address) and the task's id there.
    exec: *const (),
    task: usize,
    left: u32,
}

const NONE: Current = Current {
    data: std::ptr::null(),
    exec: std::ptr::null(),
    task: 0,
    left: 0,
};

thread_local! {
    static CURRENT: Cell<Current> = const { Cell::new(NONE) };
}

impl Current {
    /// The task's id if `exec` is the executor polling it.
    #[inline]
    pub(crate) fn task_of(&self, exec: *const ()) -> Option<usize> {
        std::ptr::eq(self.exec, exec).then_some(self.task)
    }
}

/// Runs one poll of task `task` of executor `exec` (`f`), woken through `waker`, with a fresh
/// budget.
pub(crate) fn with_task<R>(
    waker: &Waker,
    exec: *const (),
    task: usize,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(Current);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.set(self.0);
        }
    }
    let cur = Current {
        left: BUDGET,
        data: waker.data(),
        exec,
        task,
    };
    let _restore = Restore(CURRENT.replace(cur));
    f()
}

/// The task polling with `cx`, if an executor of this crate polls it with its own waker (one
/// thread-local read).
#[inline]
pub(crate) fn current(cx: &Context<'_>) -> Option<Current> {
    let c = CURRENT.get();
    (!c.data.is_null() && std::ptr::eq(c.data, cx.waker().data())).then_some(c)
}

/// `Pending` (after waking the task, so it yields once) if `cur`'s budget is spent.
#[inline]
pub(crate) fn check(cur: Option<Current>, cx: &Context<'_>) -> Poll<()> {
    if cur.is_some_and(|c| c.left == 0) {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(())
}

/// An operation of `cur` (read by [`current`] in the same poll) completed without waiting.
#[inline]
pub(crate) fn spend_from(cur: Option<Current>) {
    if let Some(mut c) = cur {
        c.left = c.left.saturating_sub(1);
        CURRENT.set(c);
    }
}

/// `Ready` if the current task may complete another operation now; else wakes it and returns
/// `Pending`, so it yields to the others once.
#[inline]
pub(crate) fn poll_proceed(cx: &Context<'_>) -> Poll<()> {
    check(current(cx), cx)
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
    spend_from(current(cx));
}
