//! Where the epoll backend runs an operation that readiness cannot wait for.
//!
//! Positional reads and writes (`read_at`, `write_at`, `readv_at`/`writev_at` with an offset)
//! first try `preadv2`/`pwritev2` with `RWF_NOWAIT` on the ring's thread: a page-cache hit
//! finishes there, which measured faster than a round trip through a pool thread
//! (`benches/file_qd32.rs`); `EAGAIN` (not cached, or the write would block) sends the op to the
//! blocking pool. O_DIRECT files skip the attempt: a synchronous call waits for the device
//! even with `RWF_NOWAIT`. Every other op the table marks `Exec::Pooled` (open, statx,
//! fsync, unlink, rename, mkdir, fallocate, ...) always goes to the pool. Everything else keeps
//! the readiness path (sockets, pipes, FIFOs), or runs inline because it never waits long
//! (`Exec::Inline`: close, NOP, shutdown, socket, bind, listen) or must keep its order: reads and writes at a file's current position share that
//! position, so they still run inline, one after the other.

use std::os::fd::RawFd;

use crate::backend::{CURRENT_POS, OpKind};

/// How the backend runs an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// Attempt now; park on readiness if it would block (sockets, pipes), or run inline.
    Ready,
    /// A positional read or write: try without blocking, else the pool.
    File,
    /// Always on the pool (no readiness exists for it).
    Pool,
}

pub(super) fn route(op: &OpKind) -> Route {
    match *op {
        OpKind::Read { offset, .. }
        | OpKind::Write { offset, .. }
        | OpKind::Readv { offset, .. }
        | OpKind::Writev { offset, .. }
            if offset != CURRENT_POS =>
        {
            Route::File
        }
        // open, statx, fsync, the path and space ops; quick syscalls run inline.
        _ if crate::backend::pool::offloads(op) => Route::Pool,
        _ => Route::Ready,
    }
}

/// What the kernel lets this backend try without blocking (learned from its answers).
#[derive(Debug, Clone, Copy)]
pub(super) struct NoWait {
    pub(super) reads: bool,
    pub(super) writes: bool,
}

impl NoWait {
    /// `SAFER_RING_EPOLL_NOWAIT=0` sends every positional read and write to the pool (to
    /// compare the two paths; see docs/TUNING.md).
    pub(super) fn from_env() -> NoWait {
        let on = std::env::var_os("SAFER_RING_EPOLL_NOWAIT").is_none_or(|v| v != "0");
        NoWait {
            reads: on,
            writes: on,
        }
    }
}

/// Runs a `Route::File` op without blocking: `Some(result)` if it finished here, `None` if it
/// must go to the pool.
///
/// # Safety
/// The op's pointers are valid (the backend push contract).
pub(super) unsafe fn try_inline(op: OpKind, caps: &mut NoWait) -> Option<i32> {
    let (fd, iov, count, offset, write) = match op {
        OpKind::Read {
            fd,
            buf,
            len,
            offset,
        } => (fd, one(buf, len), None, offset, false),
        OpKind::Write {
            fd,
            buf,
            len,
            offset,
        } => (fd, one(buf.cast_mut(), len), None, offset, true),
        OpKind::Readv {
            fd,
            iov,
            count,
            offset,
        } => (
            fd,
            libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            Some((iov, count)),
            offset,
            false,
        ),
        OpKind::Writev {
            fd,
            iov,
            count,
            offset,
        } => (
            fd,
            libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            Some((iov, count)),
            offset,
            true,
        ),
        _ => return None,
    };
    if !(if write { caps.writes } else { caps.reads }) || direct(fd) {
        return None;
    }
    let (ptr, n) = count.unwrap_or((&iov, 1));
    // SAFETY: `ptr` holds `n` iovecs (the op's own array, or `iov` on this frame) describing
    // memory valid for the transfer (this function's contract).
    let ret = unsafe { nowait(fd, ptr, n, offset, write) };
    if ret >= 0 {
        // A read the cache cut short would be a short read io_uring does not give (it retries):
        // unless it ended at the end of the file, the pool reads it whole (0 is EOF, final).
        if !write && ret > 0 {
            // SAFETY: as above, the iovecs are readable.
            let total = unsafe { total_len(ptr, n) };
            if (ret as usize) < total && !at_end(fd, offset + ret as u64) {
                return None;
            }
        }
        return Some(ret.min(i32::MAX as isize) as i32);
    }
    let errno = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    match errno {
        // Not cached / would block, or interrupted: the pool does the blocking call.
        libc::EAGAIN | libc::EINTR => None,
        // This file has no non-blocking path (or the kernel no RWF_NOWAIT writes): the pool
        // gives the real answer. Buffered writes say so on every file of most filesystems
        // before 6.x, so stop trying writes.
        libc::EOPNOTSUPP => {
            if write {
                caps.writes = false;
            }
            None
        }
        // No preadv2 (before 4.6) or no RWF_NOWAIT (before 4.14): never try again.
        libc::ENOSYS => {
            *caps = NoWait {
                reads: false,
                writes: false,
            };
            None
        }
        // Maybe an unknown flag; the pool's plain call reports a real EINVAL itself.
        libc::EINVAL => None,
        e => Some(-e),
    }
}

fn one(buf: *mut u8, len: u32) -> libc::iovec {
    libc::iovec {
        iov_base: buf.cast(),
        iov_len: len as usize,
    }
}

/// Whether `fd` was opened with O_DIRECT (checked per op: `fcntl` can change it).
fn direct(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no pointers; a bad fd answers -1 (then the pool reports EBADF).
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl < 0 || fl & libc::O_DIRECT != 0
}

/// Whether `pos` is at or past the end of `fd`'s file (a failing fstat says no).
fn at_end(fd: RawFd, pos: u64) -> bool {
    // SAFETY: fstat fills the zeroed local it is given.
    let st = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st)
    };
    st.is_some_and(|st| pos >= st.st_size as u64)
}

/// Total length of `n` iovecs.
///
/// # Safety
/// `iov` points to `n` readable iovecs.
unsafe fn total_len(iov: *const libc::iovec, n: u32) -> usize {
    // SAFETY: forwarded from the caller.
    let iovs = unsafe { std::slice::from_raw_parts(iov, n as usize) };
    iovs.iter().map(|v| v.iov_len).sum()
}

/// `preadv2`/`pwritev2(fd, iov, n, offset, RWF_NOWAIT)` as the raw syscall (musl's libc has no
/// wrapper on every target). The offset is passed as (low, high) words; 64-bit kernels take it
/// whole from the low one.
///
/// # Safety
/// `iov` points to `n` iovecs describing memory valid for the transfer.
unsafe fn nowait(fd: RawFd, iov: *const libc::iovec, n: u32, offset: u64, write: bool) -> isize {
    let nr = if write {
        libc::SYS_pwritev2
    } else {
        libc::SYS_preadv2
    };
    // SAFETY: the syscall reads `n` iovecs at `iov` and moves bytes within the memory they
    // describe (this function's contract); the other arguments are plain integers.
    unsafe {
        libc::syscall(
            nr,
            fd,
            iov,
            n as libc::c_long,
            offset as libc::c_long,
            (offset >> 32) as libc::c_long,
            libc::RWF_NOWAIT,
        ) as isize
    }
}
