//! Buffers the kernel may read from or write into while an operation is in flight.
//!
//! Operations take buffers by value and give them back with the result, so the caller cannot
//! touch a buffer while the kernel owns it; the traits require that the memory does not move
//! when the buffer value moves (it lives on the heap).

mod aligned;
#[cfg(feature = "bytes")]
mod bytes;
mod fixed;
mod held;
mod owned;
mod slice;

pub use aligned::AlignedBuf;
pub(crate) use fixed::Shared as FixedShared;
pub use fixed::{FixedBuf, FixedBufPool};
pub(crate) use held::Held;
pub use owned::OwnedBuffer;
pub use slice::Slice;

/// What an operation on an owned buffer returns: its result and the buffer, handed back on
/// success and on error (`let (res, buf) = ring.read(&fd, buf).await;`).
pub type BufResult<T, B> = (std::io::Result<T>, B);

/// A buffer the kernel may read from (for writes and sends).
///
/// Implemented for `Vec<u8>`, `Box<[u8]>`, `&'static [u8]`, [`OwnedBuffer`], [`AlignedBuf`],
/// [`Slice`] and, with the `bytes` feature, `bytes::Bytes` and `bytes::BytesMut`.
///
/// # Examples
/// ```
/// use safer_ring::IoBuf;
/// let v = b"hello".to_vec();
/// assert_eq!(v.bytes_init(), 5); // what a write sends
/// let part = v.slice(1..3); // an owned range of it
/// assert_eq!(part.bytes_init(), 2);
/// ```
///
/// # Safety
/// `stable_ptr()` must point to `bytes_init()` initialized bytes that stay valid, at the same
/// address, while the value is moved around and until it is dropped or mutably accessed.
pub unsafe trait IoBuf: 'static {
    /// Start of the buffer's memory.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialized bytes (what a write sends).
    fn bytes_init(&self) -> usize;
    /// Total capacity in bytes (what a read may fill).
    fn bytes_total(&self) -> usize;

    /// The range `range` of this buffer as an owned buffer of its own (handed to an operation
    /// and back; [`Slice::into_inner`] returns the whole buffer).
    ///
    /// # Panics
    /// When the range is out of `0..=bytes_total()`, like slicing a `[u8]`.
    fn slice(self, range: impl std::ops::RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        Slice::new(self, range)
    }
}

/// A buffer the kernel may write into (for reads and receives).
///
/// # Examples
/// ```
/// use safer_ring::{IoBuf, IoBufMut};
/// let mut v: Vec<u8> = Vec::with_capacity(64);
/// assert_eq!((v.bytes_init(), v.bytes_total()), (0, 64)); // a read may fill all 64
/// // What a read does once the kernel reported 3 bytes written at the start:
/// // SAFETY: the pointer is valid for 64 bytes of writes.
/// unsafe { std::ptr::copy_nonoverlapping(b"abc".as_ptr(), v.stable_mut_ptr(), 3) };
/// // SAFETY: the first 3 bytes were just written.
/// unsafe { v.set_init(3) };
/// assert_eq!(v, b"abc");
/// ```
///
/// # Safety
/// As [`IoBuf`], and `stable_mut_ptr()` must be valid for writes of `bytes_total()` bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the buffer's memory, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Records that the first `len` bytes are now initialized (after a read of `len` bytes).
    ///
    /// # Safety
    /// The first `len` bytes (`len <= bytes_total()`) must really be initialized.
    unsafe fn set_init(&mut self, len: usize);
}

// SAFETY: a Vec's heap allocation does not move when the Vec value moves; `len` bytes are
// initialized.
unsafe impl IoBuf for Vec<u8> {
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

/// Reads fill a `Vec` from index 0 up to its capacity and set its length to the bytes read.
// SAFETY: the allocation is valid for writes of `capacity()` bytes.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        // SAFETY: the caller guarantees `len <= capacity` bytes are initialized.
        unsafe { self.set_len(len) };
    }
}

// SAFETY: a boxed slice's allocation does not move with the box; all of it is initialized.
unsafe impl IoBuf for Box<[u8]> {
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

/// A boxed slice keeps its length; the byte count of a read is in the result.
// SAFETY: the allocation is valid for writes of `len()` bytes and always initialized.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _len: usize) {}
}

// SAFETY: string literals live forever at a fixed address and are initialized.
unsafe impl IoBuf for &'static [u8] {
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

/// The writable memory of a caller's buffer, filled from its start by copies the driver makes
/// (provided-buffer receives), then committed as the buffer's initialized length.
///
/// The buffer's `IoBufMut` methods (user code) run in [`Spare::new`] and [`Spare::commit`],
/// never while the driver is borrowed; [`Spare::write`] is a bounds-checked copy.
pub(crate) struct Spare<'a, B: IoBufMut> {
    buf: &'a mut B,
    ptr: *mut u8,
    cap: usize,
    filled: usize,
}

impl<'a, B: IoBufMut> Spare<'a, B> {
    pub(crate) fn new(buf: &'a mut B) -> Spare<'a, B> {
        Spare {
            ptr: buf.stable_mut_ptr(),
            cap: buf.bytes_total(),
            filled: 0,
            buf,
        }
    }

    /// Copies at most `src.len()` bytes after those already written; returns the count.
    pub(crate) fn write(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.cap - self.filled);
        // SAFETY: `ptr` is valid for writes of `cap` bytes (IoBufMut's contract) while the
        // buffer is mutably borrowed by `self`, and `filled + n <= cap`; `src` is another
        // allocation (a provided buffer of the ring).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(self.filled), n) };
        self.filled += n;
        n
    }

    /// Bytes written so far.
    pub(crate) fn filled(&self) -> usize {
        self.filled
    }

    /// Marks the bytes written as the buffer's initialized contents; returns their count.
    pub(crate) fn commit(self) -> usize {
        // SAFETY: `write` initialized exactly the first `filled <= cap` bytes.
        unsafe { self.buf.set_init(self.filled) };
        self.filled
    }
}
