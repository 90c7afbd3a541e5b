//! fsync, open, close and metadata.

use std::ffi::CString;
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::RingRef;
use crate::backend::{OpKind, sys};
use crate::driver::op::{Op, OpData};
use crate::io::{AsIoFd, File, OpenOptions, SharedFd};

/// fsync / fdatasync; see [`Ring::fsync`](crate::RingRef::fsync).
///
/// # Examples
/// ```
/// use safer_ring::ops::Fsync;
/// # let ring = safer_ring::Ring::new(8)?;
/// # let path = std::env::temp_dir().join(format!("safer-ring-doc-fsync-t-{}", std::process::id()));
/// let opts = safer_ring::OpenOptions::new().write(true).create(true);
/// let file = ring.block_on(ring.open(&path, &opts))?;
/// let op: safer_ring::Op<'_, Fsync> = ring.fsync(&file);
/// ring.block_on(op)?;
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Fsync {
    fd: SharedFd,
    datasync: bool,
}

// SAFETY: no pointers; `fd` holds the file.
unsafe impl OpData for Fsync {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Fsync {
            fd: self.fd.raw(),
            datasync: self.datasync,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// openat; see [`Ring::open`](crate::RingRef::open).
///
/// # Examples
/// ```
/// use safer_ring::ops::OpenAt;
/// # let ring = safer_ring::Ring::new(8)?;
/// let op: safer_ring::Op<'_, OpenAt> = ring.open("/", &safer_ring::OpenOptions::new().read(true));
/// let root = ring.block_on(op)?;
/// # drop(root);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OpenAt {
    path: CString,
    flags: i32,
    mode: u32,
    nonblocking: Option<bool>,
}

// SAFETY: the path is a `CString`, whose bytes are on the heap and do not move with `self`.
unsafe impl OpData for OpenAt {
    type Output = io::Result<File>;
    fn kind(&mut self) -> OpKind {
        OpKind::OpenAt {
            dirfd: libc::AT_FDCWD,
            path: self.path.as_ptr(),
            flags: self.flags,
            mode: self.mode,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<File> {
        // SAFETY: a successful open returns a new fd nothing else owns, handed out once.
        let fd = unsafe { sys::own_fd(res? as i32) };
        Ok(File::from_shared(SharedFd::new(fd, self.nonblocking)))
    }
}

/// close; see [`Ring::close`](crate::RingRef::close).
///
/// # Examples
/// ```
/// use safer_ring::ops::Close;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (rx, _tx) = ring.pipe()?;
/// let op: safer_ring::Op<'_, Close> = ring.close(rx);
/// ring.block_on(op)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Close {
    fd: Option<OwnedFd>,
}

// SAFETY: no pointers; the op owns the fd it closes.
unsafe impl OpData for Close {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        match &self.fd {
            Some(fd) => OpKind::Close {
                fd: std::os::fd::AsRawFd::as_raw_fd(fd),
            },
            None => OpKind::Nop,
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        // Linux releases the fd number even when close reports an error: never close it twice.
        if let Some(fd) = self.fd.take() {
            let _: RawFd = fd.into_raw_fd();
        }
        res.map(drop)
    }
}

/// statx on an open fd; see [`Ring::metadata`](crate::RingRef::metadata).
///
/// # Examples
/// ```
/// use safer_ring::ops::Statx;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (rx, _tx) = ring.pipe()?;
/// let op: safer_ring::Op<'_, Statx> = ring.metadata(&rx);
/// assert!(!ring.block_on(op)?.is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Statx {
    fd: SharedFd,
    buf: Box<libc::statx>,
}

/// File metadata from `statx`.
///
/// # Examples
/// ```
/// use safer_ring::OpenOptions;
/// # let ring = safer_ring::Ring::new(8)?;
/// let dir = std::env::temp_dir();
/// let meta = ring.block_on(async {
///     let d = ring.open(&dir, &OpenOptions::new().read(true)).await?;
///     ring.metadata(&d).await
/// })?;
/// assert!(meta.is_dir() && meta.nlink >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Size in bytes.
    pub len: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Inode number.
    pub ino: u64,
    /// Number of hard links.
    pub nlink: u32,
    /// Last modification, seconds since the epoch.
    pub mtime_sec: i64,
}

impl Metadata {
    /// A regular file.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let dir = ring.block_on(async {
    ///     let dir = ring.open(std::env::temp_dir(), &OpenOptions::new().read(true)).await?;
    ///     ring.metadata(&dir).await
    /// })?;
    /// assert!(!dir.is_file());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    /// A directory.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let dir = ring.block_on(async {
    ///     let dir = ring.open(std::env::temp_dir(), &OpenOptions::new().read(true)).await?;
    ///     ring.metadata(&dir).await
    /// })?;
    /// assert!(dir.is_dir());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

static EMPTY_PATH: &std::ffi::CStr = c"";

// SAFETY: the statx buffer is boxed and the path is a `'static` C string; `fd` holds the file.
unsafe impl OpData for Statx {
    type Output = io::Result<Metadata>;
    fn kind(&mut self) -> OpKind {
        OpKind::Statx {
            fd: self.fd.raw(),
            path: EMPTY_PATH.as_ptr(),
            flags: libc::AT_EMPTY_PATH,
            mask: libc::STATX_BASIC_STATS,
            buf: &mut *self.buf,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<Metadata> {
        res?;
        let s = &*self.buf;
        Ok(Metadata {
            len: s.stx_size,
            mode: u32::from(s.stx_mode),
            ino: s.stx_ino,
            nlink: s.stx_nlink,
            mtime_sec: s.stx_mtime.tv_sec,
        })
    }
}

impl RingRef {
    /// Flushes file data and metadata to the device.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-fsync-{}", std::process::id()));
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true).write(true).create(true)).await?;
    ///     let (n, _) = ring.write_at(&file, b"durable".to_vec(), 0).await;
    ///     n?;
    ///     ring.fsync(&file).await?; // on the device now
    ///     ring.close(file).await
    /// })?;
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_fsync")]
    pub fn fsync(&self, file: &File) -> Op<'_, Fsync> {
        Op::new(
            self,
            Fsync {
                fd: file.shared_fd().clone(),
                datasync: false,
            },
        )
    }

    /// Flushes file data (and the metadata needed to read it back).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-fdatasync-{}", std::process::id()));
    /// ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true).write(true).create(true)).await?;
    ///     let (n, _) = ring.write_at(&file, b"data".to_vec(), 0).await;
    ///     n?;
    ///     ring.fdatasync(&file).await
    /// })?;
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fdatasync(&self, file: &File) -> Op<'_, Fsync> {
        Op::new(
            self,
            Fsync {
                fd: file.shared_fd().clone(),
                datasync: true,
            },
        )
    }

    /// Opens `path` (relative paths are relative to the working directory).
    ///
    /// # Errors
    /// `InvalidInput` for a path with a NUL byte or options with neither read nor write; else
    /// the kernel's error.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-open-{}", std::process::id()));
    /// std::fs::write(&path, b"hello")?;
    /// let text = ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true)).await?;
    ///     let (n, buf) = ring.read_at(&file, Vec::with_capacity(16), 0).await;
    ///     n?;
    ///     Ok::<_, std::io::Error>(buf)
    /// })?;
    /// assert_eq!(text, b"hello");
    /// // A missing file is the kernel's ENOENT.
    /// let err = ring.block_on(ring.open("/nonexistent/x", &OpenOptions::new().read(true))).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_openat")]
    pub fn open(&self, path: impl AsRef<Path>, options: &OpenOptions) -> Op<'_, OpenAt> {
        let c = CString::new(path.as_ref().as_os_str().as_bytes());
        let nonblocking = (options.custom_flags & libc::O_NONBLOCK == 0).then_some(false);
        let mut op = OpenAt {
            path: CString::default(),
            flags: 0,
            mode: options.mode,
            nonblocking,
        };
        let checked = c
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("path {:?} contains a NUL byte", path.as_ref()),
                )
            })
            .and_then(|c| options.flags().map(|f| (c, f)));
        match checked {
            Ok((c, f)) => {
                op.path = c;
                op.flags = f;
                Op::new(self, op)
            }
            Err(e) => Op::fail(self, op, e),
        }
    }

    /// Closes an I/O object through the ring and reports close(2)'s result. If a dropped
    /// operation still uses the fd, it is closed when that operation completes and this
    /// returns `Ok(())` at once.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     ring.close(tx).await?; // close(2)'s own result, e.g. a deferred write error
    ///     let (n, _) = ring.read(&rx, Vec::with_capacity(8)).await;
    ///     assert_eq!(n?, 0, "the write end is closed: end of file");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_close")]
    pub fn close<F: AsIoFd>(&self, io: F) -> Op<'_, Close> {
        let shared = io.shared_fd().clone();
        drop(io);
        Op::new(
            self,
            Close {
                fd: shared.try_unwrap().ok(),
            },
        )
    }

    /// File metadata (size, mode, ...) via statx.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-metadata-{}", std::process::id()));
    /// std::fs::write(&path, b"12345")?;
    /// let meta = ring.block_on(async {
    ///     let file = ring.open(&path, &OpenOptions::new().read(true)).await?;
    ///     ring.metadata(&file).await
    /// })?;
    /// assert!(meta.is_file());
    /// assert_eq!(meta.len, 5);
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_statx")]
    #[doc(alias = "fstat")]
    pub fn metadata<F: AsIoFd>(&self, file: &F) -> Op<'_, Statx> {
        Op::new(
            self,
            Statx {
                fd: file.shared_fd().clone(),
                buf: sys::statx_buf(),
            },
        )
    }
}
