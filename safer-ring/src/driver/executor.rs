//! A minimal single-threaded executor: `block_on` plus spawned local tasks, sleeping in the
//! kernel (io_uring_enter / epoll_wait) when nothing is runnable.

use std::collections::VecDeque;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::backend::sys;

pub(crate) const MAIN_TASK: usize = usize::MAX;

/// State shared with wakers, which may be cloned to and woken from other threads.
pub(crate) struct WakeShared {
    queue: Mutex<VecDeque<usize>>,
    sleeping: AtomicBool,
    pub(crate) eventfd: OwnedFd,
}

impl WakeShared {
    pub(crate) fn new() -> std::io::Result<Arc<WakeShared>> {
        Ok(Arc::new(WakeShared {
            queue: Mutex::new(VecDeque::new()),
            sleeping: AtomicBool::new(false),
            eventfd: sys::eventfd()?,
        }))
    }

    fn schedule(&self, id: usize) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(id);
        // Pairs with the SeqCst store in `prepare_sleep`: either the sleeper sees the queue
        // entry, or we see it sleeping and kick the eventfd.
        if self.sleeping.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            sys::signal_eventfd(self.eventfd.as_raw_fd());
        }
    }

    fn take(&self) -> VecDeque<usize> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
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
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.shared.schedule(self.id);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.schedule(self.id);
    }
}

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

pub(crate) struct Executor {
    pub(crate) shared: Arc<WakeShared>,
    tasks: std::cell::RefCell<Slab<(Option<LocalTask>, Waker)>>,
}

impl Executor {
    pub(crate) fn new(shared: Arc<WakeShared>) -> Executor {
        Executor {
            shared,
            tasks: std::cell::RefCell::new(Slab::new()),
        }
    }

    pub(crate) fn waker(&self, id: usize) -> Waker {
        Waker::from(Arc::new(TaskWaker {
            id,
            shared: self.shared.clone(),
        }))
    }

    pub(crate) fn spawn(&self, fut: LocalTask) {
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let id = entry.key();
        entry.insert((Some(fut), self.waker(id)));
        drop(tasks);
        self.shared.schedule(id);
    }

    pub(crate) fn drop_tasks(&self) {
        // Take them out first: a task's destructor may spawn or touch the executor.
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        drop(tasks);
    }

    /// Runs `fut` to completion, together with spawned tasks. `turn(wait)` is one driver turn.
    pub(crate) fn block_on<F: Future>(
        &self,
        fut: F,
        mut turn: impl FnMut(bool) -> std::io::Result<()>,
    ) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let main_waker = self.waker(MAIN_TASK);
        let mut main_cx = Context::from_waker(&main_waker);
        self.shared.schedule(MAIN_TASK);
        loop {
            let mut ran = false;
            for id in self.shared.take() {
                ran = true;
                if id == MAIN_TASK {
                    if let Poll::Ready(v) = fut.as_mut().poll(&mut main_cx) {
                        return v;
                    }
                    continue;
                }
                self.poll_task(id);
            }
            let wait = !ran && self.shared.prepare_sleep();
            let res = turn(wait);
            if wait {
                self.shared.woke();
            }
            if let Err(e) = res {
                // A failing turn (e.g. the ring fd is broken) cannot make progress; report it to
                // every op by waking everything once, then keep going: ops see errors themselves.
                tracing::error!(error = %e, "driver turn failed");
                std::thread::yield_now();
            }
        }
    }

    fn poll_task(&self, id: usize) {
        let (mut task, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get_mut(id) {
                Some((t, w)) => match t.take() {
                    Some(t) => (t, w.clone()),
                    None => return, // already running (woken during its own poll)
                },
                None => return, // stale wake of a finished task
            }
        };
        let done = task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        let mut tasks = self.tasks.borrow_mut();
        if done {
            tasks.remove(id);
        } else if let Some((slot, _)) = tasks.get_mut(id) {
            *slot = Some(task);
        }
    }
}
