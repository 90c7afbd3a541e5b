//! Path and file-space operations (unlink, rename, mkdir, symlink, link, fallocate, ftruncate,
//! metadata by path) on three rings each: io_uring (native where the kernel has the opcode),
//! io_uring with the feature forced off (its opcode is not pushed: the syscall fallback runs
//! on the io_uring backend), and epoll. Results are compared with std on the same files.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use safer_ring::{Feature, OpenOptions, Ring};

use crate::support;

/// A fresh directory in the temp dir (with a non-UTF-8 byte in its name), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let base = support::TempPath::new(tag);
        let mut name = base.0.clone().into_os_string().into_vec();
        name.extend_from_slice(b"-\xff\xfe");
        let dir = PathBuf::from(std::ffi::OsString::from_vec(name));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
    fn join(&self, name: &[u8]) -> PathBuf {
        self.0.join(OsStr::from_bytes(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

use std::os::unix::ffi::OsStringExt;

fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The ring's error is the one std gives for the same call: same errno, same kind.
#[track_caller]
fn same_error(ring: io::Result<()>, std: io::Result<()>) -> io::Error {
    let (r, s) = (ring.unwrap_err(), std.unwrap_err());
    assert_eq!(r.raw_os_error(), s.raw_os_error(), "ring {r} vs std {s}");
    assert_eq!(r.kind(), s.kind());
    r
}

three_rings_test!(paths create_and_remove_dirs, Feature::MkdirAt, |ring| {
    let t = TempDir::new("mkdir");
    let d = t.join(b"sub-\x80dir");
    ring.block_on(ring.create_dir_with_mode(&d, 0o750)).unwrap();
    let m = std::fs::metadata(&d).unwrap();
    assert!(m.is_dir());
    // The umask can only clear bits.
    assert_eq!(m.mode() & 0o777 & !0o750, 0);
    // EEXIST, as std.
    let e = same_error(ring.block_on(ring.create_dir(&d)), std::fs::create_dir(&d));
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    // ENOENT for a missing parent.
    let orphan = t.join(b"missing/child");
    let e = same_error(
        ring.block_on(ring.create_dir(&orphan)),
        std::fs::create_dir(&orphan),
    );
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    // ENOTEMPTY removing a directory with an entry; then removal once empty.
    std::fs::write(d.join("f"), b"x").unwrap();
    let e = same_error(ring.block_on(ring.remove_dir(&d)), std::fs::remove_dir(&d));
    assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
    std::fs::remove_file(d.join("f")).unwrap();
    ring.block_on(ring.remove_dir(&d)).unwrap();
    assert!(!d.exists());
    // EACCES in a directory we may not write (root may write anywhere).
    if is_root() {
        support::skip("EACCES check: running as root");
    } else {
        let ro = t.join(b"ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        let inner = ro.join("x");
        let e = same_error(
            ring.block_on(ring.create_dir(&inner)),
            std::fs::create_dir(&inner),
        );
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    }
    // A NUL byte is refused before any syscall, naming the path.
    let e = ring.block_on(ring.create_dir(t.join(b"a\0b"))).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("NUL"), "{e}");
});

three_rings_test!(paths remove_files, Feature::UnlinkAt, |ring| {
    let t = TempDir::new("unlink");
    let f = t.join(b"file-\xc3\x28");
    std::fs::write(&f, b"bytes").unwrap();
    ring.block_on(ring.remove_file(&f)).unwrap();
    assert!(std::fs::symlink_metadata(&f).is_err());
    let e = same_error(
        ring.block_on(ring.remove_file(&f)),
        std::fs::remove_file(&f),
    );
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    // A directory is not a file (EISDIR), as std says.
    let d = t.join(b"d");
    std::fs::create_dir(&d).unwrap();
    same_error(
        ring.block_on(ring.remove_file(&d)),
        std::fs::remove_file(&d),
    );
    // remove_dir on a file: ENOTDIR.
    std::fs::write(&f, b"x").unwrap();
    let e = same_error(ring.block_on(ring.remove_dir(&f)), std::fs::remove_dir(&f));
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    if !is_root() {
        std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(0o500)).unwrap();
        let e = same_error(
            ring.block_on(ring.remove_file(&f)),
            std::fs::remove_file(&f),
        );
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    } else {
        support::skip("EACCES check: running as root");
    }
});

three_rings_test!(paths rename_files, Feature::RenameAt, |ring| {
    let t = TempDir::new("rename");
    let (a, b) = (t.join(b"a-\xe9"), t.join(b"b-\xea"));
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    std::fs::write(&a, &data).unwrap();
    let ino = std::fs::metadata(&a).unwrap().ino();
    ring.block_on(ring.rename(&a, &b)).unwrap();
    assert!(!a.exists());
    assert_eq!(std::fs::read(&b).unwrap(), data);
    assert_eq!(std::fs::metadata(&b).unwrap().ino(), ino);
    // Replaces an existing target.
    std::fs::write(&a, b"new").unwrap();
    ring.block_on(ring.rename(&a, &b)).unwrap();
    assert_eq!(std::fs::read(&b).unwrap(), b"new");
    let e = same_error(ring.block_on(ring.rename(&a, &b)), std::fs::rename(&a, &b));
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    // A directory onto a non-empty directory: ENOTEMPTY (or EEXIST, whichever std gets).
    let (d1, d2) = (t.join(b"d1"), t.join(b"d2"));
    std::fs::create_dir(&d1).unwrap();
    std::fs::create_dir(&d2).unwrap();
    std::fs::write(d2.join("x"), b"").unwrap();
    same_error(
        ring.block_on(ring.rename(&d1, &d2)),
        std::fs::rename(&d1, &d2),
    );
});

three_rings_test!(paths symlinks, Feature::SymlinkAt, |ring| {
    let t = TempDir::new("symlink");
    let target = OsStr::from_bytes(b"no/such/\xfftarget");
    let link = t.join(b"link-\xfe");
    ring.block_on(ring.symlink(target, &link)).unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(target));
    let e = same_error(
        ring.block_on(ring.symlink(target, &link)),
        std::os::unix::fs::symlink(target, &link),
    );
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    // The link's own metadata, by path, without following it.
    let m = ring.block_on(ring.symlink_metadata(&link)).unwrap();
    let s = std::fs::symlink_metadata(&link).unwrap();
    assert!(m.is_symlink() && s.file_type().is_symlink());
    assert_eq!((m.ino, m.len), (s.ino(), s.len()));
    // Following it: the target is missing.
    let e = ring.block_on(ring.path_metadata(&link)).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        std::fs::metadata(&link).unwrap_err().raw_os_error()
    );
});

three_rings_test!(paths hard_links, Feature::LinkAt, |ring| {
    let t = TempDir::new("link");
    let (a, b) = (t.join(b"orig"), t.join(b"alias-\x81"));
    std::fs::write(&a, b"shared bytes").unwrap();
    ring.block_on(ring.hard_link(&a, &b)).unwrap();
    let (ma, mb) = (
        std::fs::metadata(&a).unwrap(),
        std::fs::metadata(&b).unwrap(),
    );
    assert_eq!((ma.ino(), ma.nlink()), (mb.ino(), 2));
    assert_eq!(std::fs::read(&b).unwrap(), b"shared bytes");
    let e = same_error(
        ring.block_on(ring.hard_link(&a, &b)),
        std::fs::hard_link(&a, &b),
    );
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    let gone = t.join(b"gone");
    let e = same_error(
        ring.block_on(ring.hard_link(&gone, t.join(b"x"))),
        std::fs::hard_link(&gone, t.join(b"x")),
    );
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
});

/// A file for the space tests, or `None` where the filesystem refuses fallocate.
fn open_rw(ring: &Ring, path: &Path) -> safer_ring::File {
    let opts = OpenOptions::new().read(true).write(true).create(true);
    ring.block_on(ring.open(path, &opts)).unwrap()
}

const GIB: u64 = 1 << 30;

three_rings_test!(paths
    fallocate_sparse_and_beyond_4_gib,
    Feature::Fallocate,
    |ring| {
        let t = TempDir::new("fallocate");
        let p = t.join(b"space");
        let f = open_rw(ring, &p);
        // Allocate 4 KiB at 5 GiB: the size follows, the file stays sparse.
        match ring.block_on(ring.fallocate(&f, 0, 5 * GIB, 4096)) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                return support::skip(format_args!(
                    "fallocate unsupported by the temp filesystem: {e}"
                ));
            }
            r => r.unwrap(),
        }
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.len(), 5 * GIB + 4096);
        assert!(m.blocks() * 512 < 16 << 20, "sparse: {} blocks", m.blocks());
        // KEEP_SIZE beyond the end: blocks grow, the size does not.
        ring.block_on(ring.fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, 6 * GIB, 1 << 20))
            .unwrap();
        let m2 = std::fs::metadata(&p).unwrap();
        assert_eq!(m2.len(), 5 * GIB + 4096);
        assert!(m2.blocks() > m.blocks());
        // Punch a hole in written data: zeros there, the bytes around it intact.
        let data: Vec<u8> = (0..3 * 4096).map(|i| (i % 251) as u8 + 1).collect();
        let (n, _) = ring.block_on(ring.write_at(&f, data.clone(), 4 * GIB));
        assert_eq!(n.unwrap(), data.len());
        let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        match ring.block_on(ring.fallocate(&f, punch, 4 * GIB + 4096, 4096)) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                support::skip(format_args!("hole punching unsupported here: {e}"))
            }
            r => {
                r.unwrap();
                let (n, got) =
                    ring.block_on(ring.read_at(&f, Vec::with_capacity(data.len()), 4 * GIB));
                assert_eq!(n.unwrap(), data.len());
                let mut want = data.clone();
                want[4096..8192].fill(0);
                assert!(got == want, "bytes after the punch differ");
            }
        }
        // Offsets past 2^63 are refused with a clear error before the kernel sees them.
        let e = ring
            .block_on(ring.fallocate(&f, 0, u64::MAX - 1, 2))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = ring
            .block_on(ring.fallocate(&f, 0, i64::MAX as u64, 1))
            .unwrap_err();
        assert!(e.to_string().contains("largest file offset"), "{e}");
        // The kernel's EINVAL for a zero length, as fallocate(2) gives it.
        let e = ring.block_on(ring.fallocate(&f, 0, 0, 0)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
);

three_rings_test!(paths set_len_extends_and_truncates, Feature::Ftruncate, |ring| {
    let t = TempDir::new("ftruncate");
    let p = t.join(b"sized");
    std::fs::write(&p, b"0123456789").unwrap();
    let f = open_rw(ring, &p);
    ring.block_on(ring.set_len(&f, 6 * GIB + 3)).unwrap();
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!(m.len(), 6 * GIB + 3);
    assert!(m.blocks() * 512 < 16 << 20, "extension is sparse");
    let (n, tail) = ring.block_on(ring.read_at(&f, Vec::with_capacity(8), 6 * GIB - 5));
    assert_eq!((n.unwrap(), &tail[..]), (8, &[0u8; 8][..]));
    ring.block_on(ring.set_len(&f, 4)).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"0123");
    // Read-only file: the errno std's set_len gets.
    let ro = ring
        .block_on(ring.open(&p, &OpenOptions::new().read(true)))
        .unwrap();
    let std_ro = std::fs::File::open(&p).unwrap();
    let e = same_error(ring.block_on(ring.set_len(&ro, 1)), std_ro.set_len(1));
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    let e = ring.block_on(ring.set_len(&f, u64::MAX)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
});

three_rings_test!(paths metadata_by_path_matches_std, Feature::Fallocate, |ring| {
    // (Feature::Fallocate only to get the three rings: metadata by path is STATX, a core op.)
    let t = TempDir::new("statx");
    let p = t.join(b"meta-\xff");
    let f = open_rw(ring, &p);
    ring.block_on(ring.fallocate(&f, 0, 0, 1)).ok();
    std::fs::write(&p, vec![7u8; 12345]).unwrap();
    // Times with nanoseconds that survive any filesystem granularity test: set them.
    let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
    let mt = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 987_654_321);
    let times = std::fs::FileTimes::new().set_accessed(at).set_modified(mt);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_times(times)
        .unwrap();
    let m = ring.block_on(ring.path_metadata(&p)).unwrap();
    let s = std::fs::metadata(&p).unwrap();
    assert!(m.is_file() && !m.is_dir() && !m.is_symlink());
    assert_eq!(
        (
            m.dev, m.ino, m.mode, m.nlink, m.uid, m.gid, m.rdev, m.len, m.blocks, m.blksize
        ),
        (
            s.dev(),
            s.ino(),
            s.mode(),
            s.nlink() as u32,
            s.uid(),
            s.gid(),
            s.rdev(),
            s.len(),
            s.blocks(),
            s.blksize() as u32
        )
    );
    assert_eq!(
        (m.atime_sec, m.atime_nsec),
        (s.atime(), s.atime_nsec() as u32)
    );
    assert_eq!(
        (m.mtime_sec, m.mtime_nsec),
        (s.mtime(), s.mtime_nsec() as u32)
    );
    assert_eq!(
        (m.ctime_sec, m.ctime_nsec),
        (s.ctime(), s.ctime_nsec() as u32)
    );
    assert_eq!((m.mtime_sec, m.mtime_nsec), (1_700_000_000, 987_654_321));
    assert_eq!(m.accessed(), s.accessed().unwrap());
    assert_eq!(m.modified(), s.modified().unwrap());
    match (m.created(), s.created()) {
        (Some(a), Ok(b)) => assert_eq!(a, b),
        (None, Err(_)) => {}
        // std reads btime only where it calls statx (glibc); on musl it answers Unsupported.
        (Some(_), Err(e)) if e.kind() == std::io::ErrorKind::Unsupported => {}
        (a, b) => panic!("birth time: ring {a:?}, std {b:?}"),
    }
    // The same through the fd.
    let by_fd = ring.block_on(ring.metadata(&f)).unwrap();
    assert_eq!(by_fd, m);
    // A directory, and a missing path.
    let d = ring.block_on(ring.path_metadata(&t.0)).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.ino, std::fs::metadata(&t.0).unwrap().ino());
    let gone = t.join(b"gone");
    let e = ring.block_on(ring.path_metadata(&gone)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert_eq!(
        e.raw_os_error(),
        std::fs::metadata(&gone).unwrap_err().raw_os_error()
    );
});

three_rings_test!(paths fadvise_hints, Feature::Fadvise, |ring| {
    let t = TempDir::new("fadvise");
    let p = t.join(b"hinted");
    std::fs::write(&p, vec![5u8; 64 * 1024]).unwrap();
    let f = open_rw(ring, &p);
    for advice in [
        libc::POSIX_FADV_SEQUENTIAL,
        libc::POSIX_FADV_WILLNEED,
        libc::POSIX_FADV_DONTNEED,
        libc::POSIX_FADV_NORMAL,
    ] {
        ring.block_on(ring.fadvise(&f, 0, 0, advice)).unwrap();
    }
    // Beyond 4 GiB is a valid range on a small file.
    ring.block_on(ring.fadvise(&f, 5 * GIB, 4096, libc::POSIX_FADV_RANDOM))
        .unwrap();
    // The errno posix_fadvise(3) returns for the same bad calls.
    let std_file = std::fs::File::open(&p).unwrap();
    let direct = |fd, advice| {
        // SAFETY: plain integers; `fd` is open for the call.
        let e = unsafe { libc::posix_fadvise(fd, 0, 0, advice) };
        Err::<(), _>(io::Error::from_raw_os_error(e))
    };
    use std::os::fd::AsRawFd;
    let e = same_error(
        ring.block_on(ring.fadvise(&f, 0, 0, 9999)),
        direct(std_file.as_raw_fd(), 9999),
    );
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    let (r, _w) = ring.pipe().unwrap();
    let pipe = ring
        .block_on(ring.open(
            format!("/proc/self/fd/{}", r.as_raw_fd()),
            &OpenOptions::new().read(true),
        ))
        .unwrap();
    let e = same_error(
        ring.block_on(ring.fadvise(&pipe, 0, 0, libc::POSIX_FADV_NORMAL)),
        direct(r.as_raw_fd(), libc::POSIX_FADV_NORMAL),
    );
    assert_eq!(e.raw_os_error(), Some(libc::ESPIPE));
    let e = ring.block_on(ring.fadvise(&f, u64::MAX, 1, 0)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
});

three_rings_test!(paths
    sync_file_range_writes_back,
    Feature::SyncFileRange,
    |ring| {
        let t = TempDir::new("sfr");
        let p = t.join(b"synced");
        let f = open_rw(ring, &p);
        let data: Vec<u8> = (0..16384u32).map(|i| (i * 7 % 256) as u8).collect();
        let (n, _) = ring.block_on(ring.write_at(&f, data.clone(), 5 * GIB));
        assert_eq!(n.unwrap(), data.len());
        let all = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        ring.block_on(ring.sync_file_range(&f, 5 * GIB, data.len() as u32, all))
            .unwrap();
        ring.block_on(ring.sync_file_range(&f, 0, 0, libc::SYNC_FILE_RANGE_WRITE))
            .unwrap();
        // The bytes, through std.
        use std::os::unix::fs::FileExt;
        let mut back = vec![0u8; data.len()];
        std::fs::File::open(&p)
            .unwrap()
            .read_exact_at(&mut back, 5 * GIB)
            .unwrap();
        assert!(back == data);
        // Unknown flags: the kernel's EINVAL, as the direct call gets it.
        use std::os::fd::AsRawFd;
        let std_file = std::fs::File::open(&p).unwrap();
        // SAFETY: plain integers; the file is open for the call.
        let direct = unsafe { libc::sync_file_range(std_file.as_raw_fd(), 0, 0, 0x100) };
        let direct_err = io::Error::last_os_error();
        assert_eq!(direct, -1);
        let e = same_error(
            ring.block_on(ring.sync_file_range(&f, 0, 0, 0x100)),
            Err(direct_err),
        );
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let e = ring
            .block_on(ring.sync_file_range(&f, i64::MAX as u64, 2, 0))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
);
