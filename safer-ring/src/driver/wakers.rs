//! Wakers of in-flight ops, shared between the ops of one task: a slot names its waker by
//! index, and consecutive ops of the same task reuse one entry with a plain (non-atomic) count,
//! so the per-op path clones no `Waker` (each clone/wake/drop is an atomic operation).

use std::task::Waker;

use slab::Slab;

#[derive(Default)]
pub(crate) struct Wakers {
    entries: Slab<(Waker, u32)>,
    last: Option<usize>,
}

impl Wakers {
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

    pub(crate) fn release(&mut self, id: usize) {
        if let Some((_, refs)) = self.entries.get_mut(id) {
            *refs -= 1;
            if *refs == 0 {
                self.entries.remove(id);
                if self.last == Some(id) {
                    self.last = None;
                }
            }
        }
    }

    pub(crate) fn wake_release(&mut self, id: usize) {
        if let Some((w, _)) = self.entries.get(id) {
            w.wake_by_ref();
        }
        self.release(id);
    }

    pub(crate) fn will_wake(&self, id: usize, w: &Waker) -> bool {
        self.entries.get(id).is_some_and(|(x, _)| x.will_wake(w))
    }
}
