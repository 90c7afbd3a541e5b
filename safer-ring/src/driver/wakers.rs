//! Who an in-flight op wakes, and how, without running user code while the driver is borrowed.
//!
//! An op polled by a task of its own ring's executor names that task by id ([`Waiter::Task`]):
//! no `Waker` is cloned, and its completion only records the id in [`Woken`], which the executor
//! collects after the turn (no atomics, no lock, no user code). Any other poller (a tokio task,
//! a `FuturesUnordered` inside a task, another ring's executor) hands over a clone of its waker,
//! cloned before the driver is borrowed; waking or dropping it is user code, so it is handed to
//! the caller as [`Later`] work, except for wakers of a safer-ring executor (recognised by their
//! vtable), which run only a flag, a queue push and an eventfd write and are handled at once.

use std::collections::VecDeque;
use std::task::{RawWakerVTable, Waker};

use super::cell::Later;

/// Who to wake when an op completes.
pub(crate) enum Waiter {
    /// A task of the ring's own executor (its id there; `MAIN_TASK` for `block_on`'s future).
    Task(usize),
    /// Anyone else.
    Waker(Waker),
}

impl Waiter {
    /// Whether this waiter is the one a poll from `task` (if a task of this ring) with `waker`
    /// would register.
    #[inline]
    pub(crate) fn matches(&self, task: Option<usize>, waker: &Waker) -> bool {
        match (self, task) {
            (Waiter::Task(t), Some(c)) => *t == c,
            (Waiter::Waker(w), None) => w.will_wake(waker),
            _ => false,
        }
    }
}

/// Tasks of the ring's own executor that completions woke, not yet collected by it. A task
/// whose ops complete one after another is listed once; one listed twice apart is polled once
/// more than needed, which a future tolerates (and the executor skips a finished task).
#[derive(Default)]
pub(crate) struct Woken {
    ids: Vec<usize>,
}

impl Woken {
    #[inline]
    pub(crate) fn push(&mut self, id: usize) {
        if self.ids.last() != Some(&id) {
            self.ids.push(id);
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Moves the listed tasks to the end of the executor's run batch.
    pub(crate) fn take_into(&mut self, batch: &mut VecDeque<usize>) {
        batch.extend(self.ids.drain(..));
    }
}

/// Wakes `w`: a task of this ring is listed in `woken`, a safer-ring executor's waker is woken
/// now, any other waker is queued in `later`.
#[inline(always)]
pub(crate) fn wake_waiter(
    own: Option<&'static RawWakerVTable>,
    w: Waiter,
    woken: &mut Woken,
    later: &mut Vec<Later>,
) {
    match w {
        Waiter::Task(id) => woken.push(id),
        Waiter::Waker(w) => wake(own, w, later),
    }
}

/// Gives up `w` without waking it: a foreign waker's drop is queued in `later`.
pub(crate) fn discard(own: Option<&'static RawWakerVTable>, w: Waiter, later: &mut Vec<Later>) {
    if let Waiter::Waker(w) = w
        && !is_own(own, &w)
    {
        later.push(Later::Drop(w));
    }
}

/// Wakes `w` now if it is a safer-ring executor's (`own`), else queues the wake.
pub(crate) fn wake(own: Option<&'static RawWakerVTable>, w: Waker, later: &mut Vec<Later>) {
    if is_own(own, &w) {
        w.wake();
    } else {
        later.push(Later::Wake(w));
    }
}

fn is_own(own: Option<&'static RawWakerVTable>, w: &Waker) -> bool {
    own.is_some_and(|v| std::ptr::eq(v, w.vtable()))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::{Later, Waiter, Woken, discard, wake_waiter};
    use crate::driver::executor::MAIN_TASK;

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A foreign waker is never woken or dropped here: both are handed out, once each.
    #[test]
    fn foreign_wakers_are_handed_out_not_run() {
        let task = Arc::new(Count::default());
        let w = Waker::from(task.clone());
        let (mut woken, mut later) = (Woken::default(), Vec::new());
        wake_waiter(None, Waiter::Waker(w.clone()), &mut woken, &mut later);
        discard(None, Waiter::Waker(w.clone()), &mut later);
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "nothing ran inside");
        assert!(woken.is_empty());
        assert!(matches!(later.as_slice(), [Later::Wake(_), Later::Drop(_)]));
        later.drain(..).for_each(|l| match l {
            Later::Wake(w) => w.wake(),
            Later::Drop(w) => drop(w),
            Later::Complete(..) => unreachable!(),
        });
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        drop(w);
        assert_eq!(Arc::strong_count(&task), 1, "no waker kept");
    }

    /// Tasks of the ring are listed, not woken through a waker, once per run of completions.
    #[test]
    fn own_tasks_are_listed_once_per_run() {
        let (mut woken, mut later) = (Woken::default(), Vec::new());
        for id in [3, 3, 3, MAIN_TASK, MAIN_TASK, 3, 0] {
            wake_waiter(None, Waiter::Task(id), &mut woken, &mut later);
        }
        assert!(later.is_empty());
        let mut batch = VecDeque::new();
        woken.take_into(&mut batch);
        assert_eq!(batch, [3, MAIN_TASK, 3, 0]);
        assert!(woken.is_empty());
    }

    #[test]
    fn a_waiter_matches_only_its_own_poller() {
        let w = Waker::from(Arc::new(Count::default()));
        let other = Waker::from(Arc::new(Count::default()));
        assert!(Waiter::Task(4).matches(Some(4), &other));
        assert!(!Waiter::Task(4).matches(Some(5), &w));
        assert!(!Waiter::Task(4).matches(None, &w));
        // Miri does not deduplicate vtables, so `will_wake` of a clone may say no there.
        #[cfg(not(miri))]
        assert!(Waiter::Waker(w.clone()).matches(None, &w));
        assert!(!Waiter::Waker(w.clone()).matches(None, &other));
        assert!(!Waiter::Waker(w.clone()).matches(Some(4), &w));
    }
}
