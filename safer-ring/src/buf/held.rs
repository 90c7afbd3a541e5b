//! `Held<B>`: a buffer while the kernel may hold a pointer into it.

use std::mem::{ManuallyDrop, MaybeUninit};

/// Keeps a buffer value inside an operation without asserting uniqueness of its memory when
/// the operation moves.
///
/// Moving a `Box` (a `Box<[u8]>` buffer, or the one inside `OwnedBuffer`) tells Rust's aliasing
/// model that the box is the only way to reach its memory, which invalidates the raw pointer the
/// kernel (or the epoll backend's syscall) was given earlier; Miri reports it under Stacked and
/// Tree Borrows. A `MaybeUninit` field is opaque to that model: the buffer is reborrowed only
/// when the op builds its pointers and when it hands the buffer back, after the kernel is done.
pub(crate) struct Held<B>(MaybeUninit<B>);

impl<B> Held<B> {
    pub(crate) fn new(buf: B) -> Held<B> {
        Held(MaybeUninit::new(buf))
    }

    pub(crate) fn get(&self) -> &B {
        // SAFETY: initialized in `new`, and only taken out by `into_inner`, which consumes self.
        unsafe { self.0.assume_init_ref() }
    }

    pub(crate) fn get_mut(&mut self) -> &mut B {
        // SAFETY: as in `get`.
        unsafe { self.0.assume_init_mut() }
    }

    pub(crate) fn into_inner(self) -> B {
        let this = ManuallyDrop::new(self);
        // SAFETY: initialized (as in `get`); `this` is never dropped, so the value is read once.
        unsafe { this.0.assume_init_read() }
    }
}

impl<B> Drop for Held<B> {
    fn drop(&mut self) {
        // SAFETY: initialized (as in `get`); dropped once, here.
        unsafe { self.0.assume_init_drop() }
    }
}

/// The pattern of an op's life without the kernel: a pointer is taken, the op (and the held
/// buffer in it) moves, "the kernel" writes through the pointer, the buffer is handed back.
/// Run under Miri in CI: a plain `Box<[u8]>` field fails this under Stacked and Tree Borrows.
#[cfg(test)]
mod tests {
    use super::Held;
    use crate::buf::{IoBufMut, OwnedBuffer, Spare};

    fn round_trip<B: IoBufMut>(buf: B) -> B {
        let mut held = Held::new(buf);
        let ptr = held.get_mut().stable_mut_ptr();
        let len = held.get().bytes_total();
        let moved = Box::new(held); // into the ring's slab, say
        // SAFETY: `ptr` is valid for `len` bytes while the buffer is held (IoBufMut).
        unsafe { std::ptr::write_bytes(ptr, 0xAB, len) };
        let mut back = moved.into_inner();
        // SAFETY: all `len` bytes were just written.
        unsafe { back.set_init(len) };
        back
    }

    #[test]
    fn pointers_stay_valid_while_held_and_moved() {
        let b = round_trip(vec![0u8; 16].into_boxed_slice());
        assert!(b.iter().all(|&x| x == 0xAB));
        let o = round_trip(OwnedBuffer::new(16));
        assert_eq!(o.len(), 16);
        assert!(o.iter().all(|&x| x == 0xAB));
        let v = round_trip(Vec::with_capacity(16));
        assert_eq!(v, vec![0xAB; 16]);
    }

    #[test]
    fn spare_writes_within_capacity_and_commits_what_it_wrote() {
        let mut v: Vec<u8> = Vec::with_capacity(5);
        let mut spare = Spare::new(&mut v);
        assert_eq!(spare.write(b"abc"), 3);
        assert_eq!(spare.write(b"defg"), 2, "clamped to the capacity");
        assert_eq!(spare.write(b"h"), 0);
        assert_eq!(spare.commit(), 5);
        assert_eq!(v, b"abcde");
        let mut empty = OwnedBuffer::new(0);
        assert_eq!(Spare::new(&mut empty).commit(), 0);
    }

    #[test]
    fn dropping_a_held_buffer_drops_it_once() {
        use std::rc::Rc;
        let rc = Rc::new(());
        let held = Held::new(rc.clone());
        assert_eq!(Rc::strong_count(&rc), 2);
        drop(held);
        assert_eq!(Rc::strong_count(&rc), 1);
        let back = Held::new(rc.clone()).into_inner();
        assert_eq!(Rc::strong_count(&rc), 2);
        drop(back);
        assert_eq!(Rc::strong_count(&rc), 1);
    }
}
