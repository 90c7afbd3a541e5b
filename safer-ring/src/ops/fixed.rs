//! Reads and writes on registered buffers ([`FixedBufPool`]).

use std::io;
use std::time::Instant;

use crate::RingRef;
use crate::backend::OpKind;
use crate::buf::{BufResult, FixedBuf, FixedBufPool, IoBuf, IoBufMut};
use crate::driver::op::{Op, OpData};
use crate::enhanced::PathTaken;
use crate::features::Feature;
use crate::io::{AsIoFd, SharedFd};

/// A read into a [`FixedBuf`]; see [`Ring::read_fixed_at`](crate::RingRef::read_fixed_at).
///
/// # Examples
/// ```
/// use safer_ring::ops::ReadFixed;
/// # let ring = safer_ring::Ring::new(8)?;
/// let pool = ring.register_buffers(1, 64)?;
/// let (rx, tx) = ring.pipe()?;
/// ring.block_on(ring.write(&tx, b"x".to_vec())).0?;
/// let op: safer_ring::Op<'_, ReadFixed> = ring.read_fixed_at(&rx, pool.try_take().unwrap(), None);
/// assert_eq!(&ring.block_on(op).1[..], b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadFixed {
    fd: SharedFd,
    buf: FixedBuf,
    offset: u64,
    /// The registered index, when this ring registered the buffer's pool.
    index: Option<u16>,
    /// For the path counters (`enhancement_stats(RegisteredBuffers)`).
    ring: RingRef,
    start: Instant,
}

// SAFETY: the buffer's memory is the pool's allocation, kept alive by `buf` (and, while
// registered, by the ring); it does not move with `self`. `fd` holds the fd.
unsafe impl OpData for ReadFixed {
    type Output = BufResult<usize, FixedBuf>;
    fn kind(&mut self) -> OpKind {
        let (fd, buf, len, offset) = (
            self.fd.raw(),
            self.buf.stable_mut_ptr(),
            self.buf.bytes_total() as u32,
            self.offset,
        );
        match self.index {
            Some(index) => OpKind::ReadFixed {
                fd,
                buf,
                len,
                offset,
                index,
            },
            None => OpKind::Read {
                fd,
                buf,
                len,
                offset,
            },
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> Self::Output {
        if let Ok(n) = res {
            // SAFETY: the kernel reported writing `n` bytes at the buffer's start.
            unsafe { self.buf.set_init(n as usize) };
        }
        record(&self.ring, self.index, self.start);
        (res.map(|n| n as usize), self.buf)
    }
}

/// A write from a [`FixedBuf`]; see [`Ring::write_fixed_at`](crate::RingRef::write_fixed_at).
///
/// # Examples
/// ```
/// use safer_ring::ops::WriteFixed;
/// # let ring = safer_ring::Ring::new(8)?;
/// let pool = ring.register_buffers(1, 64)?;
/// let mut buf = pool.try_take().unwrap();
/// buf.extend_from_slice(b"x")?;
/// let (_rx, tx) = ring.pipe()?;
/// let op: safer_ring::Op<'_, WriteFixed> = ring.write_fixed_at(&tx, buf, None);
/// assert_eq!(ring.block_on(op).0?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriteFixed {
    fd: SharedFd,
    buf: FixedBuf,
    offset: u64,
    index: Option<u16>,
    /// For the path counters (`enhancement_stats(RegisteredBuffers)`).
    ring: RingRef,
    start: Instant,
}

// SAFETY: as `ReadFixed`.
unsafe impl OpData for WriteFixed {
    type Output = BufResult<usize, FixedBuf>;
    fn kind(&mut self) -> OpKind {
        let (fd, buf, len, offset) = (
            self.fd.raw(),
            self.buf.stable_ptr(),
            self.buf.bytes_init() as u32,
            self.offset,
        );
        match self.index {
            Some(index) => OpKind::WriteFixed {
                fd,
                buf,
                len,
                offset,
                index,
            },
            None => OpKind::Write {
                fd,
                buf,
                len,
                offset,
            },
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        record(&self.ring, self.index, self.start);
        (res.map(|n| n as usize), self.buf)
    }
}

/// Counts the path in the ring's stats (`enhancement_stats(RegisteredBuffers)`).
fn record(ring: &RingRef, index: Option<u16>, start: Instant) {
    let path = match index {
        Some(_) => PathTaken::Native,
        None => PathTaken::Fallback,
    };
    ring.record(Feature::RegisteredBuffers, path, start.elapsed());
}

impl RingRef {
    /// Registers `count` buffers of `size` bytes each with this ring's kernel
    /// (`IORING_REGISTER_BUFFERS`: their pages are pinned once, not per operation), for
    /// [`read_fixed_at`](Self::read_fixed_at) and [`write_fixed_at`](Self::write_fixed_at).
    /// One pool per ring. The memory is zeroed and page-aligned; it stays allocated while the
    /// pool, a buffer of it or this ring's registration exists.
    ///
    /// Where the ring cannot register them (the epoll backend, [`Feature::RegisteredBuffers`]
    /// turned off or not detected, or the kernel refusing, e.g. over `RLIMIT_MEMLOCK` on
    /// kernels before 5.12) the pool is made all the same and the fixed operations run as
    /// plain reads and writes (counted as fallbacks in
    /// [`enhancement_stats`](Self::enhancement_stats)); in strict mode a refusal is an error.
    ///
    /// # Errors
    /// `InvalidConfig` for `count` outside 1..=16384 or `size` outside 1 byte..=1 GiB (the
    /// kernel's limits), or a second pool on this ring;
    /// `RegistrationFailed` when the kernel refused and the configuration is strict about
    /// `RegisteredBuffers`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let pool = ring.register_buffers(8, 4096)?;
    /// assert_eq!((pool.len(), pool.buffer_size()), (8, 4096));
    /// println!("registered: {}", ring.uses_native(Feature::RegisteredBuffers));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_buffers(&self, count: usize, size: usize) -> crate::Result<FixedBufPool> {
        let pool = FixedBufPool::new(count, size)?;
        if !self.claim_fixed_pool() {
            return Err(crate::SaferRingError::InvalidConfig {
                field: "register_buffers",
                value: "a second call on this ring".into(),
                expected: "one buffer pool per ring (share it: `FixedBufPool` is cheap to clone)",
            });
        }
        if !self.uses_native(Feature::RegisteredBuffers) {
            return Ok(pool);
        }
        match self.driver().register_buffers(pool.shared()) {
            Ok(()) => Ok(pool),
            Err(e) if self.strict_about(Feature::RegisteredBuffers) => {
                Err(crate::SaferRingError::RegistrationFailed {
                    what: "the buffers",
                    source: e,
                })
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    count,
                    size,
                    "registering buffers failed; fixed reads and writes on this ring run as plain ones"
                );
                Ok(pool)
            }
        }
    }

    /// Reads into registered buffer `buf` at `offset` (`None`: the fd's current position),
    /// filling it from its start up to its capacity; the buffer comes back with the result.
    /// `IORING_OP_READ_FIXED` when this ring registered `buf`'s pool, else a plain read of the
    /// same memory.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-read-fixed-{}", std::process::id()));
    /// std::fs::write(&path, b"hello world")?;
    /// let pool = ring.register_buffers(2, 4096)?;
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &safer_ring::OpenOptions::new().read(true)).await?;
    ///     let (n, buf) = ring.read_fixed_at(&file, pool.try_take().unwrap(), Some(6)).await;
    ///     assert_eq!((n?, &buf[..]), (5, &b"world"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_read_fixed")]
    pub fn read_fixed_at<F: AsIoFd>(
        &self,
        file: &F,
        buf: FixedBuf,
        offset: Option<u64>,
    ) -> Op<'_, ReadFixed> {
        let fd = file.shared_fd();
        let (offset, pos) = crate::ops::position(offset);
        let check = pos.and_then(|()| self.prepare(fd));
        let op = ReadFixed {
            fd: fd.clone(),
            index: self.fixed_index(&buf),
            buf,
            offset,
            ring: self.clone(),
            start: Instant::now(),
        };
        Op::checked(self, op, check)
    }

    /// Writes registered buffer `buf`'s bytes ([`FixedBuf::len`]) at `offset` (`None`: the
    /// fd's current position, or appending); the buffer comes back with the result.
    /// `IORING_OP_WRITE_FIXED` when this ring registered `buf`'s pool, else a plain write.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let pool = ring.register_buffers(1, 4096)?;
    /// let (rx, tx) = ring.pipe()?;
    /// let mut buf = pool.try_take().unwrap();
    /// buf.extend_from_slice(b"ping")?;
    /// let (n, buf) = ring.block_on(ring.write_fixed_at(&tx, buf, None));
    /// assert_eq!(n?, 4);
    /// let (n, buf) = ring.block_on(ring.read_fixed_at(&rx, buf, None));
    /// assert_eq!((n?, &buf[..]), (4, &b"ping"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_write_fixed")]
    pub fn write_fixed_at<F: AsIoFd>(
        &self,
        file: &F,
        buf: FixedBuf,
        offset: Option<u64>,
    ) -> Op<'_, WriteFixed> {
        let fd = file.shared_fd();
        let (offset, pos) = crate::ops::position(offset);
        let check = pos.and_then(|()| self.prepare(fd));
        let op = WriteFixed {
            fd: fd.clone(),
            index: self.fixed_index(&buf),
            buf,
            offset,
            ring: self.clone(),
            start: Instant::now(),
        };
        Op::checked(self, op, check)
    }

    /// `buf`'s registered index when this ring registered its pool: only then does the index
    /// name `buf`'s memory in this ring's kernel table.
    fn fixed_index(&self, buf: &FixedBuf) -> Option<u16> {
        self.driver()
            .has_buffers(buf.shared())
            .then_some(buf.index())
    }
}
