//! Whole-buffer helpers: `write_all`, `send_all`, `read_exact`, `read_to_end` (and the
//! positioned forms) loop over short transfers with slices of the same buffer, which comes back
//! either way.

use std::io;

use crate::RingRef;
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::io::AsIoFd;

/// Where the next transfer goes.
#[derive(Clone, Copy)]
enum At {
    /// The fd's position (streams, or a file's cursor).
    Stream,
    /// File offset of the buffer's first byte.
    Offset(u64),
    /// A socket send.
    Send,
}

/// Spare room below which `read_to_end` grows the buffer before its next read.
const MIN_READ: usize = 4096;

fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "the fd accepted no more bytes")
}

fn early_eof(got: usize, want: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("end of file after {got} of {want} bytes"),
    )
}

impl RingRef {
    async fn put_all<F: AsIoFd, B: IoBuf>(&self, fd: &F, mut buf: B, at: At) -> BufResult<(), B> {
        let total = buf.bytes_init();
        let mut done = 0;
        while done < total {
            let part = buf.slice(done..total);
            let (res, part) = match at {
                At::Stream => self.write(fd, part).await,
                At::Offset(o) => self.write_at(fd, part, o + done as u64).await,
                At::Send => self.send(fd, part).await,
            };
            buf = part.into_inner();
            match res {
                Ok(0) => return (Err(write_zero()), buf),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    async fn fill<F: AsIoFd, B: IoBufMut>(&self, fd: &F, mut buf: B, at: At) -> BufResult<(), B> {
        let total = buf.bytes_total();
        let mut done = 0;
        while done < total {
            let part = buf.slice(done..total);
            let (res, part) = match at {
                At::Offset(o) => self.read_at(fd, part, o + done as u64).await,
                _ => self.read(fd, part).await,
            };
            buf = part.into_inner();
            match res {
                Ok(0) => return (Err(early_eof(done, total)), buf),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    async fn drain<F: AsIoFd>(
        &self,
        fd: &F,
        mut buf: Vec<u8>,
        at: At,
    ) -> BufResult<usize, Vec<u8>> {
        let start = buf.len();
        loop {
            if buf.capacity() - buf.len() < MIN_READ {
                // Grow with what was read (doubling), between 8 KiB and 4 MiB per step.
                let step = (buf.len() - start).clamp(8 << 10, 4 << 20);
                if let Err(e) = buf.try_reserve(step) {
                    let e = io::Error::new(io::ErrorKind::OutOfMemory, e);
                    return (Err(e), buf);
                }
            }
            let (len, cap) = (buf.len(), buf.capacity());
            let part = buf.slice(len..cap);
            let (res, part) = match at {
                // Saturated past u64::MAX, the offset is refused by `read_at` (> i64::MAX).
                At::Offset(o) => {
                    let pos = o.saturating_add((len - start) as u64);
                    self.read_at(fd, part, pos).await
                }
                _ => self.read(fd, part).await,
            };
            buf = part.into_inner();
            match res {
                Ok(0) => return (Ok(buf.len() - start), buf),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// Reads until end of file at the fd's position (a pipe or socket: until the peer closes),
    /// appending to `buf`, which grows as needed; returns the number of bytes appended. The
    /// buffer comes back either way.
    ///
    /// # Errors
    /// The first read error (the bytes before it are in the buffer), or `OutOfMemory` if the
    /// buffer cannot grow.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     ring.write_all(&tx, b"abc".to_vec()).await.0?;
    ///     drop(tx);
    ///     let (n, buf) = ring.read_to_end(&rx, b">".to_vec()).await;
    ///     assert_eq!((n?, &buf[..]), (3, &b">abc"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_to_end<F: AsIoFd>(&self, fd: &F, buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
        self.drain(fd, buf, At::Stream).await
    }

    /// Reads from `offset` until end of file, appending to `buf` (which grows as needed);
    /// returns the number of bytes appended. The fd's position does not move.
    ///
    /// # Errors
    /// As [`Ring::read_to_end`](crate::RingRef::read_to_end); an offset beyond `i64::MAX` is
    /// `InvalidInput`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-read-to-end-at-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789")?;
    /// let buf = ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true)).await?;
    ///     let (n, buf) = ring.read_to_end_at(&file, Vec::new(), 6).await;
    ///     n.map(|_| buf)
    /// })?;
    /// assert_eq!(buf, b"6789");
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_to_end_at<F: AsIoFd>(
        &self,
        file: &F,
        buf: Vec<u8>,
        offset: u64,
    ) -> BufResult<usize, Vec<u8>> {
        self.drain(file, buf, At::Offset(offset)).await
    }

    /// Writes all of `buf`'s initialized bytes at the fd's position, however many writes that
    /// takes (pipes and sockets accept partial writes). The buffer comes back either way.
    ///
    /// # Errors
    /// The first write error, or `WriteZero` if a write accepted nothing; the bytes before it
    /// were written.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// let r = ring.clone();
    /// // More than a pipe holds: the reader must run while write_all continues.
    /// let reader = ring.spawn(async move { r.read_exact(&rx, Vec::with_capacity(200_000)).await });
    /// ring.block_on(async {
    ///     let (res, _) = ring.write_all(&tx, vec![1u8; 200_000]).await;
    ///     res?;
    ///     let (res, buf) = reader.await.expect("reader task");
    ///     res?;
    ///     assert_eq!(buf.len(), 200_000);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write_all<F: AsIoFd, B: IoBuf>(&self, fd: &F, buf: B) -> BufResult<(), B> {
        self.put_all(fd, buf, At::Stream).await
    }

    /// Writes all of `buf`'s initialized bytes at `offset`.
    ///
    /// # Errors
    /// As [`Ring::write_all`](crate::RingRef::write_all).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-write-all-at-{}", std::process::id()));
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true).write(true).create(true)).await?;
    ///     let (res, _) = ring.write_all_at(&file, vec![b'x'; 100_000], 4096).await;
    ///     res
    /// })?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), 104_096);
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write_all_at<F: AsIoFd, B: IoBuf>(
        &self,
        file: &F,
        buf: B,
        offset: u64,
    ) -> BufResult<(), B> {
        self.put_all(file, buf, At::Offset(offset)).await
    }

    /// Sends all of `buf`'s initialized bytes (short sends are continued).
    ///
    /// # Errors
    /// As [`Ring::write_all`](crate::RingRef::write_all).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     let (res, _) = ring.send_all(&a, b"every byte".to_vec()).await;
    ///     res?;
    ///     let (res, buf) = ring.read_exact(&b, Vec::with_capacity(10)).await;
    ///     res?;
    ///     assert_eq!(buf, b"every byte");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn send_all<S: AsIoFd, B: IoBuf>(&self, sock: &S, buf: B) -> BufResult<(), B> {
        self.put_all(sock, buf, At::Send).await
    }

    /// Fills `buf` to its capacity from the fd's position, however many reads that takes.
    ///
    /// # Errors
    /// The first read error, or `UnexpectedEof` (saying how many bytes arrived) when the fd
    /// ends first; the buffer holds what was read.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     let (res, _) = ring.write_all(&tx, b"abc".to_vec()).await;
    ///     res?;
    ///     drop(tx);
    ///     // 3 bytes, then end of file: UnexpectedEof, and the buffer holds what arrived.
    ///     let (res, buf) = ring.read_exact(&rx, Vec::with_capacity(8)).await;
    ///     assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    ///     assert_eq!(buf, b"abc");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_exact<F: AsIoFd, B: IoBufMut>(&self, fd: &F, buf: B) -> BufResult<(), B> {
        self.fill(fd, buf, At::Stream).await
    }

    /// Fills `buf` to its capacity from `offset`.
    ///
    /// # Errors
    /// As [`Ring::read_exact`](crate::RingRef::read_exact).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-read-exact-at-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789")?;
    /// let buf = ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true)).await?;
    ///     let (res, buf) = ring.read_exact_at(&file, Vec::with_capacity(4), 3).await;
    ///     res.map(|()| buf)
    /// })?;
    /// assert_eq!(buf, b"3456");
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_exact_at<F: AsIoFd, B: IoBufMut>(
        &self,
        file: &F,
        buf: B,
        offset: u64,
    ) -> BufResult<(), B> {
        self.fill(file, buf, At::Offset(offset)).await
    }
}
