//! Wakers of in-flight ops, shared between the ops of one task: a slot names its waker by
//! index, and consecutive ops of the same task reuse one entry with a plain (non-atomic) count,
//! so the per-op path clones no `Waker` (each clone/wake/drop is an atomic operation).
//!
//! Nothing here wakes or drops a user's `Waker`: both can run user code, so they are handed to
//! the caller as [`Later`] work, run once the driver's borrow is released. The ring's own
//! executor's wakers (recognised by their vtable) run only safer-ring's code — a flag, a queue
//! push, an eventfd write — so they are woken and dropped at once, which keeps the per-op path
//! free of clones and deferred work.

use std::task::{RawWakerVTable, Waker};

use slab::Slab;

use super::cell::Later;

#[derive(Default)]
pub(crate) struct Wakers {
    entries: Slab<(Waker, u32)>,
    last: Option<usize>,
    /// The entry woken last in the current reap: N completions of one task wake it once.
    woken: Option<usize>,
    /// The vtable of the ring's own executor's wakers.
    own: Option<&'static RawWakerVTable>,
}

/// Wakes `w` now if it is one of the ring's own executor's (`own`), else queues the wake.
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

impl Wakers {
    /// Wakers with the vtable of `own` belong to the ring's executor: handled inline.
    pub(crate) fn set_own(&mut self, own: &Waker) {
        self.own = Some(own.vtable());
    }

    pub(crate) fn own(&self) -> Option<&'static RawWakerVTable> {
        self.own
    }

    fn drop_waker(&self, w: Waker, later: &mut Vec<Later>) {
        if !is_own(self.own, &w) {
            later.push(Later::Drop(w));
        }
    }

    /// An entry for `w`: the most recent one if it wakes the same task, else a new one.
    pub(crate) fn acquire(&mut self, w: &Waker) -> usize {
        if let Some(i) = self.last
            && let Some((waker, refs)) = self.entries.get_mut(i)
            && waker.will_wake(w)
        {
            *refs += 1;
            return i;
        }
        let i = self.entries.insert((w.clone(), 1));
        self.last = Some(i);
        i
    }

    /// Drops one reference to entry `id`; the waker itself, if that was the last, goes to
    /// `later` to be dropped.
    pub(crate) fn release(&mut self, id: usize, later: &mut Vec<Later>) {
        if let Some(w) = self.unref(id) {
            self.drop_waker(w, later);
        }
    }

    fn unref(&mut self, id: usize) -> Option<Waker> {
        let (_, refs) = self.entries.get_mut(id)?;
        *refs -= 1;
        if *refs > 0 {
            return None;
        }
        if self.last == Some(id) {
            self.last = None;
        }
        Some(self.entries.remove(id).0)
    }

    /// Starts a reap: wakes are deduplicated within one.
    pub(crate) fn new_batch(&mut self) {
        self.woken = None;
    }

    /// Queues a wake of entry `id` in `later` (once per reap) and drops the op's reference.
    pub(crate) fn wake_release(&mut self, id: usize, later: &mut Vec<Later>) {
        let first = self.woken != Some(id);
        self.woken = Some(id);
        if first
            && let Some((w, _)) = self.entries.get(id)
            && is_own(self.own, w)
        {
            w.wake_by_ref();
            self.release(id, later);
            return;
        }
        match self.unref(id) {
            Some(w) if first => later.push(Later::Wake(w)),
            Some(w) => self.drop_waker(w, later),
            None if first => {
                if let Some((w, _)) = self.entries.get(id) {
                    later.push(Later::Wake(w.clone()));
                }
            }
            None => {}
        }
    }

    pub(crate) fn will_wake(&self, id: usize, w: &Waker) -> bool {
        self.entries.get(id).is_some_and(|(x, _)| x.will_wake(w))
    }

    /// Every waker still held (ring shutdown).
    pub(crate) fn drain(&mut self, later: &mut Vec<Later>) {
        self.last = None;
        for (_, (w, _)) in std::mem::take(&mut self.entries) {
            self.drop_waker(w, later);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::{Later, Wakers};

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn run(later: &mut Vec<Later>) -> (usize, usize) {
        let (mut wakes, mut drops) = (0, 0);
        for l in later.drain(..) {
            match l {
                Later::Wake(w) => {
                    wakes += 1;
                    w.wake()
                }
                Later::Drop(_) => drops += 1,
                Later::Complete(..) => unreachable!(),
            }
        }
        (wakes, drops)
    }

    /// The table never wakes or drops a waker itself, wakes a task once per reap however many
    /// of its ops completed, and hands every waker out exactly once.
    #[test]
    fn wakes_and_drops_are_handed_out_not_run() {
        let task = Arc::new(Count::default());
        let w = Waker::from(task.clone());
        let mut t = Wakers::default();
        let ids: Vec<usize> = (0..3).map(|_| t.acquire(&w)).collect();
        let mut entries = ids.clone();
        entries.dedup();
        // Miri does not deduplicate vtables, so `will_wake` may say no there.
        #[cfg(not(miri))]
        assert_eq!(entries.len(), 1, "one entry per task");
        let mut later = Vec::new();
        t.new_batch();
        for id in ids {
            t.wake_release(id, &mut later);
        }
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            0,
            "nothing ran inside the table"
        );
        let n = entries.len();
        // One entry: a clone is woken, the entry's own waker dropped with its last reference.
        // One entry per op (Miri): each entry's waker is moved into its wake.
        let drops = usize::from(n == 1);
        assert_eq!(run(&mut later), (n, drops));
        assert_eq!(task.0.load(Ordering::SeqCst), n);
        drop(w);
        assert_eq!(Arc::strong_count(&task), 1, "no waker kept");

        let other = Waker::from(Arc::new(Count::default()));
        let id = t.acquire(&other);
        t.release(id, &mut later);
        assert_eq!(run(&mut later), (0, 1));
    }
}
