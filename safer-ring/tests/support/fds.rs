//! Fds for the attack tests: pipes whose write ends are passed around (EOF on the read end
//! proves no copy leaked), identity of an fd, the fd limit, comparable results.

use std::os::fd::{AsRawFd, OwnedFd};

/// A pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (r.into(), w.into())
}

/// Whether every write end of the pipe whose read end is `r` is closed (POLLHUP): no copy of
/// it is left in this process (leaked or kept under some random fd number).
pub fn writers_closed(r: &impl AsRawFd) -> bool {
    let mut p = libc::pollfd {
        fd: r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    p.revents & libc::POLLHUP != 0
}

/// (device, inode) of what `fd` refers to.
pub fn identity(fd: &impl AsRawFd) -> (u64, u64) {
    // SAFETY: fstat writes into the live local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    assert_eq!(r, 0, "fstat: {}", std::io::Error::last_os_error());
    (st.st_dev, st.st_ino)
}

/// Raises the soft fd limit to the hard one (tests that pass hundreds of fds).
pub fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on live locals.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// A result reduced to what must match across backends: `Ok(value)` or the errno / kind.
pub fn outcome<T: std::fmt::Debug>(r: &std::io::Result<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => match e.raw_os_error() {
            Some(n) => format!("Err(errno {n})"),
            None => format!("Err({:?})", e.kind()),
        },
    }
}
