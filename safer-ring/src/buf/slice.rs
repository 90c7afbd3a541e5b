//! `Slice<B>`: a range of an owned buffer, handed to an operation and back.

use std::ops::{Bound, RangeBounds};

use super::{IoBuf, IoBufMut};

/// A range `begin..end` of a buffer `B`, itself an owned buffer: writes send its initialized
/// bytes, reads fill it from `begin`. [`Slice::into_inner`] gives the whole buffer back.
///
/// # Examples
/// ```
/// use safer_ring::IoBuf;
/// let s = b"hello world".to_vec().slice(6..);
/// assert_eq!((s.begin(), s.end()), (6, 11));
/// assert_eq!(&s.into_inner()[..5], b"hello");
/// ```
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    pub(crate) fn new(buf: B, range: impl RangeBounds<usize>) -> Slice<B> {
        let total = buf.bytes_total();
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n.saturating_add(1),
            Bound::Excluded(&n) => n,
            Bound::Unbounded => total,
        };
        assert!(
            begin <= end && end <= total,
            "Slice range {begin}..{end} out of bounds for a buffer of {total} bytes"
        );
        Slice { buf, begin, end }
    }

    /// Start of the range in the buffer.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::IoBuf;
    /// assert_eq!(vec![0u8; 10].slice(4..).begin(), 4);
    /// ```
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// End of the range in the buffer.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::IoBuf;
    /// assert_eq!(Vec::<u8>::with_capacity(10).slice(..).end(), 10); // up to the capacity
    /// ```
    pub fn end(&self) -> usize {
        self.end
    }

    /// The whole buffer.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::IoBuf;
    /// let s = b"hello".to_vec().slice(1..3);
    /// assert_eq!(s.get_ref(), b"hello");
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.buf
    }

    /// The whole buffer back.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// use safer_ring::IoBuf;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     // Write the second half only, then get the whole Vec back.
    ///     let (n, part) = ring.write(&tx, b"skip|send".to_vec().slice(5..)).await;
    ///     assert_eq!(n?, 4);
    ///     assert_eq!(part.into_inner(), b"skip|send");
    ///     let (_, buf) = ring.read(&rx, Vec::with_capacity(8)).await;
    ///     assert_eq!(buf, b"send");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> B {
        self.buf
    }
}

// SAFETY: the range lies inside the buffer (checked in `new`), whose memory does not move (B's
// own contract); the initialized part of the range is a prefix of it.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr().wrapping_add(self.begin)
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

/// A read into a slice fills it from `begin`. The buffer's initialized length grows to the end
/// of what was read only when the slice starts inside (or right after) its initialized part:
/// bytes before `begin` must be initialized too before they can count as data.
// SAFETY: as above; `set_init` extends the buffer's initialized length to `begin + len` only
// when `..begin` already is initialized, and the caller guarantees `begin..begin + len`.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr().wrapping_add(self.begin)
    }
    unsafe fn set_init(&mut self, len: usize) {
        let init = self.buf.bytes_init();
        let upto = self.begin + len;
        if self.begin <= init && upto > init {
            // SAFETY: `..begin` is initialized (`begin <= init`), `begin..upto` by the caller.
            unsafe { self.buf.set_init(upto) };
        }
    }
}
