//! Registered (fixed) buffers: one page-aligned region cut into equal buffers, registered with
//! a ring's kernel once so `read_fixed_at`/`write_fixed_at` skip the per-op page pinning.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::fmt;
use std::ptr::NonNull;
use std::rc::Rc;

use super::{IoBuf, IoBufMut};
use crate::error::SaferRingError;

/// The kernel's limits (`IORING_MAX_REG_BUFFERS`, one buffer at most 1 GiB).
pub(crate) const MAX_BUFFERS: usize = 1 << 14;
const MAX_SIZE: usize = 1 << 30;
const PAGE: usize = 4096;

/// The memory of a pool and its free list, shared by the pool, its buffers and the ring that
/// registered it (which keeps it alive while the kernel may use it).
pub(crate) struct Shared {
    base: NonNull<u8>,
    layout: Layout,
    size: usize,
    count: usize,
    /// Indices of buffers nobody holds. A `Cell` (take, change, put back): returning a
    /// buffer from its `Drop` can never meet a borrow and panic.
    free: Cell<Vec<u16>>,
}

impl Shared {
    fn new(count: usize, size: usize) -> crate::Result<Shared> {
        if !(1..=MAX_BUFFERS).contains(&count) {
            return Err(SaferRingError::InvalidConfig {
                field: "count",
                value: count.to_string(),
                expected: "1 to 16384 buffers (the kernel's IORING_MAX_REG_BUFFERS)",
            });
        }
        if !(1..=MAX_SIZE).contains(&size) {
            return Err(SaferRingError::InvalidConfig {
                field: "size",
                value: size.to_string(),
                expected: "1 byte to 1 GiB (1073741824) per buffer",
            });
        }
        let too_large = || SaferRingError::InvalidConfig {
            field: "count * size",
            value: format!("{count} * {size}"),
            expected: "a total that fits in memory",
        };
        let total = count
            .checked_mul(size)
            .and_then(|t| t.checked_next_multiple_of(PAGE))
            .ok_or_else(too_large)?;
        let layout = Layout::from_size_align(total, PAGE).map_err(|_| too_large())?;
        // SAFETY: the size is at least one page, not zero.
        let p = unsafe { alloc::alloc_zeroed(layout) };
        // A size within the limits may still be more than the allocator gives: an error, not
        // `handle_alloc_error` (which aborts the process).
        let base = NonNull::new(p).ok_or_else(|| SaferRingError::InvalidConfig {
            field: "count * size",
            value: format!("{count} * {size}"),
            expected: "a total the allocator can provide (the allocation failed)",
        })?;
        // Highest index last taken first: `pop` hands out 0, 1, 2, ...
        let free = (0..count as u16).rev().collect();
        Ok(Shared {
            base,
            layout,
            size,
            count,
            free: Cell::new(free),
        })
    }

    fn ptr(&self, index: u16) -> *mut u8 {
        // SAFETY: `index < count`, so the offset stays inside the allocation.
        unsafe { self.base.as_ptr().add(usize::from(index) * self.size) }
    }

    /// The iovecs to register: one per buffer.
    pub(crate) fn iovecs(&self) -> Vec<libc::iovec> {
        (0..self.count as u16)
            .map(|i| libc::iovec {
                iov_base: self.ptr(i).cast(),
                iov_len: self.size,
            })
            .collect()
    }

    fn with_free<R>(&self, f: impl FnOnce(&mut Vec<u16>) -> R) -> R {
        let mut v = self.free.take();
        let r = f(&mut v);
        self.free.set(v);
        r
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. Only dropped when no buffer, pool or ring
        // registration holds it, so neither the kernel nor a `FixedBuf` can use it any more.
        unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

/// A set of equal buffers registered with one ring (`IORING_REGISTER_BUFFERS`), from
/// [`Ring::register_buffers`](crate::RingRef::register_buffers).
///
/// Take a buffer with [`try_take`](Self::try_take), hand it to
/// [`read_fixed_at`](crate::RingRef::read_fixed_at) / [`write_fixed_at`](crate::RingRef::write_fixed_at)
/// (or any operation: a [`FixedBuf`] is an ordinary owned buffer too); it returns to the pool
/// when dropped, including when the operation that holds it completes after its future was
/// dropped. Cheap to clone; not `Send` (like the ring).
///
/// On a ring that has no registration for it (the epoll backend, `RegisteredBuffers` turned
/// off or refused by the kernel, or another ring) the fixed operations run as plain reads and
/// writes of the same memory: same bytes, same results.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let pool = ring.register_buffers(4, 4096)?;
/// let mut buf = pool.try_take().expect("4 free");
/// buf.extend_from_slice(b"hello")?;
/// let (rx, tx) = ring.pipe()?;
/// let (n, buf) = ring.block_on(ring.write_fixed_at(&tx, buf, None));
/// assert_eq!(n?, 5);
/// drop(buf); // back in the pool
/// assert_eq!(pool.available(), 4);
/// # let _ = rx;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct FixedBufPool {
    shared: Rc<Shared>,
}

impl FixedBufPool {
    pub(crate) fn new(count: usize, size: usize) -> crate::Result<FixedBufPool> {
        Ok(FixedBufPool {
            shared: Rc::new(Shared::new(count, size)?),
        })
    }

    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    /// A free buffer (empty: length 0, capacity [`buffer_size`](Self::buffer_size)), or `None`
    /// when every buffer is held.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let pool = ring.register_buffers(1, 512)?;
    /// let held = pool.try_take().unwrap();
    /// assert!(pool.try_take().is_none());
    /// drop(held);
    /// assert!(pool.try_take().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_take(&self) -> Option<FixedBuf> {
        let index = self.shared.with_free(|v| v.pop())?;
        Some(FixedBuf {
            shared: self.shared.clone(),
            index,
            len: 0,
        })
    }

    /// Buffers not held right now.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// assert_eq!(ring.register_buffers(3, 64)?.available(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn available(&self) -> usize {
        self.shared.with_free(|v| v.len())
    }

    /// How many buffers the pool has.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// assert_eq!(ring.register_buffers(3, 64)?.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty: `count` is at least 1
    pub fn len(&self) -> usize {
        self.shared.count
    }

    /// The capacity of each buffer.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// assert_eq!(ring.register_buffers(3, 64)?.buffer_size(), 64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn buffer_size(&self) -> usize {
        self.shared.size
    }
}

impl fmt::Debug for FixedBufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBufPool")
            .field("len", &self.len())
            .field("available", &self.available())
            .field("buffer_size", &self.buffer_size())
            .finish()
    }
}

/// One buffer of a [`FixedBufPool`]; back in the pool when dropped.
///
/// Its memory is zeroed when the pool is made; [`len`](Self::len) counts the bytes that hold
/// data (reads set it, writes send that many). Buffers of a pool whose size is a multiple of
/// 4096 are 4096-aligned, as `O_DIRECT` needs.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let pool = ring.register_buffers(1, 4096)?;
/// let mut buf = pool.try_take().unwrap();
/// buf.extend_from_slice(b"abc")?;
/// assert_eq!((&buf[..], buf.capacity(), buf.index()), (&b"abc"[..], 4096, 0));
/// assert_eq!(buf.as_ptr() as usize % 4096, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FixedBuf {
    shared: Rc<Shared>,
    index: u16,
    len: usize,
}

impl FixedBuf {
    /// Its index in the pool (the kernel's registered-buffer index).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Bytes that hold data.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte holds data.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer's size (its pool's [`buffer_size`](FixedBufPool::buffer_size)).
    pub fn capacity(&self) -> usize {
        self.shared.size
    }

    /// Sets the length to `len` (the bytes past the old length keep what they held: they are
    /// initialized, zeroed at creation or written since).
    ///
    /// # Errors
    /// [`SaferRingError::InvalidConfig`] when `len` exceeds the capacity.
    pub fn set_len(&mut self, len: usize) -> crate::Result<()> {
        if len > self.capacity() {
            return Err(SaferRingError::InvalidConfig {
                field: "len",
                value: len.to_string(),
                expected: "at most the buffer's capacity",
            });
        }
        self.len = len;
        Ok(())
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// [`SaferRingError::InvalidConfig`] when it does not fit (the buffer is unchanged).
    pub fn extend_from_slice(&mut self, data: &[u8]) -> crate::Result<()> {
        let end = self.len.saturating_add(data.len());
        if end > self.capacity() {
            return Err(SaferRingError::InvalidConfig {
                field: "data length",
                value: data.len().to_string(),
                expected: "no more than the buffer's free capacity",
            });
        }
        let old = self.len;
        self.len = end;
        self[old..].copy_from_slice(data);
        Ok(())
    }

    /// The pool's shared state, to check which ring registered it.
    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    fn whole(&self) -> *mut u8 {
        self.shared.ptr(self.index)
    }
}

impl std::ops::Deref for FixedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: this buffer's `len` bytes are initialized (zeroed at creation) and nothing
        // else holds index `self.index` while `self` exists.
        unsafe { std::slice::from_raw_parts(self.whole(), self.len) }
    }
}

impl std::ops::DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `deref`, and `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.whole(), self.len) }
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        // Capacity for every index was reserved at creation: no allocation, no panic.
        let index = self.index;
        self.shared.with_free(|v| v.push(index));
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("index", &self.index)
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

// SAFETY: the memory belongs to the pool's allocation, which `self.shared` keeps alive and in
// place; index `self.index` is held by this value alone (taken off the free list), so nothing
// else reads or writes it; `len <= size` bytes are initialized (zeroed at creation).
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.whole()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.shared.size
    }
}

// SAFETY: as `IoBuf`; the whole `size` bytes of this index are writable.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.whole()
    }
    unsafe fn set_init(&mut self, n: usize) {
        self.len = n.min(self.shared.size);
    }
}
