//! Copies a file through the ring:
//! `cargo run --release --example copy_file -- SRC DST [--backend auto|io_uring|epoll]`
//!
//! Holes stay holes (only the data segments SEEK_DATA/SEEK_HOLE find are copied, then the
//! destination is sized), copying a file onto itself is refused before anything is truncated,
//! files that report no size (`/proc`, `/sys`) are copied until end of file, and FIFOs,
//! devices and directories are refused with the reason.

#[path = "common/args.rs"]
mod args;

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use safer_ring::{File, OpenOptions, Ring};

const CHUNK: usize = 256 * 1024;

fn main() {
    let args = args::parse_or_exit("");
    let [src, dst] = &args.rest[..] else {
        eprintln!("usage: copy_file SRC DST [--backend auto|io_uring|epoll]");
        std::process::exit(2);
    };
    let ring = args::ring(args.backend, 64);
    match copy(&ring, src, dst) {
        Ok(n) => eprintln!("copied {n} bytes ({})", ring.backend()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn copy(ring: &Ring, src: &str, dst: &str) -> io::Result<u64> {
    let meta = std::fs::metadata(src)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{src} is {what}, not a regular file: it has no size to copy"),
        ));
    }
    if let Ok(d) = std::fs::metadata(dst)
        && (d.dev(), d.ino()) == (meta.dev(), meta.ino())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{src} and {dst} are the same file: copying would truncate it"),
        ));
    }
    ring.block_on(async {
        let from = ring.open(src, &OpenOptions::new().read(true)).await?;
        let out = OpenOptions::new().write(true).create(true).truncate(true);
        let to = ring.open(dst, &out).await?;
        let len = ring.metadata(&from).await?.len;
        let copied = if len == 0 {
            // /proc and /sys files say 0 and still have contents: read to end of file.
            copy_range(ring, &from, &to, 0, u64::MAX).await?
        } else {
            let mut copied = 0;
            let mut pos = 0;
            while let Some((data, hole)) = next_data(&from, pos, len)? {
                copied += copy_range(ring, &from, &to, data, hole).await?;
                pos = hole;
            }
            // Trailing holes: the size says where the file ends.
            std::fs::OpenOptions::new()
                .write(true)
                .open(dst)?
                .set_len(len)?;
            copied
        };
        ring.fsync(&to).await?;
        Ok(copied)
    })
}

/// The next data segment `[data, hole)` at or after `pos`, or `None` past the last one.
fn next_data(file: &File, pos: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    let seek = |off: u64, whence| {
        // SAFETY: lseek takes no pointers; the fd is open for as long as `file` lives.
        let r = unsafe { libc::lseek(file.as_raw_fd(), off as libc::off_t, whence) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as u64)
        }
    };
    if pos >= len {
        return Ok(None);
    }
    let data = match seek(pos, libc::SEEK_DATA) {
        Ok(d) => d,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(None), // only holes left
        // A file system without SEEK_DATA: all of it is data.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(Some((pos, len))),
        Err(e) => return Err(e),
    };
    let hole = seek(data, libc::SEEK_HOLE)?.min(len);
    Ok(Some((data, hole)))
}

/// Copies bytes `from..to` (or to end of file) at the same offsets; returns the bytes copied.
async fn copy_range(ring: &Ring, src: &File, dst: &File, from: u64, to: u64) -> io::Result<u64> {
    let mut off = from;
    let mut buf = Vec::with_capacity(CHUNK);
    while off < to {
        let want = CHUNK.min(usize::try_from(to - off).unwrap_or(CHUNK));
        buf.clear();
        let (n, b) = ring.read_at(src, std::mem::take(&mut buf), off).await;
        buf = b;
        let n = n?;
        if n == 0 {
            break;
        }
        buf.truncate(want.min(n));
        let (w, b) = ring.write_all_at(dst, buf, off).await;
        buf = b;
        w?;
        off += buf.len() as u64;
    }
    Ok(off - from)
}
