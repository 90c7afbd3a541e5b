//! fsync, open, close and metadata.

use std::ffi::CString;
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::RingRef;
use crate::backend::OpKind;
use crate::driver::op::{Op, OpData};
use crate::io::{AsIoFd, File, OpenOptions, SharedFd};
use crate::kernel::sys;

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
    /// The file (`None`: `path` relative to the working directory).
    fd: Option<SharedFd>,
    /// Empty for the fd itself.
    path: CString,
    flags: i32,
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
///
/// Every field is statx's (`STATX_BASIC_STATS | STATX_BTIME`), with the values
/// [`std::os::unix::fs::MetadataExt`] reports for the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Nanoseconds of the last modification.
    pub mtime_nsec: u32,
    /// Last access, seconds since the epoch.
    pub atime_sec: i64,
    /// Nanoseconds of the last access.
    pub atime_nsec: u32,
    /// Last status change, seconds since the epoch.
    pub ctime_sec: i64,
    /// Nanoseconds of the last status change.
    pub ctime_nsec: u32,
    /// Creation (birth) time as `(seconds, nanoseconds)`, where the filesystem records it.
    pub btime: Option<(i64, u32)>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The device holding the file (`st_dev`, as `libc::makedev(major, minor)`).
    pub dev: u64,
    /// The device a special file stands for (`st_rdev`).
    pub rdev: u64,
    /// 512-byte blocks allocated (`st_blocks`).
    pub blocks: u64,
    /// Preferred I/O block size (`st_blksize`).
    pub blksize: u32,
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

    /// A symbolic link (only from [`Ring::symlink_metadata`](crate::RingRef::symlink_metadata),
    /// which does not follow it).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let link = std::env::temp_dir().join(format!("safer-ring-doc-is-symlink-{}", std::process::id()));
    /// std::os::unix::fs::symlink("/", &link)?;
    /// assert!(ring.block_on(ring.symlink_metadata(&link))?.is_symlink());
    /// assert!(ring.block_on(ring.path_metadata(&link))?.is_dir());
    /// # std::fs::remove_file(&link)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    /// The last modification time, as [`std::fs::Metadata::modified`] gives it.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let m = ring.block_on(ring.path_metadata("/"))?;
    /// assert_eq!(m.modified(), std::fs::metadata("/")?.modified()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn modified(&self) -> SystemTime {
        time(self.mtime_sec, self.mtime_nsec)
    }

    /// The last access time, as [`std::fs::Metadata::accessed`] gives it.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let m = ring.block_on(ring.path_metadata("/"))?;
    /// assert!(m.accessed() > std::time::UNIX_EPOCH);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accessed(&self) -> SystemTime {
        time(self.atime_sec, self.atime_nsec)
    }

    /// The creation time where the filesystem records one, as [`std::fs::Metadata::created`].
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let m = ring.block_on(ring.path_metadata("/"))?;
    /// if let Some(t) = m.created() {
    ///     assert_eq!(t, std::fs::metadata("/")?.created()?);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn created(&self) -> Option<SystemTime> {
        self.btime.map(|(s, ns)| time(s, ns))
    }

    fn from_statx(s: &libc::statx) -> Metadata {
        let ts = |t: libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
        Metadata {
            len: s.stx_size,
            mode: u32::from(s.stx_mode),
            ino: s.stx_ino,
            nlink: s.stx_nlink,
            mtime_sec: s.stx_mtime.tv_sec,
            mtime_nsec: s.stx_mtime.tv_nsec,
            atime_sec: s.stx_atime.tv_sec,
            atime_nsec: s.stx_atime.tv_nsec,
            ctime_sec: s.stx_ctime.tv_sec,
            ctime_nsec: s.stx_ctime.tv_nsec,
            btime: (s.stx_mask & libc::STATX_BTIME != 0).then(|| ts(s.stx_btime)),
            uid: s.stx_uid,
            gid: s.stx_gid,
            dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
            rdev: libc::makedev(s.stx_rdev_major, s.stx_rdev_minor),
            blocks: s.stx_blocks,
            blksize: s.stx_blksize,
        }
    }
}

/// `sec.nsec` after (or before, for negative `sec`) the epoch.
fn time(sec: i64, nsec: u32) -> SystemTime {
    let whole = Duration::from_secs(sec.unsigned_abs());
    let t = match sec >= 0 {
        true => UNIX_EPOCH + whole,
        false => UNIX_EPOCH - whole,
    };
    t + Duration::from_nanos(u64::from(nsec))
}

// SAFETY: the statx buffer is boxed and the path a `CString` (heap bytes that do not move
// with `self`); `fd` holds the file.
unsafe impl OpData for Statx {
    type Output = io::Result<Metadata>;
    fn kind(&mut self) -> OpKind {
        OpKind::Statx {
            fd: self.fd.as_ref().map_or(libc::AT_FDCWD, SharedFd::raw),
            path: self.path.as_ptr(),
            flags: self.flags,
            mask: libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            buf: &mut *self.buf,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<Metadata> {
        res?;
        Ok(Metadata::from_statx(&self.buf))
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
                fd: Some(file.shared_fd().clone()),
                path: CString::default(),
                flags: libc::AT_EMPTY_PATH,
                buf: sys::statx_buf(),
            },
        )
    }

    /// Metadata of the file at `path`, following symlinks, like [`std::fs::metadata`]
    /// (statx by path).
    ///
    /// # Errors
    /// `InvalidInput` for a path with a NUL byte; else the kernel's error (`NotFound`, ...).
    ///
    /// # Examples
    /// ```
    /// use std::os::unix::fs::MetadataExt;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-path-metadata-{}", std::process::id()));
    /// std::fs::write(&path, b"12345")?;
    /// let meta = ring.block_on(ring.path_metadata(&path))?;
    /// let std_meta = std::fs::metadata(&path)?;
    /// assert_eq!((meta.len, meta.ino, meta.uid), (5, std_meta.ino(), std_meta.uid()));
    /// assert_eq!(meta.modified(), std_meta.modified()?);
    /// # std::fs::remove_file(path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "statx")]
    #[doc(alias = "stat")]
    pub fn path_metadata(&self, path: impl AsRef<Path>) -> Op<'_, Statx> {
        self.statx_path(path.as_ref(), 0)
    }

    /// Metadata of `path` itself (a symlink is not followed), like
    /// [`std::fs::symlink_metadata`].
    ///
    /// # Errors
    /// As [`Ring::path_metadata`](crate::RingRef::path_metadata).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let link = std::env::temp_dir().join(format!("safer-ring-doc-symlink-metadata-{}", std::process::id()));
    /// std::os::unix::fs::symlink("/nonexistent", &link)?;
    /// assert!(ring.block_on(ring.symlink_metadata(&link))?.is_symlink());
    /// # std::fs::remove_file(&link)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "lstat")]
    pub fn symlink_metadata(&self, path: impl AsRef<Path>) -> Op<'_, Statx> {
        self.statx_path(path.as_ref(), libc::AT_SYMLINK_NOFOLLOW)
    }

    fn statx_path(&self, path: &Path, flags: i32) -> Op<'_, Statx> {
        let mut op = Statx {
            fd: None,
            path: CString::default(),
            flags,
            buf: sys::statx_buf(),
        };
        match super::path::c_path(path) {
            Ok(c) => {
                op.path = c;
                Op::new(self, op)
            }
            Err(e) => Op::fail(self, op, e),
        }
    }
}
