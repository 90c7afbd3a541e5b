//! `AlignedBuf`: zeroed heap memory at a chosen alignment, for `O_DIRECT` I/O.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::{IoBuf, IoBufMut};
use crate::error::SaferRingError;

/// A fixed-capacity buffer whose start is aligned to `alignment` bytes and whose capacity is a
/// multiple of it, as `O_DIRECT` reads and writes need (4096 covers every common block size).
///
/// The memory is zeroed at creation, so all of it is initialized; [`len`](Self::len) counts
/// the bytes that hold data: reads fill the buffer from its start and set it, writes send
/// `len()` bytes. To write whole blocks, fill it with [`resize`](Self::resize) or
/// [`extend_from_slice`](Self::extend_from_slice).
///
/// # Examples
/// ```
/// use safer_ring::AlignedBuf;
/// let mut buf = AlignedBuf::new(1000)?; // rounded up to one 4096-byte block
/// assert_eq!((buf.capacity(), buf.alignment(), buf.len()), (4096, 4096, 0));
/// assert_eq!(buf.as_ptr() as usize % 4096, 0);
/// buf.extend_from_slice(b"header")?;
/// buf.resize(4096, 0)?;
/// assert_eq!(&buf[..6], b"header");
///
/// // A bad alignment is an error, not a panic.
/// let err = AlignedBuf::with_alignment(4096, 3000).unwrap_err();
/// assert!(err.to_string().contains("alignment = 3000"), "{err}");
/// # Ok::<(), safer_ring::SaferRingError>(())
/// ```
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    align: usize,
    len: usize,
}

/// `O_DIRECT`'s strictest common requirement: the page size and the usual logical block size.
const DEFAULT_ALIGN: usize = 4096;
/// A huge page. `O_DIRECT` needs at most the page size; a larger value is most likely a
/// mistake, and one as large as the capacity would make an enormous allocation.
const MAX_ALIGN: usize = 2 << 20;

impl AlignedBuf {
    /// A zeroed buffer of at least `capacity` bytes (rounded up to a multiple of 4096),
    /// aligned to 4096 bytes, with length 0.
    ///
    /// # Errors
    /// [`SaferRingError::InvalidConfig`] when the rounded capacity does not fit in memory.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let buf = AlignedBuf::new(8192)?;
    /// assert_eq!((buf.capacity(), buf.alignment()), (8192, 4096));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(capacity: usize) -> crate::Result<AlignedBuf> {
        AlignedBuf::with_alignment(capacity, DEFAULT_ALIGN)
    }

    /// A zeroed buffer of at least `capacity` bytes (rounded up to a multiple of `alignment`),
    /// aligned to `alignment` bytes, with length 0.
    ///
    /// # Errors
    /// [`SaferRingError::InvalidConfig`] when `alignment` is not a power of two (0 included)
    /// or above 2 MiB, or the rounded capacity does not fit in memory.
    ///
    /// # Examples
    /// ```
    /// let buf = safer_ring::AlignedBuf::with_alignment(1000, 512)?;
    /// assert_eq!(buf.capacity(), 1024);
    /// assert!(safer_ring::AlignedBuf::with_alignment(512, 0).is_err());
    /// # Ok::<(), safer_ring::SaferRingError>(())
    /// ```
    pub fn with_alignment(capacity: usize, alignment: usize) -> crate::Result<AlignedBuf> {
        if !alignment.is_power_of_two() || alignment > MAX_ALIGN {
            return Err(SaferRingError::InvalidConfig {
                field: "alignment",
                value: alignment.to_string(),
                expected: "a power of two from 1 to 2 MiB (2097152), e.g. 512 or 4096",
            });
        }
        let too_large = || SaferRingError::InvalidConfig {
            field: "capacity",
            value: capacity.to_string(),
            expected: "a size that, rounded up to the alignment, is at most isize::MAX bytes",
        };
        let cap = capacity
            .checked_next_multiple_of(alignment)
            .ok_or_else(too_large)?;
        let layout = Layout::from_size_align(cap, alignment).map_err(|_| too_large())?;
        let ptr = if cap == 0 {
            // Nothing to allocate; the pointer is only ever used for zero-length accesses.
            NonNull::new(std::ptr::without_provenance_mut(alignment)).expect("alignment > 0")
        } else {
            // SAFETY: the layout's size is not zero.
            let p = unsafe { alloc::alloc_zeroed(layout) };
            NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
        };
        Ok(AlignedBuf {
            ptr,
            cap,
            align: alignment,
            len: 0,
        })
    }

    /// Bytes that hold data.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let mut buf = AlignedBuf::new(4096)?;
    /// buf.extend_from_slice(b"abc")?;
    /// assert_eq!(buf.len(), 3); // what a write sends
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte holds data.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// assert!(AlignedBuf::new(4096)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total bytes, a multiple of [`alignment`](Self::alignment).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// assert_eq!(AlignedBuf::with_alignment(100, 512)?.capacity(), 512);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The alignment of the start (and the granularity of the capacity), in bytes.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// assert_eq!(AlignedBuf::with_alignment(4096, 512)?.alignment(), 512);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alignment(&self) -> usize {
        self.align
    }

    /// Start of the memory.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let buf = AlignedBuf::with_alignment(4096, 512)?;
    /// assert_eq!(buf.as_ptr() as usize % 512, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Sets the length to 0 (the memory and its contents stay).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let mut buf = AlignedBuf::new(4096)?;
    /// buf.resize(4096, 1)?;
    /// buf.clear();
    /// assert_eq!((buf.len(), buf.capacity()), (0, 4096));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Sets the length (the bytes keep whatever they hold: zeros or earlier data).
    ///
    /// # Errors
    /// [`SaferRingError::BufferTooLarge`] when `len` exceeds the capacity.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let mut buf = AlignedBuf::new(4096)?;
    /// buf.set_len(4096)?; // a whole block of zeros
    /// assert!(buf.iter().all(|&b| b == 0));
    /// assert!(buf.set_len(4097).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_len(&mut self, len: usize) -> crate::Result<()> {
        self.check_fits(len)?;
        self.len = len;
        Ok(())
    }

    /// Sets the length to `len`, filling bytes past the old length with `value`.
    ///
    /// # Errors
    /// [`SaferRingError::BufferTooLarge`] when `len` exceeds the capacity.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let mut buf = AlignedBuf::new(4096)?;
    /// buf.extend_from_slice(b"record")?;
    /// buf.resize(4096, b' ')?; // pad to the block for O_DIRECT
    /// assert_eq!(&buf[..8], b"record  ");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resize(&mut self, len: usize, value: u8) -> crate::Result<()> {
        self.check_fits(len)?;
        if len > self.len {
            let old = self.len;
            self.as_full_slice_mut()[old..len].fill(value);
        }
        self.len = len;
        Ok(())
    }

    /// Appends `data` after the current length.
    ///
    /// # Errors
    /// [`SaferRingError::BufferTooLarge`] when the result would exceed the capacity.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let mut buf = AlignedBuf::with_alignment(8, 8)?;
    /// buf.extend_from_slice(b"12345678")?;
    /// assert!(buf.extend_from_slice(b"9").is_err()); // full
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend_from_slice(&mut self, data: &[u8]) -> crate::Result<()> {
        let end = self.len.saturating_add(data.len());
        self.check_fits(end)?;
        let start = self.len;
        self.as_full_slice_mut()[start..end].copy_from_slice(data);
        self.len = end;
        Ok(())
    }

    /// The whole memory, whatever the length.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::AlignedBuf;
    /// let mut buf = AlignedBuf::new(4096)?;
    /// buf.as_full_slice_mut()[4095] = 1; // beyond len: memory only
    /// buf.set_len(4096)?;
    /// assert_eq!(buf[4095], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_full_slice_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is valid for reads and writes of `cap` initialized (zeroed) bytes, owned
        // by `self`, which `&mut self` borrows uniquely.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }

    fn check_fits(&self, len: usize) -> crate::Result<()> {
        if len > self.cap {
            return Err(SaferRingError::BufferTooLarge { len, max: self.cap });
        }
        Ok(())
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap != 0 {
            // SAFETY: allocated in `with_alignment` with exactly this size and alignment (which
            // `from_size_align` accepted then).
            unsafe {
                alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(self.cap, self.align),
                )
            };
        }
    }
}

// SAFETY: `AlignedBuf` owns its memory exclusively, like a `Box<[u8]>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads, like `&Box<[u8]>`.
unsafe impl Sync for AlignedBuf {}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len <= cap` bytes from `ptr` are initialized and owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.as_full_slice_mut()[..len]
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("capacity", &self.cap)
            .field("alignment", &self.align)
            .finish()
    }
}

// SAFETY: the heap block does not move with the value and lives until drop; all `cap` bytes
// are initialized (zeroed at creation), `len` of them are data.
unsafe impl IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.cap
    }
}

/// Reads fill it from the start and set the length to the bytes read.
// SAFETY: the memory is valid for writes of `cap` bytes.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        self.len = len.min(self.cap);
    }
}

/// Run under Miri in CI: allocation, alignment, bounds and deallocation of every shape.
#[cfg(test)]
mod tests {
    use super::AlignedBuf;
    use crate::SaferRingError;
    use crate::buf::{IoBuf, IoBufMut};

    #[test]
    fn capacity_is_rounded_up_and_the_start_aligned() {
        for (cap, align, want) in [(1, 4096, 4096), (4096, 4096, 4096), (4097, 4096, 8192)] {
            let b = AlignedBuf::with_alignment(cap, align).unwrap();
            assert_eq!((b.capacity(), b.alignment(), b.len()), (want, align, 0));
            assert_eq!(b.as_ptr() as usize % align, 0);
            assert!(b.as_ptr() == b.stable_ptr());
        }
        let small = AlignedBuf::with_alignment(10, 8).unwrap();
        assert_eq!(small.capacity(), 16);
        assert_eq!(small.as_ptr() as usize % 8, 0);
        assert_eq!(AlignedBuf::new(100).unwrap().capacity(), 4096);
    }

    #[test]
    fn a_zero_capacity_buffer_allocates_nothing_and_works() {
        let mut b = AlignedBuf::new(0).unwrap();
        assert_eq!((b.capacity(), b.bytes_total(), &b[..]), (0, 0, &[][..]));
        assert_eq!(b.as_ptr() as usize % 4096, 0);
        assert!(b.as_full_slice_mut().is_empty());
        assert!(b.extend_from_slice(b"").is_ok());
        assert!(b.extend_from_slice(b"x").is_err());
    }

    #[test]
    fn bad_alignments_and_sizes_are_errors_naming_the_value() {
        for bad in [0, 3, 4095, 6000, 4 << 20, 1 << 62, usize::MAX] {
            match AlignedBuf::with_alignment(4096, bad) {
                Err(SaferRingError::InvalidConfig { field, value, .. }) => {
                    assert_eq!((field, value), ("alignment", bad.to_string()))
                }
                other => panic!("alignment {bad}: {other:?}"),
            }
        }
        let huge = isize::MAX as usize;
        for (cap, align) in [(usize::MAX, 4096), (huge, 4096), (huge - 100, 2 << 20)] {
            match AlignedBuf::with_alignment(cap, align) {
                Err(SaferRingError::InvalidConfig { field, value, .. }) => {
                    assert_eq!((field, value), ("capacity", cap.to_string()))
                }
                other => panic!("capacity {cap}: {other:?}"),
            }
        }
    }

    #[test]
    fn length_follows_writes_and_stays_within_the_capacity() {
        let mut b = AlignedBuf::with_alignment(16, 16).unwrap();
        b.extend_from_slice(b"abc").unwrap();
        b.resize(6, b'z').unwrap();
        assert_eq!(&b[..], b"abczzz");
        b.resize(2, 0).unwrap();
        assert_eq!(&b[..], b"ab");
        assert!(matches!(
            b.extend_from_slice(&[0; 15]),
            Err(SaferRingError::BufferTooLarge { len: 17, max: 16 })
        ));
        assert!(b.set_len(17).is_err());
        b.set_len(16).unwrap();
        assert_eq!(
            &b[2..],
            &[b'c', b'z', b'z', b'z', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]
        );
        b.clear();
        assert!(b.is_empty());
        b[..].fill(1); // empty: touches nothing
        assert_eq!(b.as_full_slice_mut()[0], b'a');
    }

    #[test]
    fn kernel_style_fill_through_the_pointer_then_set_init() {
        let mut b = AlignedBuf::with_alignment(64, 64).unwrap();
        let ptr = b.stable_mut_ptr();
        let moved = Box::new(b); // the op moves into the ring's slab
        // SAFETY: valid for `bytes_total()` = 64 bytes while the buffer lives (IoBufMut).
        unsafe { std::ptr::write_bytes(ptr, 7, 64) };
        let mut b = *moved;
        // SAFETY: all 64 bytes were just written; more than the capacity is clamped.
        unsafe { b.set_init(100) };
        assert_eq!(b.len(), 64);
        assert!(b.iter().all(|&x| x == 7));
        assert_eq!(b.bytes_init(), 64);
        let dbg = format!("{b:?}");
        assert!(dbg.contains("alignment: 64"), "{dbg}");
    }
}
