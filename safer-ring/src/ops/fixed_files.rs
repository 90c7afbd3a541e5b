//! Operations on registered files ([`FixedFile`]): the file named by its slot in the ring's
//! table where this ring registered it, else the same operation on the fd.

use std::io;
use std::time::Instant;

use crate::RingRef;
use crate::backend::OpKind;
use crate::buf::{BufResult, Held, IoBuf, IoBufMut};
use crate::driver::op::{Op, OpData};
use crate::enhanced::PathTaken;
use crate::features::Feature;
use crate::io::{AsIoFd, FixedFile};
use crate::ops::{position, split_len};

/// What every registered-file op keeps: the handle (so the slot, and the fd, outlive the op
/// even when its future is dropped), the slot it names and its path counter.
struct Target {
    file: FixedFile,
    slot: Option<u32>,
    ring: RingRef,
    start: Instant,
}

impl Target {
    fn fd(&self) -> i32 {
        self.file.shared_fd().raw()
    }

    /// Counts the path in the ring's stats (`enhancement_stats(RegisteredFiles)`).
    fn record(&self) {
        let path = match self.slot {
            Some(_) => PathTaken::Native,
            None => PathTaken::Fallback,
        };
        self.ring
            .record(Feature::RegisteredFiles, path, self.start.elapsed());
    }
}

/// A read on a [`FixedFile`]; see [`Ring::read_registered`](crate::RingRef::read_registered).
///
/// # Examples
/// ```
/// use safer_ring::ops::ReadRegistered;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (rx, tx) = ring.pipe()?;
/// ring.block_on(ring.write(&tx, b"x".to_vec())).0?;
/// let rx = ring.register_file(&rx)?;
/// let op: safer_ring::Op<'_, ReadRegistered<Vec<u8>>> = ring.read_registered(&rx, Vec::with_capacity(4), None);
/// assert_eq!(ring.block_on(op).1, b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadRegistered<B> {
    at: Target,
    buf: Held<B>,
    len: u32,
    offset: u64,
}

// SAFETY: the buffer's memory is on the heap and stays put when `self` moves (IoBufMut's
// contract); `at.file` holds the fd and the slot until the op is dropped after completion.
unsafe impl<B: IoBufMut> OpData for ReadRegistered<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        let (fd, buf, len, offset) = (
            self.at.fd(),
            self.buf.get_mut().stable_mut_ptr(),
            self.len,
            self.offset,
        );
        match self.at.slot {
            Some(slot) => OpKind::ReadSlot {
                fd,
                slot,
                buf,
                len,
                offset,
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
            unsafe { self.buf.get_mut().set_init(n as usize) };
        }
        self.at.record();
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// A write on a [`FixedFile`]; see [`Ring::write_registered`](crate::RingRef::write_registered).
///
/// # Examples
/// ```
/// use safer_ring::ops::WriteRegistered;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (_rx, tx) = ring.pipe()?;
/// let tx = ring.register_file(&tx)?;
/// let op: safer_ring::Op<'_, WriteRegistered<Vec<u8>>> = ring.write_registered(&tx, b"x".to_vec(), None);
/// assert_eq!(ring.block_on(op).0?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriteRegistered<B> {
    at: Target,
    buf: Held<B>,
    len: u32,
    offset: u64,
}

// SAFETY: as `ReadRegistered` (IoBuf's contract for the buffer).
unsafe impl<B: IoBuf> OpData for WriteRegistered<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        let (fd, buf, len, offset) = (
            self.at.fd(),
            self.buf.get().stable_ptr(),
            self.len,
            self.offset,
        );
        match self.at.slot {
            Some(slot) => OpKind::WriteSlot {
                fd,
                slot,
                buf,
                len,
                offset,
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
        self.at.record();
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// A send on a [`FixedFile`] socket; see [`Ring::send_registered`](crate::RingRef::send_registered).
///
/// # Examples
/// ```
/// use safer_ring::ops::SendRegistered;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (a, _b) = ring.unix_pair()?;
/// let a = ring.register_file(&a)?;
/// let op: safer_ring::Op<'_, SendRegistered<Vec<u8>>> = ring.send_registered(&a, b"x".to_vec());
/// assert_eq!(ring.block_on(op).0?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SendRegistered<B> {
    at: Target,
    buf: Held<B>,
    len: u32,
}

// SAFETY: as `WriteRegistered`.
unsafe impl<B: IoBuf> OpData for SendRegistered<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        let (fd, buf, len) = (self.at.fd(), self.buf.get().stable_ptr(), self.len);
        match self.at.slot {
            Some(slot) => OpKind::SendSlot {
                fd,
                slot,
                buf,
                len,
                flags: 0,
            },
            None => OpKind::Send {
                fd,
                buf,
                len,
                flags: 0,
            },
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        self.at.record();
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// A receive on a [`FixedFile`] socket; see [`Ring::recv_registered`](crate::RingRef::recv_registered).
///
/// # Examples
/// ```
/// use safer_ring::ops::RecvRegistered;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (a, b) = ring.unix_pair()?;
/// ring.block_on(ring.send(&a, b"x".to_vec())).0?;
/// let b = ring.register_file(&b)?;
/// let op: safer_ring::Op<'_, RecvRegistered<Vec<u8>>> = ring.recv_registered(&b, Vec::with_capacity(4));
/// assert_eq!(ring.block_on(op).1, b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RecvRegistered<B> {
    at: Target,
    buf: Held<B>,
    len: u32,
}

// SAFETY: as `ReadRegistered`.
unsafe impl<B: IoBufMut> OpData for RecvRegistered<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        let (fd, buf, len) = (self.at.fd(), self.buf.get_mut().stable_mut_ptr(), self.len);
        match self.at.slot {
            Some(slot) => OpKind::RecvSlot {
                fd,
                slot,
                buf,
                len,
                flags: 0,
            },
            None => OpKind::Recv {
                fd,
                buf,
                len,
                flags: 0,
            },
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> Self::Output {
        if let Ok(n) = res {
            // SAFETY: the kernel reported writing `n` bytes at the buffer's start.
            unsafe { self.buf.get_mut().set_init(n as usize) };
        }
        self.at.record();
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// fsync or fdatasync on a [`FixedFile`]; see [`Ring::fsync_registered`](crate::RingRef::fsync_registered).
///
/// # Examples
/// ```
/// use safer_ring::ops::FsyncRegistered;
/// # let ring = safer_ring::Ring::new(8)?;
/// # let path = std::env::temp_dir().join(format!("safer-ring-doc-fsync-reg-{}", std::process::id()));
/// let file = ring.block_on(ring.open(&path, &safer_ring::OpenOptions::new().write(true).create(true)))?;
/// let file = ring.register_file(&file)?;
/// let op: safer_ring::Op<'_, FsyncRegistered> = ring.fsync_registered(&file, false);
/// ring.block_on(op)?;
/// # std::fs::remove_file(path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FsyncRegistered {
    at: Target,
    datasync: bool,
}

// SAFETY: no memory; `at.file` holds the fd and the slot.
unsafe impl OpData for FsyncRegistered {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        let (fd, datasync) = (self.at.fd(), self.datasync);
        match self.at.slot {
            Some(slot) => OpKind::FsyncSlot { fd, slot, datasync },
            None => OpKind::Fsync { fd, datasync },
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        self.at.record();
        res.map(drop)
    }
}

impl RingRef {
    /// Registers `io`'s file in this ring's registered-file table and returns a handle whose
    /// operations name it by slot (`IOSQE_FIXED_FILE`). The handle shares `io`'s fd (it stays
    /// open while the handle or an operation on it lives); dropping it frees the slot once
    /// every operation that named it has completed.
    ///
    /// Where this ring cannot register it (the epoll backend, [`Feature::RegisteredFiles`]
    /// turned off or not detected, the kernel refusing the table, e.g. a table larger than
    /// `RLIMIT_NOFILE`) the handle is made all the same and its operations run as plain ones on
    /// the fd (counted as fallbacks in [`enhancement_stats`](Self::enhancement_stats)); in
    /// strict mode the refusal is an error. The table is registered on first use, with
    /// [`SaferRingConfig::registered_files`](crate::SaferRingConfig::registered_files) user
    /// slots (default 64).
    ///
    /// # Errors
    /// `RegistrationFailed` whose source has kind `QuotaExceeded` when every user slot holds a
    /// file (the message names the limit); `RegistrationFailed` when the kernel refused and the
    /// configuration is strict about `RegisteredFiles`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// let tx = ring.register_file(&tx)?;
    /// println!("native: {}, slot {:?}", ring.uses_native(Feature::RegisteredFiles), tx.slot());
    /// ring.block_on(ring.write_registered(&tx, b"hi".to_vec(), None)).0?;
    /// # let _ = rx;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_file<F: AsIoFd>(&self, io: &F) -> crate::Result<FixedFile> {
        use std::os::fd::AsFd;
        let fd = io.shared_fd().clone();
        if !self.uses_native(Feature::RegisteredFiles) {
            return Ok(FixedFile::plain(fd));
        }
        let (res, has_table) = {
            let mut d = self.driver();
            // Empty the slots of handles dropped since the last turn first: they are free.
            d.do_chores();
            let res = d
                .register_file(fd.as_fd())
                .map(|slot| FixedFile::registered(fd.clone(), d.chores(), slot));
            (res, d.has_file_table())
        };
        let e = match res {
            Ok(file) => return Ok(file),
            Err(e) => e,
        };
        let strict = self.strict_about(Feature::RegisteredFiles);
        if e.kind() != io::ErrorKind::QuotaExceeded && !has_table && !strict {
            // The kernel refused the table itself (asked once per ring): this ring's handles
            // are plain from now on, and `uses_native` says so. (Strict: every call errs.)
            self.disable_native(Feature::RegisteredFiles);
        }
        if e.kind() == io::ErrorKind::QuotaExceeded || strict {
            return Err(crate::SaferRingError::RegistrationFailed {
                what: "a file",
                source: e,
            });
        }
        tracing::warn!(
            error = %e,
            "registering a file failed; its operations on this ring run on the plain fd"
        );
        Ok(FixedFile::plain(fd))
    }

    /// Reads into `buf` (filled from its start up to its capacity) at `offset` (`None`: the
    /// file's current position) from a registered file. The slot on the ring that registered
    /// `file`, else a plain read of the fd.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-read-reg-{}", std::process::id()));
    /// std::fs::write(&path, b"hello world")?;
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &safer_ring::OpenOptions::new().read(true)).await?;
    ///     let file = ring.register_file(&file)?;
    ///     let (n, buf) = ring.read_registered(&file, Vec::with_capacity(5), Some(6)).await;
    ///     assert_eq!((n?, &buf[..]), (5, &b"world"[..]));
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_registered<B: IoBufMut>(
        &self,
        file: &FixedFile,
        buf: B,
        offset: Option<u64>,
    ) -> Op<'_, ReadRegistered<B>> {
        let (len, check) = split_len(buf.bytes_total());
        let (offset, pos) = position(offset);
        let op = ReadRegistered {
            at: self.target(file),
            buf: Held::new(buf),
            len,
            offset,
        };
        let check = check.and(pos).and_then(|()| self.prepare(file.shared_fd()));
        Op::checked(self, op, check)
    }

    /// Writes `buf`'s bytes at `offset` (`None`: the current position, or appending) to a
    /// registered file. The slot on the ring that registered `file`, else a plain write.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// let tx = ring.register_file(&tx)?;
    /// let (n, _) = ring.block_on(ring.write_registered(&tx, b"ping".to_vec(), None));
    /// assert_eq!(n?, 4);
    /// let (n, buf) = ring.block_on(ring.read(&rx, Vec::with_capacity(8)));
    /// assert_eq!((n?, &buf[..]), (4, &b"ping"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_registered<B: IoBuf>(
        &self,
        file: &FixedFile,
        buf: B,
        offset: Option<u64>,
    ) -> Op<'_, WriteRegistered<B>> {
        let (len, check) = split_len(buf.bytes_init());
        let (offset, pos) = position(offset);
        let op = WriteRegistered {
            at: self.target(file),
            buf: Held::new(buf),
            len,
            offset,
        };
        let check = check.and(pos).and_then(|()| self.prepare(file.shared_fd()));
        Op::checked(self, op, check)
    }

    /// Sends `buf`'s bytes on a registered socket (`MSG_NOSIGNAL`: a closed peer is `EPIPE`,
    /// not a signal). The slot on the ring that registered `sock`, else a plain send.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// let a = ring.register_file(&a)?;
    /// assert_eq!(ring.block_on(ring.send_registered(&a, b"x".to_vec())).0?, 1);
    /// # let _ = b;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_registered<B: IoBuf>(&self, sock: &FixedFile, buf: B) -> Op<'_, SendRegistered<B>> {
        let (len, check) = split_len(buf.bytes_init());
        let op = SendRegistered {
            at: self.target(sock),
            buf: Held::new(buf),
            len,
        };
        let check = check.and_then(|()| self.prepare(sock.shared_fd()));
        Op::checked(self, op, check)
    }

    /// Receives into `buf` (filled from its start) from a registered socket; `Ok(0)` is the
    /// peer's end of stream. The slot on the ring that registered `sock`, else a plain recv.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// let b = ring.register_file(&b)?;
    /// ring.block_on(ring.send(&a, b"yo".to_vec())).0?;
    /// let (n, buf) = ring.block_on(ring.recv_registered(&b, Vec::with_capacity(8)));
    /// assert_eq!((n?, &buf[..]), (2, &b"yo"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_registered<B: IoBufMut>(
        &self,
        sock: &FixedFile,
        buf: B,
    ) -> Op<'_, RecvRegistered<B>> {
        let (len, check) = split_len(buf.bytes_total());
        let op = RecvRegistered {
            at: self.target(sock),
            buf: Held::new(buf),
            len,
        };
        let check = check.and_then(|()| self.prepare(sock.shared_fd()));
        Op::checked(self, op, check)
    }

    /// Flushes a registered file to its device: `datasync` false is fsync(2), true is
    /// fdatasync(2). The slot on the ring that registered `file`, else a plain fsync.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-fsync-registered-{}", std::process::id()));
    /// ring.block_on(async {
    ///     let opts = safer_ring::OpenOptions::new().write(true).create(true);
    ///     let file = ring.register_file(&ring.open(&path, &opts).await?)?;
    ///     ring.write_registered(&file, b"data".to_vec(), Some(0)).await.0?;
    ///     ring.fsync_registered(&file, true).await?;
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fsync_registered(&self, file: &FixedFile, datasync: bool) -> Op<'_, FsyncRegistered> {
        let op = FsyncRegistered {
            at: self.target(file),
            datasync,
        };
        Op::checked(self, op, self.prepare(file.shared_fd()))
    }

    /// The op's hold on `file` and the slot it may name on this ring.
    fn target(&self, file: &FixedFile) -> Target {
        Target {
            slot: file.slot_on(self.driver().chores()),
            file: file.clone(),
            ring: self.clone(),
            start: Instant::now(),
        }
    }
}
