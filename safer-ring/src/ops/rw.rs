//! read/write (explicit offset or current position) and readv/writev.

use std::io;

use crate::RingRef;
use crate::backend::OpKind;
use crate::buf::{BufResult, Held, IoBuf, IoBufMut};
use crate::driver::op::{Op, OpData};
use crate::io::{AsIoFd, SharedFd};
use crate::ops::{check_len, position, split_len};

/// A read into an owned buffer; see [`Ring::read_at`](crate::RingRef::read_at) and [`Ring::read`](crate::RingRef::read).
///
/// # Examples
/// ```
/// use safer_ring::ops::ReadAt;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (rx, tx) = ring.pipe()?;
/// ring.block_on(ring.write(&tx, b"x".to_vec())).0?;
/// let op: safer_ring::Op<'_, ReadAt<Vec<u8>>> = ring.read(&rx, Vec::with_capacity(4));
/// assert_eq!(ring.block_on(op).1, b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadAt<B> {
    fd: SharedFd,
    buf: Held<B>,
    offset: u64,
    len: u32,
}

// SAFETY: the buffer's memory is on the heap and stays put when `self` moves (IoBufMut's contract); `fd` holds the fd.
unsafe impl<B: IoBufMut> OpData for ReadAt<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        OpKind::Read {
            fd: self.fd.raw(),
            buf: self.buf.get_mut().stable_mut_ptr(),
            len: self.len,
            offset: self.offset,
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> Self::Output {
        if let Ok(n) = res {
            // SAFETY: the kernel reported writing `n` bytes at the buffer's start.
            unsafe { self.buf.get_mut().set_init(n as usize) };
        }
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// A write from an owned buffer; see [`Ring::write_at`](crate::RingRef::write_at) and [`Ring::write`](crate::RingRef::write).
///
/// # Examples
/// ```
/// use safer_ring::ops::WriteAt;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (_rx, tx) = ring.pipe()?;
/// let op: safer_ring::Op<'_, WriteAt<Vec<u8>>> = ring.write(&tx, b"x".to_vec());
/// assert_eq!(ring.block_on(op).0?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriteAt<B> {
    fd: SharedFd,
    buf: Held<B>,
    offset: u64,
    len: u32,
}

// SAFETY: the buffer's memory is on the heap and stays put when `self` moves (IoBuf's contract); `fd` holds the fd.
unsafe impl<B: IoBuf> OpData for WriteAt<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        OpKind::Write {
            fd: self.fd.raw(),
            buf: self.buf.get().stable_ptr(),
            len: self.len,
            offset: self.offset,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// A vectored read; see [`Ring::readv_at`](crate::RingRef::readv_at).
///
/// # Examples
/// ```
/// use safer_ring::ops::Readv;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (rx, tx) = ring.pipe()?;
/// ring.block_on(ring.write(&tx, b"ab".to_vec())).0?;
/// let bufs = vec![Vec::with_capacity(1), Vec::with_capacity(1)];
/// let op: safer_ring::Op<'_, Readv<Vec<u8>>> = ring.readv_at(&rx, bufs, None);
/// assert_eq!(ring.block_on(op).0?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Readv<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    iov: Box<[libc::iovec]>,
    offset: u64,
}

// SAFETY: the iovec array is boxed and each buffer's memory is on the heap (IoBufMut's contract): neither moves with `self`; `fd` holds the fd.
unsafe impl<B: IoBufMut> OpData for Readv<B> {
    type Output = BufResult<usize, Vec<B>>;
    fn kind(&mut self) -> OpKind {
        OpKind::Readv {
            fd: self.fd.raw(),
            iov: self.iov.as_ptr(),
            count: self.iov.len() as u32,
            offset: self.offset,
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> Self::Output {
        if let Ok(n) = res {
            let mut left = n as usize;
            for b in &mut self.bufs {
                let take = left.min(b.bytes_total());
                // SAFETY: the kernel filled the iovecs in order; `take` bytes of this one.
                unsafe { b.set_init(take) };
                left -= take;
            }
        }
        (res.map(|n| n as usize), self.bufs)
    }
}

/// A vectored write; see [`Ring::writev_at`](crate::RingRef::writev_at).
///
/// # Examples
/// ```
/// use safer_ring::ops::Writev;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (_rx, tx) = ring.pipe()?;
/// let op: safer_ring::Op<'_, Writev<Vec<u8>>> = ring.writev_at(&tx, vec![b"a".to_vec(), b"b".to_vec()], None);
/// assert_eq!(ring.block_on(op).0?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Writev<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    iov: Box<[libc::iovec]>,
    offset: u64,
}

// SAFETY: the iovec array is boxed and each buffer's memory is on the heap (IoBuf's contract): neither moves with `self`; `fd` holds the fd.
unsafe impl<B: IoBuf> OpData for Writev<B> {
    type Output = BufResult<usize, Vec<B>>;
    fn kind(&mut self) -> OpKind {
        OpKind::Writev {
            fd: self.fd.raw(),
            iov: self.iov.as_ptr(),
            count: self.iov.len() as u32,
            offset: self.offset,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        (res.map(|n| n as usize), self.bufs)
    }
}

fn iovecs<B>(
    bufs: &mut [B],
    mut f: impl FnMut(&mut B) -> (*mut u8, usize),
) -> io::Result<Box<[libc::iovec]>> {
    if bufs.len() > libc::UIO_MAXIOV as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} buffers given to a vectored op: at most {} (UIO_MAXIOV)",
                bufs.len(),
                libc::UIO_MAXIOV
            ),
        ));
    }
    let mut total = 0usize;
    let iov = bufs
        .iter_mut()
        .map(|b| {
            let (ptr, len) = f(b);
            total += len;
            libc::iovec {
                iov_base: ptr.cast(),
                iov_len: len,
            }
        })
        .collect();
    check_len(total)?;
    Ok(iov)
}

impl RingRef {
    fn read_op<B: IoBufMut>(
        &self,
        fd: &SharedFd,
        buf: B,
        offset: Option<u64>,
    ) -> Op<'_, ReadAt<B>> {
        let (len, check) = split_len(buf.bytes_total());
        let (offset, pos) = position(offset);
        let check = check.and(pos);
        let op = ReadAt {
            fd: fd.clone(),
            buf: Held::new(buf),
            offset,
            len,
        };
        Op::checked(self, op, check.and_then(|()| self.prepare(fd)))
    }

    fn write_op<B: IoBuf>(&self, fd: &SharedFd, buf: B, offset: Option<u64>) -> Op<'_, WriteAt<B>> {
        let (len, check) = split_len(buf.bytes_init());
        let (offset, pos) = position(offset);
        let check = check.and(pos);
        let op = WriteAt {
            fd: fd.clone(),
            buf: Held::new(buf),
            offset,
            len,
        };
        Op::checked(self, op, check.and_then(|()| self.prepare(fd)))
    }

    /// Reads into `buf` at `offset` (pread). The buffer is filled from its start, up to its
    /// capacity; a `Vec`'s length is set to the bytes read.
    ///
    /// # Errors
    /// The kernel's error, or `InvalidInput` for a buffer longer than `u32::MAX` bytes; the
    /// buffer is returned either way.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-read-at-{}", std::process::id()));
    /// std::fs::write(&path, b"hello world")?;
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true)).await?;
    ///     let (n, buf) = ring.read_at(&file, Vec::with_capacity(5), 6).await;
    ///     assert_eq!((n?, &buf[..]), (5, &b"world"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_read")]
    #[doc(alias = "pread")]
    pub fn read_at<F: AsIoFd, B: IoBufMut>(
        &self,
        file: &F,
        buf: B,
        offset: u64,
    ) -> Op<'_, ReadAt<B>> {
        self.read_op(file.shared_fd(), buf, Some(offset))
    }

    /// Reads at the fd's current position (files advance it; pipes and sockets are streams).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.write(&tx, b"ping".to_vec()).await;
    ///     n?;
    ///     let (n, buf) = ring.read(&rx, Vec::with_capacity(64)).await;
    ///     assert_eq!((n?, &buf[..]), (4, &b"ping"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read<F: AsIoFd, B: IoBufMut>(&self, stream: &F, buf: B) -> Op<'_, ReadAt<B>> {
        self.read_op(stream.shared_fd(), buf, None)
    }

    /// Writes `buf`'s initialized bytes at `offset` (pwrite). Returns the bytes written.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-write-at-{}", std::process::id()));
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true).write(true).create(true)).await?;
    ///     let (n, buf) = ring.write_at(&file, b"abc".to_vec(), 10).await;
    ///     assert_eq!(n?, 3);
    ///     assert_eq!(buf, b"abc"); // the buffer comes back
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// assert_eq!(std::fs::read(&path)?.len(), 13); // a hole before the bytes
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_write")]
    #[doc(alias = "pwrite")]
    pub fn write_at<F: AsIoFd, B: IoBuf>(
        &self,
        file: &F,
        buf: B,
        offset: u64,
    ) -> Op<'_, WriteAt<B>> {
        self.write_op(file.shared_fd(), buf, Some(offset))
    }

    /// Writes at the fd's current position (or appends, for O_APPEND files).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.write(&tx, &b"static bytes"[..]).await;
    ///     assert_eq!(n?, 12);
    ///     let (_, buf) = ring.read(&rx, Vec::with_capacity(64)).await;
    ///     assert_eq!(buf, b"static bytes");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write<F: AsIoFd, B: IoBuf>(&self, stream: &F, buf: B) -> Op<'_, WriteAt<B>> {
        self.write_op(stream.shared_fd(), buf, None)
    }

    /// Vectored read at `offset`, or at the current position for `None`.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.write(&tx, b"headbody".to_vec()).await;
    ///     n?;
    ///     let bufs = vec![Vec::with_capacity(4), Vec::with_capacity(4)];
    ///     let (n, bufs) = ring.readv_at(&rx, bufs, None).await;
    ///     assert_eq!(n?, 8);
    ///     assert_eq!((&bufs[0][..], &bufs[1][..]), (&b"head"[..], &b"body"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_readv")]
    pub fn readv_at<F: AsIoFd, B: IoBufMut>(
        &self,
        file: &F,
        mut bufs: Vec<B>,
        offset: Option<u64>,
    ) -> Op<'_, Readv<B>> {
        let fd = file.shared_fd();
        let (iov, check) = match iovecs(&mut bufs, |b| (b.stable_mut_ptr(), b.bytes_total())) {
            Ok(iov) => (iov, Ok(())),
            Err(e) => (Box::default(), Err(e)),
        };
        let (offset, pos) = position(offset);
        let check = check.and(pos);
        let op = Readv {
            fd: fd.clone(),
            bufs,
            iov,
            offset,
        };
        Op::checked(self, op, check.and_then(|()| self.prepare(fd)))
    }

    /// Vectored write at `offset`, or at the current position for `None`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-writev-{}", std::process::id()));
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true).write(true).create(true)).await?;
    ///     let (n, _) = ring.writev_at(&file, vec![b"head".to_vec(), b"body".to_vec()], Some(0)).await;
    ///     assert_eq!(n?, 8);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// assert_eq!(std::fs::read(&path)?, b"headbody");
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_writev")]
    pub fn writev_at<F: AsIoFd, B: IoBuf>(
        &self,
        file: &F,
        mut bufs: Vec<B>,
        offset: Option<u64>,
    ) -> Op<'_, Writev<B>> {
        let fd = file.shared_fd();
        let (iov, check) = match iovecs(&mut bufs, |b| (b.stable_ptr().cast_mut(), b.bytes_init()))
        {
            Ok(iov) => (iov, Ok(())),
            Err(e) => (Box::default(), Err(e)),
        };
        let (offset, pos) = position(offset);
        let check = check.and(pos);
        let op = Writev {
            fd: fd.clone(),
            bufs,
            iov,
            offset,
        };
        Op::checked(self, op, check.and_then(|()| self.prepare(fd)))
    }
}
