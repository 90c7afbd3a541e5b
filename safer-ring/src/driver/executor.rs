//! A minimal single-threaded executor: `block_on` plus spawned local tasks, sleeping in the
//! kernel (io_uring_enter / epoll_wait) when nothing is runnable.

use std::collections::VecDeque;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use slab::Slab;

use crate::kernel::sys;

pub(crate) const MAIN_TASK: usize = usize::MAX;

/// State shared with wakers, which may be cloned to and woken from other threads. Completions
/// of a task's own ops do not come through here: the driver lists those tasks by id
/// (`Woken`), and `block_on` collects them after each turn.
pub(crate) struct WakeShared {
    queue: Mutex<VecDeque<usize>>,
    /// Set after an id is queued: an empty queue is seen without taking the lock.
    queued: AtomicBool,
    sleeping: AtomicBool,
    pub(crate) eventfd: OwnedFd,
}

impl WakeShared {
    pub(crate) fn new() -> std::io::Result<Arc<WakeShared>> {
        Ok(Arc::new(WakeShared {
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            eventfd: sys::eventfd()?,
        }))
    }

    fn schedule(&self, id: usize) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(id);
        self.queued.store(true, Ordering::Release);
        // Pairs with the SeqCst store in `prepare_sleep`: either the sleeper sees the queue
        // entry, or we see it sleeping and kick the eventfd.
        if self.sleeping.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            sys::signal_eventfd(self.eventfd.as_raw_fd());
        }
    }

    /// Puts not-yet-run task ids back at the front of the run queue, in order.
    fn requeue(&self, batch: &mut VecDeque<usize>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if batch.is_empty() {
            return;
        }
        while let Some(id) = batch.pop_back() {
            q.push_front(id);
        }
        self.queued.store(true, Ordering::Release);
    }

    /// Moves the run queue to the end of `into`.
    #[inline]
    fn take_into(&self, into: &mut VecDeque<usize>) {
        // An id queued after this load is seen by the next call (its store follows its push),
        // and `prepare_sleep` checks the queue itself under the lock before the ring sleeps.
        if !self.queued.load(Ordering::Acquire) {
            return;
        }
        self.queued.store(false, Ordering::Relaxed);
        // Drained, not swapped: each queue keeps its own allocation (a swap could leave the
        // shared queue with an empty one, to grow again at the next `block_on`).
        into.extend(
            self.queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
    }

    /// Returns true if the driver may block: nothing was queued after `sleeping` was set.
    fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        let empty = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if !empty {
            self.sleeping.store(false, Ordering::SeqCst);
        }
        empty
    }

    fn woke(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

struct TaskWaker {
    id: usize,
    shared: Arc<WakeShared>,
    /// Set while the task sits in the run queue: N completions for one task queue it once.
    queued: AtomicBool,
}

impl TaskWaker {
    fn new(id: usize, shared: &Arc<WakeShared>) -> Arc<TaskWaker> {
        Arc::new(TaskWaker {
            id,
            shared: shared.clone(),
            queued: AtomicBool::new(false),
        })
    }

    /// Every waker of this executor is made here: the driver recognises them by their vtable,
    /// and `Waker::from` called from a generic function (`spawn::<F>`, instantiated in the
    /// user's crate) may get its own copy of the vtable, which would send every wake of a
    /// spawned task through the deferred (clone, queue, wake, drop) path.
    #[inline(never)]
    fn waker(this: Arc<TaskWaker>) -> Waker {
        Waker::from(this)
    }

    fn schedule(&self) {
        // Plain load first: completions for an already-queued task then cost no RMW.
        if !self.queued.load(Ordering::Acquire) && !self.queued.swap(true, Ordering::AcqRel) {
            self.shared.schedule(self.id);
        }
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule();
    }
}

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

struct Task {
    fut: Option<LocalTask>,
    header: Arc<TaskWaker>,
    /// Cloned for every poll (the slab is not borrowed while the task runs): an `Rc` clone
    /// instead of the waker's atomic one.
    waker: std::rc::Rc<Waker>,
}

pub(crate) struct Executor {
    pub(crate) shared: Arc<WakeShared>,
    tasks: std::cell::RefCell<Slab<Task>>,
    main: Arc<TaskWaker>,
    main_waker: Waker,
    /// Set while `block_on` runs: a nested call would never return.
    running: std::cell::Cell<bool>,
    /// The run batch's allocation, kept between `block_on` calls (a fresh one per call would
    /// cost an allocation).
    spare: std::cell::Cell<VecDeque<usize>>,
}

/// Restores the executor when `block_on` returns or unwinds: clears `running` and puts task
/// ids that were taken from the run queue but not yet polled back in it (their `queued` flag
/// is set, so dropping them would lose their wakeups for good).
struct RunGuard<'a> {
    exec: &'a Executor,
    batch: VecDeque<usize>,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.exec.running.set(false);
        if std::thread::panicking() {
            // The main future panicked (a task's panic is caught at its boundary): its tasks go
            // with it, before the panic leaves `block_on`; their destructors' panics are
            // swallowed (a second panic would abort).
            drop(self.exec.drop_tasks());
            self.batch.clear();
        } else {
            self.exec.shared.requeue(&mut self.batch);
        }
        self.exec.spare.set(std::mem::take(&mut self.batch));
    }
}

/// Removes a task whose poll unwound: its future is gone (dropped by the unwinding).
struct PollGuard<'a> {
    exec: &'a Executor,
    id: usize,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.exec.tasks.try_borrow_mut()
            && tasks.get(self.id).is_some_and(|t| t.fut.is_none())
        {
            // The Task still holds its waker: drop it after the borrow (it is our own type,
            // but a task's waker may be the last reference to nothing else).
            let task = tasks.remove(self.id);
            drop(tasks);
            drop(task);
        }
    }
}

impl Executor {
    pub(crate) fn new(shared: Arc<WakeShared>) -> Executor {
        let main = TaskWaker::new(MAIN_TASK, &shared);
        let main_waker = TaskWaker::waker(main.clone());
        Executor {
            shared,
            tasks: std::cell::RefCell::new(Slab::new()),
            main,
            main_waker,
            running: std::cell::Cell::new(false),
            spare: std::cell::Cell::new(VecDeque::new()),
        }
    }

    /// A waker of this executor (they all share one vtable).
    pub(crate) fn waker(&self) -> &Waker {
        &self.main_waker
    }

    /// This executor's identity, for ops polled by its tasks (`budget::Current::task_of`).
    #[inline]
    pub(crate) fn id(&self) -> *const () {
        (self as *const Executor).cast()
    }

    /// Spawns `fut` as a task whose output (or panic) goes to the returned handle; also
    /// returns the task's key, for `abort_task`.
    pub(crate) fn spawn<F: Future + 'static>(
        &self,
        fut: F,
    ) -> (super::task::JoinHandle<F::Output>, usize) {
        let (task, handle) = super::task::task(fut);
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let id = entry.key();
        let header = TaskWaker::new(id, &self.shared);
        let waker = TaskWaker::waker(header.clone());
        task.set_waker(&waker);
        entry.insert(Task {
            fut: Some(Box::pin(task)),
            header: header.clone(),
            waker: std::rc::Rc::new(waker),
        });
        drop(tasks);
        header.schedule();
        (handle, id)
    }

    /// Drops task `id` if it is still the task `waker` wakes and is not running (its future
    /// is in its slot); whether it did. The destructor runs with nothing borrowed.
    pub(crate) fn abort_task(&self, id: usize, waker: &Waker) -> bool {
        let task = {
            let Ok(mut tasks) = self.tasks.try_borrow_mut() else {
                return false;
            };
            match tasks.get(id) {
                Some(t) if t.fut.is_some() && t.waker.will_wake(waker) => tasks.remove(id),
                _ => return false,
            }
        };
        // A wake still queued for `id` finds no task (or a new one, which a spurious poll
        // does not harm).
        drop_task_future(task);
        true
    }

    /// Drops every task (until none is left: a destructor may spawn). Each is dropped even if
    /// another's destructor panics; the first panic is returned.
    pub(crate) fn drop_tasks(&self) -> Option<Box<dyn std::any::Any + Send>> {
        let mut first = None;
        loop {
            // Take them out first: a task's destructor may spawn or touch the executor.
            let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
            if tasks.is_empty() {
                return first;
            }
            for (_, task) in tasks {
                let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(task)));
                if let Err(p) = dropped {
                    first.get_or_insert(p);
                }
            }
        }
    }

    /// Runs `fut` to completion, together with spawned tasks. `turn(wait, batch)` is one
    /// driver turn, which appends the tasks its completions woke to `batch`.
    pub(crate) fn block_on<F: Future>(
        &self,
        fut: F,
        mut turn: impl FnMut(bool, &mut VecDeque<usize>) -> std::io::Result<()>,
    ) -> F::Output {
        assert!(
            !self.running.replace(true),
            "Ring::block_on called while this ring's block_on is already running (from a task \
             or the future it runs): it would never return; .await the future instead"
        );
        let mut guard = RunGuard {
            exec: self,
            batch: self.spare.take(),
        };
        let mut fut = std::pin::pin!(fut);
        let mut main_cx = Context::from_waker(&self.main_waker);
        // A previous block_on may have returned (or unwound) with the main task still queued.
        self.main.queued.store(false, Ordering::Release);
        self.main.schedule();
        let mut failed_turns: u32 = 0;
        loop {
            let mut ran = false;
            self.shared.take_into(&mut guard.batch);
            while let Some(id) = guard.batch.pop_front() {
                ran = true;
                if id == MAIN_TASK {
                    self.main.queued.store(false, Ordering::Release);
                    let polled = super::budget::with_task(&self.main_waker, self.id(), id, || {
                        fut.as_mut().poll(&mut main_cx)
                    });
                    if let Poll::Ready(v) = polled {
                        // Tasks woken in this batch stay queued for the next block_on (the
                        // guard puts them back).
                        return v;
                    }
                    continue;
                }
                self.poll_task(id);
            }
            let wait = !ran && self.shared.prepare_sleep();
            let res = turn(wait, &mut guard.batch);
            if wait {
                self.shared.woke();
            }
            match res {
                Ok(()) => failed_turns = 0,
                Err(e) => {
                    // Ops already in the kernel cannot be failed from here (their SQEs are in
                    // flight until their CQEs), so retry: transient errors (ENOMEM, EAGAIN)
                    // clear. Back off so a persistent one logs and sleeps instead of spinning.
                    failed_turns += 1;
                    if failed_turns.is_power_of_two() {
                        tracing::error!(error = %e, failed_turns, "driver turn failed; retrying");
                    }
                    std::thread::sleep(turn_backoff(failed_turns));
                }
            }
        }
    }

    fn poll_task(&self, id: usize) {
        let (mut task, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get_mut(id) {
                Some(t) => {
                    t.header.queued.store(false, Ordering::Release);
                    match t.fut.take() {
                        Some(f) => (f, t.waker.clone()),
                        None => return, // already running (woken during its own poll)
                    }
                }
                None => return, // stale wake of a finished task
            }
        };
        let guard = PollGuard { exec: self, id };
        let done = super::budget::with_task(&waker, self.id(), id, || {
            task.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        });
        std::mem::forget(guard);
        let mut tasks = self.tasks.borrow_mut();
        match tasks.get_mut(id) {
            // Still our entry (a running task's future is out of its slot).
            Some(t) if t.fut.is_none() => {
                if !done {
                    t.fut = Some(task);
                    return;
                }
                tasks.remove(id);
            }
            // Dropped during its own poll (its ring went away), maybe with the key reused by
            // a new task.
            _ => {}
        }
        drop(tasks);
        drop_task_future(task);
    }
}

/// Drops a finished or aborted task's future (or whole task). Its destructor is the task's own
/// code, so its panic stays with the task (logged), like a panic in its poll.
fn drop_task_future<T>(task: T) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(task))).is_err() {
        tracing::error!("a task's destructor panicked");
    }
}

/// How long to sleep after the `n`th failed turn in a row: from 1 µs, doubling, to 10 ms.
pub(crate) fn turn_backoff(n: u32) -> Duration {
    Duration::from_micros(1u64 << (n.clamp(1, 20) - 1)).min(Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_turns_back_off_to_a_cap() {
        assert_eq!(turn_backoff(0), Duration::from_micros(1));
        assert_eq!(turn_backoff(1), Duration::from_micros(1));
        assert_eq!(turn_backoff(2), Duration::from_micros(2));
        assert_eq!(turn_backoff(11), Duration::from_micros(1024));
        assert_eq!(turn_backoff(40), Duration::from_millis(10));
        assert!((1..100).all(|n| turn_backoff(n) <= turn_backoff(n + 1)));
    }
}
