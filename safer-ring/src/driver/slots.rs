//! The table of in-flight ops: a vector with a free list, like `slab`, with the generation that
//! each op's `user_data` carries kept beside its slot. Written here rather than taken from
//! `slab` so the three calls on the per-op path (insert, generation-checked look-up, remove)
//! are a few instructions each and inline into it; a profile put `slab`'s insert and remove,
//! called out of line, at ~40 instructions per op.

use super::Slot;

pub(crate) struct Slots {
    entries: Vec<Entry>,
    /// The first free entry; `entries.len()` when none is.
    free: usize,
    len: usize,
}

struct Entry {
    generation: u32,
    /// While free: the next free entry.
    next: u32,
    slot: Option<Slot>,
}

impl Slots {
    pub(crate) fn with_capacity(n: usize) -> Slots {
        Slots {
            entries: Vec::with_capacity(n),
            free: 0,
            len: 0,
        }
    }

    /// The key the next insert takes.
    #[inline]
    pub(crate) fn vacant_key(&self) -> usize {
        self.free
    }

    /// Stores `slot` under a free key (the caller checked `vacant_key` fits its `user_data`).
    #[inline]
    pub(crate) fn insert(&mut self, generation: u32, slot: Slot) -> usize {
        let key = self.free;
        match self.entries.get_mut(key) {
            Some(e) => {
                self.free = e.next as usize;
                e.generation = generation;
                // A free entry holds no slot: nothing is dropped here.
                std::mem::forget(e.slot.replace(slot));
            }
            None => {
                self.entries.push(Entry {
                    generation,
                    next: 0,
                    slot: Some(slot),
                });
                self.free = self.entries.len();
            }
        }
        self.len += 1;
        key
    }

    /// The slot under `key` if it holds the op of `generation`.
    #[inline]
    pub(crate) fn get(&self, key: usize, generation: u32) -> Option<&Slot> {
        match self.entries.get(key) {
            Some(e) if e.generation == generation => e.slot.as_ref(),
            _ => None,
        }
    }

    /// As [`Slots::get`], mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize, generation: u32) -> Option<&mut Slot> {
        match self.entries.get_mut(key) {
            Some(e) if e.generation == generation => e.slot.as_mut(),
            _ => None,
        }
    }

    /// Frees `key`; its slot, if it held one.
    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> Option<Slot> {
        let e = self.entries.get_mut(key)?;
        let slot = e.slot.take()?;
        e.next = self.free as u32;
        self.free = key;
        self.len -= 1;
        Some(slot)
    }

    /// Every held slot with its key and generation.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, u32, &Slot)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(k, e)| e.slot.as_ref().map(|s| (k, e.generation, s)))
    }

    /// Takes every slot out, leaving the table empty.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Slot> {
        self.free = 0;
        self.len = 0;
        self.entries.drain(..).filter_map(|e| e.slot)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;
    use crate::driver::Slot;

    fn done(res: i32) -> Slot {
        Slot::Done { res, flags: 0 }
    }

    fn res(s: Option<&Slot>) -> Option<i32> {
        match s {
            Some(Slot::Done { res, .. }) => Some(*res),
            _ => None,
        }
    }

    /// Keys are reused last-freed first; a look-up needs the generation the key was given.
    #[test]
    fn keys_are_reused_and_generations_checked() {
        let mut t = Slots::with_capacity(0);
        let a = t.insert(1, done(10));
        let b = t.insert(2, done(20));
        let c = t.insert(3, done(30));
        assert_eq!((a, b, c, t.len()), (0, 1, 2, 3));
        assert_eq!(res(t.get(b, 2)), Some(20));
        assert_eq!(res(t.get(b, 1)), None, "another generation");
        assert_eq!(res(t.remove(b).as_ref()), Some(20));
        assert!(t.remove(b).is_none(), "freed twice");
        assert_eq!(res(t.get(b, 2)), None);
        assert_eq!(res(t.remove(a).as_ref()), Some(10));
        assert_eq!(t.vacant_key(), a);
        assert_eq!(t.insert(4, done(40)), a);
        assert_eq!(t.insert(5, done(50)), b);
        assert_eq!(t.insert(6, done(60)), 3);
        assert_eq!(res(t.get(a, 4)), Some(40));
        assert_eq!(res(t.get(a, 1)), None, "the old op under a reused key");
        assert!(t.remove(99).is_none());
        let mut seen: Vec<_> = t.iter().map(|(k, g, _)| (k, g)).collect();
        seen.sort();
        assert_eq!(seen, [(0, 4), (1, 5), (2, 3), (3, 6)]);
        assert_eq!(t.drain().count(), 4);
        assert_eq!((t.len(), t.vacant_key(), t.iter().count()), (0, 0, 0));
        assert_eq!(t.insert(7, done(70)), 0);
    }
}
