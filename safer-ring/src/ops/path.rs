//! Paths and file space: unlink, rename, mkdir, symlink, hard link, fallocate, ftruncate,
//! fadvise, sync_file_range.
//!
//! Each op needs an opcode some kernels lack (unlinkat/renameat 5.11, mkdirat/symlinkat/linkat
//! 5.15, fallocate/fadvise 5.6, sync_file_range 5.2, ftruncate 6.9); there, and on epoll, it
//! runs as its syscall on the ring's thread and completes like any op (see `backend/op.rs`).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use crate::backend::OpKind;
use crate::driver::op::{Op, OpData};
use crate::enhanced::PathTaken;
use crate::io::{AsIoFd, File, SharedFd};
use crate::{Feature, RingRef};

/// `path` as the C string the kernel reads; `InvalidInput` naming it if it has a NUL byte.
pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {path:?} contains a NUL byte"),
        )
    })
}

#[derive(Debug, Clone, Copy)]
enum PathKind {
    Unlink { dir: bool },
    Rename,
    Mkdir { mode: u32 },
    Symlink,
    Link,
}

/// A path operation (unlink, rename, mkdir, symlink, link); see
/// [`Ring::remove_file`](crate::RingRef::remove_file) and its neighbours.
///
/// # Examples
/// ```
/// use safer_ring::ops::PathOp;
/// # let ring = safer_ring::Ring::new(8)?;
/// # let dir = std::env::temp_dir().join(format!("safer-ring-doc-pathop-{}", std::process::id()));
/// let op: safer_ring::Op<'_, PathOp> = ring.create_dir(&dir);
/// ring.block_on(op)?;
/// ring.block_on(ring.remove_dir(&dir))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PathOp {
    kind: PathKind,
    /// The path acted on (for symlink: the link's target text).
    a: CString,
    /// The second path (rename/link: the new name; symlink: the link), else empty.
    b: CString,
}

// SAFETY: both paths are `CString`s, whose bytes are on the heap and do not move with `self`.
unsafe impl OpData for PathOp {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        let (a, b, cwd) = (self.a.as_ptr(), self.b.as_ptr(), libc::AT_FDCWD);
        match self.kind {
            PathKind::Unlink { dir } => OpKind::UnlinkAt {
                dirfd: cwd,
                path: a,
                flags: if dir { libc::AT_REMOVEDIR } else { 0 },
            },
            PathKind::Rename => OpKind::RenameAt {
                olddirfd: cwd,
                oldpath: a,
                newdirfd: cwd,
                newpath: b,
                flags: 0,
            },
            PathKind::Mkdir { mode } => OpKind::MkdirAt {
                dirfd: cwd,
                path: a,
                mode,
            },
            PathKind::Symlink => OpKind::SymlinkAt {
                target: a,
                newdirfd: cwd,
                linkpath: b,
            },
            PathKind::Link => OpKind::LinkAt {
                olddirfd: cwd,
                oldpath: a,
                newdirfd: cwd,
                newpath: b,
                flags: 0,
            },
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// fallocate(2); see [`Ring::fallocate`](crate::RingRef::fallocate).
///
/// # Examples
/// ```
/// use safer_ring::{ops::Fallocate, OpenOptions};
/// # let ring = safer_ring::Ring::new(8)?;
/// # let path = std::env::temp_dir().join(format!("safer-ring-doc-fallocate-t-{}", std::process::id()));
/// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true)))?;
/// let op: safer_ring::Op<'_, Fallocate> = ring.fallocate(&file, 0, 0, 4096);
/// ring.block_on(op)?;
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Fallocate {
    fd: SharedFd,
    mode: i32,
    offset: u64,
    len: u64,
}

// SAFETY: no pointers; `fd` holds the file.
unsafe impl OpData for Fallocate {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Fallocate {
            fd: self.fd.raw(),
            mode: self.mode,
            offset: self.offset,
            len: self.len,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// ftruncate(2); see [`Ring::set_len`](crate::RingRef::set_len).
///
/// # Examples
/// ```
/// use safer_ring::{ops::Ftruncate, OpenOptions};
/// # let ring = safer_ring::Ring::new(8)?;
/// # let path = std::env::temp_dir().join(format!("safer-ring-doc-ftruncate-t-{}", std::process::id()));
/// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true)))?;
/// let op: safer_ring::Op<'_, Ftruncate> = ring.set_len(&file, 10);
/// ring.block_on(op)?;
/// assert_eq!(std::fs::metadata(&path)?.len(), 10);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Ftruncate {
    fd: SharedFd,
    len: u64,
}

// SAFETY: no pointers; `fd` holds the file.
unsafe impl OpData for Ftruncate {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Ftruncate {
            fd: self.fd.raw(),
            len: self.len,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// A byte-range hint or write-back on an open file: posix_fadvise(2) or sync_file_range(2);
/// see [`Ring::fadvise`](crate::RingRef::fadvise) and
/// [`Ring::sync_file_range`](crate::RingRef::sync_file_range).
///
/// # Examples
/// ```
/// use safer_ring::{ops::FileRange, OpenOptions};
/// # let ring = safer_ring::Ring::new(8)?;
/// let file = ring.block_on(ring.open("/proc/self/exe", &OpenOptions::new().read(true)))?;
/// let op: safer_ring::Op<'_, FileRange> = ring.fadvise(&file, 0, 0, libc::POSIX_FADV_SEQUENTIAL);
/// ring.block_on(op)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileRange {
    fd: SharedFd,
    offset: u64,
    len: u64,
    /// The advice, or the sync_file_range flags.
    how: i32,
    sync: bool,
}

// SAFETY: no pointers; `fd` holds the file.
unsafe impl OpData for FileRange {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        let (fd, offset) = (self.fd.raw(), self.offset);
        match self.sync {
            false => OpKind::Fadvise {
                fd,
                offset,
                len: self.len,
                advice: self.how,
            },
            // The public method takes a u32 length.
            true => OpKind::SyncFileRange {
                fd,
                offset,
                len: self.len as u32,
                flags: self.how as u32,
            },
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

impl RingRef {
    /// Counts one use of `f`'s path in [`Ring::enhancement_stats`](crate::RingRef::enhancement_stats):
    /// native where this ring pushes its opcode, else the syscall fallback. Not timed.
    pub(crate) fn note(&self, f: Feature) {
        let path = match self.uses_native(f) {
            true => PathTaken::Native,
            false => PathTaken::Fallback,
        };
        self.record(f, path, Duration::ZERO);
    }

    fn path_op(&self, f: Feature, kind: PathKind, a: &Path, b: Option<&Path>) -> Op<'_, PathOp> {
        self.note(f);
        let mut op = PathOp {
            kind,
            a: CString::default(),
            b: CString::default(),
        };
        match c_path(a).and_then(|a| Ok((a, b.map(c_path).transpose()?))) {
            Ok((a, b)) => {
                op.a = a;
                op.b = b.unwrap_or_default();
                Op::new(self, op)
            }
            Err(e) => Op::fail(self, op, e),
        }
    }

    /// Removes a file (or symlink), like [`std::fs::remove_file`]: unlinkat(2), natively on
    /// Linux 5.11+.
    ///
    /// # Errors
    /// `InvalidInput` for a path with a NUL byte; else the kernel's error (`NotFound`, a
    /// directory: `EISDIR`, ...), with the errno std reports.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-unlink-{}", std::process::id()));
    /// std::fs::write(&path, b"x")?;
    /// ring.block_on(ring.remove_file(&path))?;
    /// assert!(!path.exists());
    /// let again = ring.block_on(ring.remove_file(&path)).unwrap_err();
    /// assert_eq!(again.kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_unlinkat")]
    #[doc(alias = "unlink")]
    pub fn remove_file(&self, path: impl AsRef<Path>) -> Op<'_, PathOp> {
        let kind = PathKind::Unlink { dir: false };
        self.path_op(Feature::UnlinkAt, kind, path.as_ref(), None)
    }

    /// Removes an empty directory, like [`std::fs::remove_dir`]: unlinkat(2) with
    /// `AT_REMOVEDIR`.
    ///
    /// # Errors
    /// As [`Ring::remove_file`](crate::RingRef::remove_file); a directory with entries is
    /// `ENOTEMPTY` (`ErrorKind::DirectoryNotEmpty`).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let dir = std::env::temp_dir().join(format!("safer-ring-doc-rmdir-{}", std::process::id()));
    /// std::fs::create_dir(&dir)?;
    /// ring.block_on(ring.remove_dir(&dir))?;
    /// assert!(!dir.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "rmdir")]
    pub fn remove_dir(&self, path: impl AsRef<Path>) -> Op<'_, PathOp> {
        let kind = PathKind::Unlink { dir: true };
        self.path_op(Feature::UnlinkAt, kind, path.as_ref(), None)
    }

    /// Renames `from` to `to`, replacing `to` if it exists, like [`std::fs::rename`]:
    /// renameat(2), natively on Linux 5.11+.
    ///
    /// # Errors
    /// `InvalidInput` for a path with a NUL byte; else the kernel's error.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let a = std::env::temp_dir().join(format!("safer-ring-doc-rename-a-{}", std::process::id()));
    /// # let b = std::env::temp_dir().join(format!("safer-ring-doc-rename-b-{}", std::process::id()));
    /// std::fs::write(&a, b"moved")?;
    /// ring.block_on(ring.rename(&a, &b))?;
    /// assert_eq!(std::fs::read(&b)?, b"moved");
    /// # std::fs::remove_file(&b)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_renameat")]
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Op<'_, PathOp> {
        let (from, to) = (from.as_ref(), to.as_ref());
        self.path_op(Feature::RenameAt, PathKind::Rename, from, Some(to))
    }

    /// Creates a directory (mode 0o777 less the umask), like [`std::fs::create_dir`]:
    /// mkdirat(2), natively on Linux 5.15+.
    ///
    /// # Errors
    /// `InvalidInput` for a path with a NUL byte; else the kernel's error (`AlreadyExists`,
    /// `NotFound` for a missing parent, ...).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let dir = std::env::temp_dir().join(format!("safer-ring-doc-mkdir-{}", std::process::id()));
    /// ring.block_on(ring.create_dir(&dir))?;
    /// assert!(dir.is_dir());
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_mkdirat")]
    #[doc(alias = "mkdir")]
    pub fn create_dir(&self, path: impl AsRef<Path>) -> Op<'_, PathOp> {
        self.create_dir_with_mode(path, 0o777)
    }

    /// As [`Ring::create_dir`](crate::RingRef::create_dir) with permission bits `mode` (less
    /// the umask).
    ///
    /// # Examples
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let dir = std::env::temp_dir().join(format!("safer-ring-doc-mkdir-mode-{}", std::process::id()));
    /// ring.block_on(ring.create_dir_with_mode(&dir, 0o700))?;
    /// assert_eq!(std::fs::metadata(&dir)?.permissions().mode() & 0o777, 0o700);
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_dir_with_mode(&self, path: impl AsRef<Path>, mode: u32) -> Op<'_, PathOp> {
        let kind = PathKind::Mkdir { mode };
        self.path_op(Feature::MkdirAt, kind, path.as_ref(), None)
    }

    /// Creates a symbolic link at `link` whose target is `original` (stored as given, not
    /// resolved), like [`std::os::unix::fs::symlink`]: symlinkat(2), natively on Linux 5.15+.
    ///
    /// # Errors
    /// `InvalidInput` for a path with a NUL byte; else the kernel's error.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let link = std::env::temp_dir().join(format!("safer-ring-doc-symlink-{}", std::process::id()));
    /// ring.block_on(ring.symlink("some/target", &link))?;
    /// assert_eq!(std::fs::read_link(&link)?, std::path::Path::new("some/target"));
    /// # std::fs::remove_file(&link)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_symlinkat")]
    pub fn symlink(&self, original: impl AsRef<Path>, link: impl AsRef<Path>) -> Op<'_, PathOp> {
        let (original, link) = (original.as_ref(), link.as_ref());
        self.path_op(Feature::SymlinkAt, PathKind::Symlink, original, Some(link))
    }

    /// Creates a hard link `link` to the file `original` (a symlink itself is linked, not
    /// followed), like [`std::fs::hard_link`]: linkat(2), natively on Linux 5.15+.
    ///
    /// # Errors
    /// `InvalidInput` for a path with a NUL byte; else the kernel's error.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let a = std::env::temp_dir().join(format!("safer-ring-doc-link-a-{}", std::process::id()));
    /// # let b = std::env::temp_dir().join(format!("safer-ring-doc-link-b-{}", std::process::id()));
    /// std::fs::write(&a, b"shared")?;
    /// ring.block_on(ring.hard_link(&a, &b))?;
    /// assert_eq!(std::fs::read(&b)?, b"shared");
    /// # std::fs::remove_file(&a)?;
    /// # std::fs::remove_file(&b)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_linkat")]
    pub fn hard_link(&self, original: impl AsRef<Path>, link: impl AsRef<Path>) -> Op<'_, PathOp> {
        let (original, link) = (original.as_ref(), link.as_ref());
        self.path_op(Feature::LinkAt, PathKind::Link, original, Some(link))
    }

    /// Manipulates the space of `file` in `offset..offset + len` as fallocate(2) with `mode`
    /// (0: allocate, extending the size; `libc::FALLOC_FL_KEEP_SIZE`,
    /// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`, ...), natively on Linux 5.6+.
    ///
    /// # Errors
    /// `InvalidInput` when `offset + len` passes the largest file offset (2^63 - 1); else the
    /// kernel's error (`EOPNOTSUPP` where the filesystem lacks the mode).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-fallocate-{}", std::process::id()));
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true)))?;
    /// ring.block_on(ring.fallocate(&file, 0, 0, 8192))?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), 8192);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_fallocate")]
    pub fn fallocate(&self, file: &File, mode: i32, offset: u64, len: u64) -> Op<'_, Fallocate> {
        self.note(Feature::Fallocate);
        let op = Fallocate {
            fd: file.shared_fd().clone(),
            mode,
            offset,
            len,
        };
        match offset.checked_add(len) {
            Some(end) => match crate::ops::check_offset("offset + len", end) {
                Ok(()) => Op::new(self, op),
                Err(e) => Op::fail(self, op, e),
            },
            None => {
                let e = format!("offset {offset} + len {len} overflows u64");
                Op::fail(self, op, io::Error::new(io::ErrorKind::InvalidInput, e))
            }
        }
    }

    /// Truncates or extends `file` to `len` bytes, like [`std::fs::File::set_len`]:
    /// ftruncate(2), natively on Linux 6.9+.
    ///
    /// # Errors
    /// `InvalidInput` for `len` beyond 2^63 - 1; else the kernel's error (`EINVAL` for a file
    /// not open for writing).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-set-len-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789")?;
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true)))?;
    /// ring.block_on(ring.set_len(&file, 4))?;
    /// assert_eq!(std::fs::read(&path)?, b"0123");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_ftruncate")]
    #[doc(alias = "ftruncate")]
    pub fn set_len(&self, file: &File, len: u64) -> Op<'_, Ftruncate> {
        self.note(Feature::Ftruncate);
        let op = Ftruncate {
            fd: file.shared_fd().clone(),
            len,
        };
        match crate::ops::check_offset("len", len) {
            Ok(()) => Op::new(self, op),
            Err(e) => Op::fail(self, op, e),
        }
    }

    /// Tells the kernel how `offset..offset + len` of `file` will be used (`len` 0: to the end)
    /// with a `libc::POSIX_FADV_*` advice, as posix_fadvise(2); natively on Linux 5.6+.
    ///
    /// # Errors
    /// `InvalidInput` when `offset + len` passes the largest file offset; else the kernel's
    /// error (`EINVAL` for an unknown advice, `ESPIPE` for a pipe).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let file = ring.block_on(ring.open("/proc/self/exe", &OpenOptions::new().read(true)))?;
    /// ring.block_on(ring.fadvise(&file, 0, 1 << 20, libc::POSIX_FADV_WILLNEED))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_fadvise")]
    #[doc(alias = "posix_fadvise")]
    pub fn fadvise(&self, file: &File, offset: u64, len: u64, advice: i32) -> Op<'_, FileRange> {
        self.range_op(Feature::Fadvise, file, offset, len, advice, false)
    }

    /// Starts or waits for write-back of `offset..offset + len` of `file` (`len` 0: to the
    /// end) with `libc::SYNC_FILE_RANGE_*` flags, as sync_file_range(2); natively on Linux
    /// 5.2+. Not a durability guarantee (no metadata, no device flush): use
    /// [`Ring::fsync`](crate::RingRef::fsync) for that.
    ///
    /// # Errors
    /// `InvalidInput` when `offset + len` passes the largest file offset; else the kernel's
    /// error (`EINVAL` for unknown flags, `ESPIPE` for a pipe).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-sfr-{}", std::process::id()));
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true)))?;
    /// let (n, _) = ring.block_on(ring.write_at(&file, vec![1u8; 8192], 0));
    /// n?;
    /// let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    /// ring.block_on(ring.sync_file_range(&file, 0, 8192, flags))?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_sync_file_range")]
    pub fn sync_file_range(
        &self,
        file: &File,
        offset: u64,
        len: u32,
        flags: u32,
    ) -> Op<'_, FileRange> {
        let (len, how) = (u64::from(len), flags as i32);
        self.range_op(Feature::SyncFileRange, file, offset, len, how, true)
    }

    fn range_op(
        &self,
        f: Feature,
        file: &File,
        offset: u64,
        len: u64,
        how: i32,
        sync: bool,
    ) -> Op<'_, FileRange> {
        self.note(f);
        let op = FileRange {
            fd: file.shared_fd().clone(),
            offset,
            len,
            how,
            sync,
        };
        match offset
            .checked_add(len)
            .map(|end| crate::ops::check_offset("offset + len", end))
        {
            Some(Ok(())) => Op::new(self, op),
            Some(Err(e)) => Op::fail(self, op, e),
            None => {
                let e = format!("offset {offset} + len {len} overflows u64");
                Op::fail(self, op, io::Error::new(io::ErrorKind::InvalidInput, e))
            }
        }
    }
}
