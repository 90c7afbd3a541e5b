//! Thin, checked wrappers over the libc calls the safe layers need.

use std::io;
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Blocks every signal in the calling thread (a blocking-pool thread): a process-directed
/// signal then goes to a thread that handles it, and no pooled syscall fails with EINTR where
/// io_uring's own workers, which take no signals, would have finished.
pub(crate) fn block_all_signals() {
    // SAFETY: `set` is a live local that sigfillset initialises before pthread_sigmask reads
    // it; a null old-set pointer is allowed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A non-blocking, close-on-exec eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a non-negative return is a fresh fd we now own.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter (wakes whoever polls it).
pub(crate) fn signal_eventfd(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local; EAGAIN (counter saturated) still leaves it readable.
    let _ = unsafe { libc::write(fd, (&raw const one).cast(), 8) };
}

/// Resets an eventfd's counter so the next poll blocks again.
pub(crate) fn drain_eventfd(fd: RawFd) {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live local; the fd is non-blocking.
    let _ = unsafe { libc::read(fd, (&raw mut v).cast(), 8) };
}

/// Sets or clears O_NONBLOCK.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL take no pointers; a bad fd yields EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// An fd's file type (`st_mode & S_IFMT`) and access mode (`O_ACCMODE` of its status flags).
pub(crate) fn fd_kind(fd: RawFd) -> io::Result<(libc::mode_t, i32)> {
    // SAFETY: `st` is a live, writable stat buffer; F_GETFL takes no pointer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        cvt(libc::fstat(fd, &mut st))?;
        let fl = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        Ok((st.st_mode & libc::S_IFMT, fl & libc::O_ACCMODE))
    }
}

/// Asks for a pipe buffer of `size` bytes (F_SETPIPE_SZ) and returns the size it has: the
/// kernel rounds up to pages, and refuses more than `/proc/sys/fs/pipe-max-size` or past the
/// user's pipe-page limits (then the pipe keeps its size).
pub(crate) fn set_pipe_size(fd: RawFd, size: usize) -> io::Result<usize> {
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ/F_GETPIPE_SZ take an int, no pointers.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, size); // a refusal keeps the size it has
        Ok(cvt(libc::fcntl(fd, libc::F_GETPIPE_SZ))? as usize)
    }
}

/// A close-on-exec socket, non-blocking if asked.
pub(crate) fn socket(domain: i32, ty: i32, nonblocking: bool) -> io::Result<OwnedFd> {
    let nb = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | nb, 0) })?;
    // SAFETY: fresh fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A connected pair of close-on-exec Unix stream sockets.
pub(crate) fn socketpair(nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let nb = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds the kernel writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | nb,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe(nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let nb = if nonblocking { libc::O_NONBLOCK } else { 0 };
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds the kernel writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | nb) })?;
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Takes ownership of an fd the kernel returned in a completion.
///
/// # Safety
/// `fd` is open and owned by nothing else (a completed accept/open/install just created it,
/// and each completion is handled once).
pub(crate) unsafe fn own_fd(fd: i32) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: the caller's guarantee.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A zeroed `statx` buffer at a stable heap address.
pub(crate) fn statx_buf() -> Box<libc::statx> {
    // SAFETY: statx is plain old data; all-zero is a valid value.
    Box::new(unsafe { mem::zeroed() })
}

/// The soft RLIMIT_MEMLOCK in bytes (for error messages).
pub(crate) fn memlock_limit() -> u64 {
    // SAFETY: all-zero rlimit is valid; getrlimit writes into the live local.
    let mut r: libc::rlimit = unsafe { mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } == 0 {
        r.rlim_cur
    } else {
        0
    }
}

/// A duplicate of `fd` (close-on-exec) that the caller owns and closes; it lives as long as the
/// caller keeps it (a std helper call, or a ring's lifetime for the MSG_RING target and the
/// tokio driver's registration).
pub(crate) fn dup_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes no pointers; a bad fd yields EBADF.
    let d = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(d) })
}

/// A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd.
pub(crate) fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes no pointers.
    let fd = cvt(unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    })?;
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms a timerfd to fire once after `d` (which must be non-zero).
pub(crate) fn timerfd_set(fd: RawFd, d: std::time::Duration) {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        },
    };
    // SAFETY: `spec` is a live local the kernel only reads; the old value is not requested.
    let _ = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
}

/// The kernel release string: `/proc/sys/kernel/osrelease`, or `uname(2)` when /proc is absent.
pub(crate) fn kernel_release() -> io::Result<String> {
    super::fault::check(super::fault::Syscall::Uname)?;
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        return Ok(s.trim().to_string());
    }
    // SAFETY: utsname is plain old data; all-zero is valid.
    let mut u: libc::utsname = unsafe { mem::zeroed() };
    // SAFETY: uname writes into the live local.
    cvt(unsafe { libc::uname(&mut u) })?;
    // SAFETY: the kernel NUL-terminates `release` within its fixed size.
    let c = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    Ok(c.to_string_lossy().into_owned())
}

/// One receive that does not wait (MSG_DONTWAIT) into `buf`'s spare capacity; the bytes
/// become part of `buf`. WouldBlock when nothing is queued.
pub(crate) fn recv_now(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: the kernel writes at most `spare.len()` bytes into the vector's spare capacity,
    // which is allocated and not aliased while `buf` is mutably borrowed.
    let n = unsafe {
        libc::recv(
            fd,
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: recv initialized the first `n <= spare.len()` bytes after the length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Re-listens with a larger backlog (std binds with 128).
pub(crate) fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen takes no pointers.
    cvt(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// Pins the calling thread to CPU `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    if cpu >= 8 * mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond what a cpu_set_t holds"),
        ));
    }
    // SAFETY: `cpu` is within the set (checked above); CPU_SET only writes into `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t of the size passed; pid 0 is the calling thread.
    cvt(unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) }).map(drop)
}
