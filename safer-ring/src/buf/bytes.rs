//! `IoBuf` for `bytes::Bytes` and `IoBuf` + `IoBufMut` for `bytes::BytesMut` (feature `bytes`).
//!
//! Both keep their bytes in a separate allocation (or in static memory), so moving the handle
//! into an operation does not move the bytes the kernel reads or writes.

use bytes::{Bytes, BytesMut};

use super::{IoBuf, IoBufMut};

/// A `Bytes` is read-only: sends and writes take its `len()` bytes, and a `Bytes` that is a
/// slice of a bigger one (`Bytes::slice`) sends only its own part. With [`IoBuf`] in scope,
/// `bytes.slice(..)` calls [`IoBuf::slice`] (it takes `self`, so method lookup finds it first);
/// write `Bytes::slice(&bytes, ..)` for the `bytes` one.
// SAFETY: a `Bytes` points into static memory or a reference-counted heap allocation that stays
// put while any handle to it lives; its `len()` bytes are initialized and never written while
// shared (`Bytes` gives no mutable access).
unsafe impl IoBuf for Bytes {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

/// Writes send `len()` bytes; reads fill a `BytesMut` from index 0 up to its capacity and set
/// its length to the bytes read, as for `Vec<u8>`.
// SAFETY: a `BytesMut` owns `capacity()` bytes from `as_ptr()` exclusively (a split-off part
// gets a disjoint range) in a heap allocation that does not move with the handle; `len()` of
// them are initialized.
unsafe impl IoBuf for BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: `as_mut_ptr()` is valid for writes of `capacity()` bytes (as above).
unsafe impl IoBufMut for BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        // SAFETY: the caller guarantees `len <= capacity()` bytes are initialized.
        unsafe { self.set_len(len) };
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use crate::buf::{IoBuf, IoBufMut};

    #[test]
    fn a_sliced_bytes_describes_only_its_part() {
        let all = Bytes::from_static(b"hello world");
        // `all.slice(..)` would be `IoBuf::slice` here (by-value trait methods are found
        // before `Bytes::slice(&self)`), hence the path.
        let part = Bytes::slice(&all, 6..);
        assert_eq!(part.stable_ptr(), all[6..].as_ptr());
        assert_eq!((part.bytes_init(), part.bytes_total()), (5, 5));
    }

    #[test]
    fn bytes_mut_is_filled_from_its_start_up_to_its_capacity() {
        let mut b = BytesMut::with_capacity(16);
        b.extend_from_slice(b"ab");
        let cap = b.bytes_total();
        assert!(cap >= 16);
        let ptr = b.stable_mut_ptr();
        // SAFETY: `ptr` is valid for `cap` bytes (IoBufMut).
        unsafe { std::ptr::write_bytes(ptr, b'x', cap) };
        // SAFETY: all `cap` bytes were just written.
        unsafe { b.set_init(cap) };
        assert_eq!(b.len(), cap);
        assert!(b.iter().all(|&c| c == b'x'));
    }
}
