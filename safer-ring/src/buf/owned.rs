//! `OwnedBuffer`: a fixed-capacity heap buffer that tracks how much of it holds data.

use std::ops::{Deref, DerefMut};

use super::{IoBuf, IoBufMut};

/// A zero-initialized, fixed-capacity heap buffer with a fill length.
///
/// Reads fill it from the start and set the length; writes send `len()` bytes.
///
/// # Examples
/// ```
/// let mut buf = safer_ring::OwnedBuffer::from(&b"hello"[..]);
/// assert_eq!(&buf[..], b"hello");
/// buf.clear();
/// assert_eq!(buf.len(), 0);
/// assert_eq!(buf.capacity(), 5);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedBuffer {
    mem: Box<[u8]>,
    len: usize,
}

impl OwnedBuffer {
    /// A buffer of `capacity` zeroed bytes and length 0.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OwnedBuffer;
    /// let buf = OwnedBuffer::new(1024);
    /// assert_eq!((buf.len(), buf.capacity()), (0, 1024));
    /// ```
    pub fn new(capacity: usize) -> Self {
        OwnedBuffer {
            mem: vec![0; capacity].into_boxed_slice(),
            len: 0,
        }
    }

    /// Bytes that hold data.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OwnedBuffer;
    /// assert_eq!(OwnedBuffer::from(&b"abc"[..]).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte holds data.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OwnedBuffer;
    /// assert!(OwnedBuffer::new(16).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total bytes.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OwnedBuffer;
    /// assert_eq!(OwnedBuffer::new(16).capacity(), 16);
    /// ```
    pub fn capacity(&self) -> usize {
        self.mem.len()
    }

    /// Sets the length to 0 (the memory stays).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OwnedBuffer;
    /// let mut buf = OwnedBuffer::from(vec![1, 2, 3]);
    /// buf.clear();
    /// assert!(buf.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Sets the length; `None` if `len` exceeds the capacity.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OwnedBuffer;
    /// let mut buf = OwnedBuffer::new(4);
    /// assert_eq!(buf.set_len(4), Some(()));
    /// assert_eq!(&buf[..], &[0, 0, 0, 0]);
    /// assert_eq!(buf.set_len(5), None);
    /// ```
    pub fn set_len(&mut self, len: usize) -> Option<()> {
        (len <= self.mem.len()).then(|| self.len = len)
    }

    /// The whole memory, whatever the length.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OwnedBuffer;
    /// let mut buf = OwnedBuffer::new(4);
    /// buf.as_full_slice_mut().copy_from_slice(b"abcd");
    /// buf.set_len(2);
    /// assert_eq!(&buf[..], b"ab");
    /// ```
    pub fn as_full_slice_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }
}

impl From<&[u8]> for OwnedBuffer {
    fn from(data: &[u8]) -> Self {
        OwnedBuffer {
            mem: data.into(),
            len: data.len(),
        }
    }
}

impl From<Vec<u8>> for OwnedBuffer {
    fn from(data: Vec<u8>) -> Self {
        let len = data.len();
        OwnedBuffer {
            mem: data.into_boxed_slice(),
            len,
        }
    }
}

impl Deref for OwnedBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.mem[..self.len]
    }
}

impl DerefMut for OwnedBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.mem[..self.len]
    }
}

impl std::fmt::Debug for OwnedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedBuffer")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

// SAFETY: the boxed slice does not move with the value; `len <= capacity` bytes are data and
// all bytes are initialized (zeroed at creation).
unsafe impl IoBuf for OwnedBuffer {
    fn stable_ptr(&self) -> *const u8 {
        self.mem.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.mem.len()
    }
}

// SAFETY: the memory is valid for writes of its full length.
unsafe impl IoBufMut for OwnedBuffer {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.mem.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        self.len = len.min(self.mem.len());
    }
}
