//! splice, tee and `copy`: bytes between a pipe and a file or socket with no user buffer.
//!
//! Each op names two fds and holds a `SharedFd` clone of both until its completion, so a
//! dropped future (a `copy` dropped mid-way included) never leaves an fd closed under an op the
//! kernel, or a parked syscall, still runs. The ends are checked up front (one of them a pipe,
//! readable input, writable output, no offset on a pipe or socket) so that bad input is an
//! error naming the argument, not an EINVAL from the kernel. Where the ring does not push the
//! opcode (epoll, a kernel before 5.7/5.8, the feature turned off) the op is splice(2)/tee(2)
//! on readiness (see `backend/op.rs`, "Ops on two fds").

use std::io;

use crate::backend::{CURRENT_POS, OpKind};
use crate::buf::IoBuf;
use crate::driver::op::{Op, OpData};
use crate::io::{AsIoFd, File, Pipe, SharedFd};
use crate::kernel::sys;
use crate::{Feature, RingRef};

/// Flags `splice` accepts: `SPLICE_F_MOVE`, `SPLICE_F_MORE` (hints). Not `SPLICE_F_NONBLOCK`:
/// every op waits for readiness (bounded by `Op::timeout`), and io_uring would answer EAGAIN
/// where the syscall form waits; not `SPLICE_F_FD_IN_FIXED`: the ops take plain fds.
const SPLICE_FLAGS: u32 = libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE;

/// The pipe `copy` moves bytes through: 256 KiB, four times the default 64 KiB, so a large copy
/// takes a quarter of the operations, while 64 concurrent copies stay within the default
/// per-user pipe allowance (`pipe-user-pages-soft`, 64 MiB); past it the kernel keeps the
/// default size, which `copy` then uses.
const COPY_PIPE_SIZE: usize = 256 * 1024;

/// splice(2); see [`Ring::splice`](crate::RingRef::splice).
pub struct Splice {
    fd_in: SharedFd,
    fd_out: SharedFd,
    /// `copy`: the other end of its pipe, held too. Closing a pipe end takes the pipe's lock,
    /// which a splice blocked on a full socket holds (io_uring runs it on a worker thread): a
    /// dropped `copy` closing its pipe under such an op would wait for the peer to read.
    _keep: Option<SharedFd>,
    off_in: u64,
    off_out: u64,
    len: u32,
    flags: u32,
}

// SAFETY: no pointers; `fd_in` and `fd_out` hold both fds the op names.
unsafe impl OpData for Splice {
    type Output = io::Result<usize>;
    fn kind(&mut self) -> OpKind {
        OpKind::Splice {
            fd_in: self.fd_in.raw(),
            off_in: self.off_in,
            fd_out: self.fd_out.raw(),
            off_out: self.off_out,
            len: self.len,
            flags: self.flags,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<usize> {
        res.map(|n| n as usize)
    }
}

/// tee(2); see [`Ring::tee`](crate::RingRef::tee).
pub struct Tee {
    fd_in: SharedFd,
    fd_out: SharedFd,
    len: u32,
}

// SAFETY: no pointers; `fd_in` and `fd_out` hold both fds the op names.
unsafe impl OpData for Tee {
    type Output = io::Result<usize>;
    fn kind(&mut self) -> OpKind {
        OpKind::Tee {
            fd_in: self.fd_in.raw(),
            fd_out: self.fd_out.raw(),
            len: self.len,
            flags: 0,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<usize> {
        res.map(|n| n as usize)
    }
}

/// What an fd is, for the up-front checks.
#[derive(Clone, Copy)]
struct End<'a> {
    name: &'a str,
    fd: i32,
    mode: libc::mode_t,
    access: i32,
}

impl<'a> End<'a> {
    fn of(name: &'a str, fd: &SharedFd) -> io::Result<End<'a>> {
        let (mode, access) = sys::fd_kind(fd.raw())?;
        Ok(End {
            name,
            fd: fd.raw(),
            mode,
            access,
        })
    }

    fn is_pipe(&self) -> bool {
        self.mode == libc::S_IFIFO
    }

    /// Whether the fd has no file offset (a pipe or a socket).
    fn is_stream(&self) -> bool {
        self.mode == libc::S_IFIFO || self.mode == libc::S_IFSOCK
    }

    fn what(&self) -> &'static str {
        match self.mode {
            libc::S_IFIFO => "a pipe",
            libc::S_IFSOCK => "a socket",
            libc::S_IFREG => "a regular file",
            libc::S_IFDIR => "a directory",
            libc::S_IFCHR => "a character device",
            libc::S_IFBLK => "a block device",
            _ => "an fd of another kind",
        }
    }

    fn invalid(&self, msg: impl std::fmt::Display) -> io::Error {
        let (name, fd, what) = (self.name, self.fd, self.what());
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` (fd {fd}, {what}) {msg}"),
        )
    }

    /// Not a directory, and open for reading (`read`) or writing.
    fn check_usable(&self, read: bool) -> io::Result<()> {
        if self.mode == libc::S_IFDIR {
            return Err(self.invalid("cannot be spliced"));
        }
        let (ok, need, is) = match read {
            true => (self.access != libc::O_WRONLY, "reading", "write-only"),
            false => (self.access != libc::O_RDONLY, "writing", "read-only"),
        };
        if !ok {
            let msg = format!("is not open for {need} (it is {is}); the kernel would answer EBADF");
            return Err(self.invalid(msg));
        }
        Ok(())
    }

    /// `offset` as the backends take it: none for a pipe or socket (an offset there is an
    /// error naming it), an explicit one at most i64::MAX.
    fn offset(&self, what: &str, offset: Option<u64>) -> io::Result<u64> {
        match offset {
            None => Ok(CURRENT_POS),
            Some(o) if self.is_stream() => Err(self.invalid(format!(
                "has no file offset: `{what}` must be None, not Some({o})"
            ))),
            Some(o) => crate::ops::check_offset(what, o).map(|()| o),
        }
    }
}

/// The checks `splice` makes: each end usable, one of them a pipe, offsets only on files.
fn check_splice(
    from: &SharedFd,
    from_off: Option<u64>,
    to: &SharedFd,
    to_off: Option<u64>,
    flags: u32,
) -> io::Result<(u64, u64)> {
    if flags & !SPLICE_FLAGS != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "splice flags {flags:#x}: only SPLICE_F_MOVE and SPLICE_F_MORE ({SPLICE_FLAGS:#x}) are accepted (an op waits for readiness; bound it with `Op::timeout`)"
            ),
        ));
    }
    let (i, o) = (End::of("from", from)?, End::of("to", to)?);
    i.check_usable(true)?;
    o.check_usable(false)?;
    if !i.is_pipe() && !o.is_pipe() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "splice needs a pipe at one end: `from` (fd {}) is {} and `to` (fd {}) is {}",
                i.fd,
                i.what(),
                o.fd,
                o.what()
            ),
        ));
    }
    Ok((i.offset("from_off", from_off)?, o.offset("to_off", to_off)?))
}

impl RingRef {
    /// Moves up to `len` bytes from `from` to `to`, one of which must be a pipe, without
    /// copying them through user memory: splice(2), natively on Linux 5.7+ (elsewhere
    /// splice(2) on the fd's readiness). An offset reads or writes a file there (its position
    /// unchanged); `None` uses the file's position, and is the only choice for a pipe or a
    /// socket. `flags`: 0, `SPLICE_F_MOVE`, `SPLICE_F_MORE` (libc's constants; hints). The op
    /// waits until an end is ready, like every op: bound it with [`Op::timeout`].
    ///
    /// Returns the bytes moved: fewer than `len` is normal (what the pipe held, or had room
    /// for); 0 is the end of the input.
    ///
    /// # Errors
    /// `InvalidInput`, naming the argument, when neither end is a pipe, an end is a directory,
    /// `from` is not open for reading or `to` for writing, an offset is given for a pipe or
    /// socket or is beyond 2^63 - 1, or `flags` has other bits; else the kernel's error.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     ring.write_all(&tx, b"spliced".to_vec()).await.0?;
    ///     let n = ring.splice(&rx, None, &a, None, 64, 0).await?;
    ///     let (_, buf) = ring.recv(&b, Vec::with_capacity(16)).await;
    ///     assert_eq!(&buf[..n], b"spliced");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_splice")]
    pub fn splice<I: AsIoFd, O: AsIoFd>(
        &self,
        from: &I,
        from_off: Option<u64>,
        to: &O,
        to_off: Option<u64>,
        len: u32,
        flags: u32,
    ) -> Op<'_, Splice> {
        let (fd_in, fd_out) = (from.shared_fd(), to.shared_fd());
        let checked = check_splice(fd_in, from_off, fd_out, to_off, flags);
        let (off_in, off_out) = *checked.as_ref().unwrap_or(&(CURRENT_POS, CURRENT_POS));
        let op = self.splice_data(fd_in, off_in, fd_out, off_out, len, flags);
        self.splice_op(op, checked.map(drop))
    }

    fn splice_data(
        &self,
        fd_in: &SharedFd,
        off_in: u64,
        fd_out: &SharedFd,
        off_out: u64,
        len: u32,
        flags: u32,
    ) -> Splice {
        Splice {
            fd_in: fd_in.clone(),
            fd_out: fd_out.clone(),
            _keep: None,
            off_in,
            off_out,
            len,
            flags,
        }
    }

    /// `op` as an op after `check`.
    fn splice_op(&self, op: Splice, check: io::Result<()>) -> Op<'_, Splice> {
        self.note(Feature::Splice);
        let check = check
            .and_then(|()| self.prepare(&op.fd_in))
            .and_then(|()| self.prepare(&op.fd_out));
        Op::checked(self, op, check)
    }

    /// Duplicates up to `len` bytes at the head of pipe `pipe_in` into pipe `pipe_out`
    /// without consuming them: tee(2), natively on Linux 5.8+ (elsewhere tee(2) on the pipes'
    /// readiness). Returns the bytes duplicated; 0 when `pipe_in` is empty and its writers are
    /// gone.
    ///
    /// # Errors
    /// `InvalidInput`, naming the argument, unless both are pipes (`pipe_in` readable,
    /// `pipe_out` writable); else the kernel's error.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// let (rx2, tx2) = ring.pipe()?;
    /// ring.block_on(async {
    ///     ring.write_all(&tx, b"twice".to_vec()).await.0?;
    ///     assert_eq!(ring.tee(&rx, &tx2, 64).await?, 5);
    ///     let (_, copy) = ring.read(&rx2, Vec::with_capacity(8)).await;
    ///     let (_, orig) = ring.read(&rx, Vec::with_capacity(8)).await;
    ///     assert_eq!((copy.as_slice(), orig.as_slice()), (&b"twice"[..], &b"twice"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_tee")]
    pub fn tee<I: AsIoFd, O: AsIoFd>(&self, pipe_in: &I, pipe_out: &O, len: u32) -> Op<'_, Tee> {
        self.note(Feature::Tee);
        let (fd_in, fd_out) = (pipe_in.shared_fd(), pipe_out.shared_fd());
        let op = Tee {
            fd_in: fd_in.clone(),
            fd_out: fd_out.clone(),
            len,
        };
        let check = (|| {
            let (i, o) = (End::of("pipe_in", fd_in)?, End::of("pipe_out", fd_out)?);
            for end in [i, o] {
                if !end.is_pipe() {
                    return Err(end.invalid("is not a pipe: tee needs pipes at both ends"));
                }
            }
            i.check_usable(true)?;
            o.check_usable(false)?;
            self.prepare(fd_in)?;
            self.prepare(fd_out)
        })();
        Op::checked(self, op, check)
    }

    /// Copies up to `len` bytes of `from`, starting at `from_off`, to `to` (a socket, a file
    /// at its position, a pipe), without copying them through user memory: each chunk is
    /// spliced into a pipe of the ring's and from there into `to`. Stops early at the end of
    /// `from` (a `len` beyond it is fine: `u64::MAX` copies the rest). Where the kernel refuses
    /// to splice an end (EINVAL: a file system without splice support, an `O_APPEND` file) the
    /// rest is read and written through a buffer.
    ///
    /// Returns the result and the bytes written to `to`, exact on error too (bytes read into
    /// the pipe but not yet written are not counted). Dropping the future is safe at any
    /// point: the operations in flight keep their fds (the pipe's included) until they finish.
    ///
    /// # Errors
    /// `InvalidInput` (naming the argument) for `from_off` beyond 2^63 - 1, `from` not open
    /// for reading or `to` not for writing, a directory at either end; the pipe's creation
    /// error; the first error of a splice, read or write, or `WriteZero` if `to` took nothing.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-copy-{}", std::process::id()));
    /// std::fs::write(&path, b"hello, copy")?;
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().read(true)))?;
    /// let (a, b) = ring.unix_pair()?;
    /// let (res, n) = ring.block_on(ring.copy(&file, 7, &a, u64::MAX));
    /// res?;
    /// assert_eq!(n, 4);
    /// let (_, buf) = ring.block_on(ring.recv(&b, Vec::with_capacity(8)));
    /// assert_eq!(buf, b"copy");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn copy<O: AsIoFd>(
        &self,
        from: &File,
        from_off: u64,
        to: &O,
        len: u64,
    ) -> (io::Result<()>, u64) {
        let mut copied = 0;
        let res = self.copy_inner(from, from_off, to, len, &mut copied).await;
        (res, copied)
    }

    async fn copy_inner<O: AsIoFd>(
        &self,
        from: &File,
        from_off: u64,
        to: &O,
        len: u64,
        copied: &mut u64,
    ) -> io::Result<()> {
        crate::ops::check_offset("from_off", from_off)?;
        let (src, dst) = (from.shared_fd(), to.shared_fd());
        End::of("from", src)?.check_usable(true)?;
        End::of("to", dst)?.check_usable(false)?;
        // Offsets stay within the kernel's i64.
        let len = len.min(i64::MAX as u64 - from_off);
        let (rx, tx) = self.pipe()?;
        let chunk = sys::set_pipe_size(tx.shared_fd().raw(), COPY_PIPE_SIZE)?;
        let chunk = u32::try_from(chunk).unwrap_or(u32::MAX);
        let (pipe_in, pipe_out) = (rx.shared_fd(), tx.shared_fd());
        while *copied < len {
            let want = (len - *copied).min(u64::from(chunk)) as u32;
            let at = from_off + *copied;
            let mut op = self.splice_data(src, at, pipe_out, CURRENT_POS, want, 0);
            op._keep = Some(pipe_in.clone());
            let got = self.splice_op(op, Ok(())).await;
            let n = match got {
                Ok(0) => return Ok(()), // end of file
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    return self.copy_plain(from, at, to, len - *copied, copied).await;
                }
                Err(e) => return Err(e),
            };
            let mut left = n;
            while left > 0 {
                let mut op =
                    self.splice_data(pipe_in, CURRENT_POS, dst, CURRENT_POS, left as u32, 0);
                op._keep = Some(pipe_out.clone());
                let put = self.splice_op(op, Ok(())).await;
                match put {
                    Ok(0) => return Err(write_zero()),
                    Ok(m) => {
                        left -= m;
                        *copied += m as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        // `to` takes no splice: write what the pipe holds, then the rest.
                        self.drain_pipe(&rx, to, left, copied).await?;
                        let at = from_off + *copied;
                        return self.copy_plain(from, at, to, len - *copied, copied).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Writes the `left` bytes the pipe `rx` holds to `to`.
    async fn drain_pipe<O: AsIoFd>(
        &self,
        rx: &Pipe,
        to: &O,
        mut left: usize,
        copied: &mut u64,
    ) -> io::Result<()> {
        while left > 0 {
            let (res, buf) = self.read(rx, Vec::with_capacity(left)).await;
            if res? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "copy's pipe ended early",
                ));
            }
            left -= buf.len();
            self.put_counted(to, buf, copied).await?;
        }
        Ok(())
    }

    /// `copy` through a buffer: read at `at`, write at `to`'s position.
    async fn copy_plain<O: AsIoFd>(
        &self,
        from: &File,
        mut at: u64,
        to: &O,
        mut len: u64,
        copied: &mut u64,
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(COPY_PIPE_SIZE);
        while len > 0 {
            buf.clear();
            let want = len.min(COPY_PIPE_SIZE as u64) as usize;
            let (res, part) = self.read_at(from, buf.slice(..want), at).await;
            buf = part.into_inner();
            match res {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    at += n as u64;
                    len -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            buf = self.put_counted(to, buf, copied).await?;
        }
        Ok(())
    }

    /// Writes all of `buf` to `to`, counting each byte written into `copied`.
    async fn put_counted<O: AsIoFd>(
        &self,
        to: &O,
        mut buf: Vec<u8>,
        copied: &mut u64,
    ) -> io::Result<Vec<u8>> {
        let total = buf.len();
        let mut done = 0;
        while done < total {
            let (res, part) = self.write(to, buf.slice(done..total)).await;
            buf = part.into_inner();
            match res {
                Ok(0) => return Err(write_zero()),
                Ok(n) => {
                    done += n;
                    *copied += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(buf)
    }
}

fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "`to` accepted no more bytes")
}
