//! Performs one operation with plain syscalls: the epoll backend's way of running every op,
//! and the io_uring backend's for an op whose opcode the running kernel lacks.

use std::io;
use std::os::fd::RawFd;

use super::op::{Direction, Exec};
use super::{CURRENT_POS, OpKind};

pub(crate) enum Attempt {
    /// Finished: a CQE-style result (value or negated errno).
    Done(i32),
    /// EAGAIN: wait for readiness of the op's fd in this direction.
    WouldBlock(Direction),
    /// EAGAIN on an op naming two fds (splice, tee): wait for this fd's readiness.
    WouldBlockOn(RawFd, Direction),
    /// A non-blocking connect is under way: wait for writability, then read SO_ERROR.
    InProgress,
}

fn done(ret: isize, dir: Option<Direction>) -> Attempt {
    if ret >= 0 {
        return Attempt::Done(ret.min(i32::MAX as isize) as i32);
    }
    let errno = io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    match (errno, dir) {
        (libc::EAGAIN, Some(d)) => Attempt::WouldBlock(d),
        (libc::EINPROGRESS, Some(Direction::Write)) => Attempt::InProgress,
        _ => Attempt::Done(-errno),
    }
}

/// Runs `op` once.
///
/// # Safety
/// Every pointer in `op` is valid for the access the op makes (the backend push contract: the
/// op has not completed yet).
pub(crate) unsafe fn attempt(op: OpKind) -> Attempt {
    let dir = match op.exec() {
        Exec::Poll(d) => Some(d),
        Exec::Pooled | Exec::Inline => None,
        // A timer is a deadline, not a syscall (epoll keeps a heap; io_uring has the opcode
        // on every kernel it runs on): attempting one is a backend bug, answered, not panicked.
        Exec::Timer | Exec::UringOnly => return Attempt::Done(-libc::EOPNOTSUPP),
    };
    let ret: isize = match op {
        OpKind::Nop => 0,
        // No table here: the same op on the fd itself.
        slot @ (OpKind::ReadSlot { .. }
        | OpKind::WriteSlot { .. }
        | OpKind::SendSlot { .. }
        | OpKind::RecvSlot { .. }
        | OpKind::FsyncSlot { .. }) => {
            // SAFETY: the same pointers, forwarded under this function's contract.
            return unsafe { attempt(slot.plain()) };
        }
        OpKind::Read {
            fd,
            buf,
            len,
            offset,
        }
        | OpKind::ReadFixed {
            fd,
            buf,
            len,
            offset,
            ..
        } => {
            // SAFETY: `buf` is valid for writes of `len` bytes (this function's contract).
            unsafe { single(fd, buf, len, offset, Dir::Read) }
        }
        OpKind::Write {
            fd,
            buf,
            len,
            offset,
        }
        | OpKind::WriteFixed {
            fd,
            buf,
            len,
            offset,
            ..
        } => {
            // SAFETY: `buf` is valid for reads of `len` bytes (this function's contract).
            unsafe { single(fd, buf.cast_mut(), len, offset, Dir::Write) }
        }
        OpKind::Readv {
            fd,
            iov,
            count,
            offset,
        } => retry_eintr(|| {
            // SAFETY: `iov` holds `count` iovecs of memory valid for writes.
            unsafe { vectored(fd, iov, count, offset, Dir::Read) }
        }),
        OpKind::Writev {
            fd,
            iov,
            count,
            offset,
        } => retry_eintr(|| {
            // SAFETY: `iov` holds `count` iovecs of memory valid for reads.
            unsafe { vectored(fd, iov, count, offset, Dir::Write) }
        }),
        // SAFETY: no pointers.
        OpKind::Fsync { fd, datasync: true } => unsafe { libc::fdatasync(fd) as isize },
        // SAFETY: no pointers.
        OpKind::Fsync { fd, .. } => unsafe { libc::fsync(fd) as isize },
        OpKind::OpenAt {
            dirfd,
            path,
            flags,
            mode,
        } => retry_eintr(|| {
            // SAFETY: `path` is a NUL-terminated string kept alive by the op.
            unsafe { libc::openat(dirfd, path, flags | libc::O_CLOEXEC, mode) as isize }
        }),
        // SAFETY: no pointers; the op owns the fd it closes.
        OpKind::Close { fd } => unsafe { libc::close(fd) as isize },
        OpKind::Statx {
            fd,
            path,
            flags,
            mask,
            buf,
        } => {
            // SAFETY: `path` is NUL-terminated and `buf` a statx buffer, both kept by the op.
            unsafe { libc::syscall(libc::SYS_statx, fd, path, flags, mask, buf) as isize }
        }
        OpKind::Accept { fd, addr, len } => retry_eintr(|| {
            let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
            // SAFETY: `addr`/`len` are the op's sockaddr storage and its length.
            unsafe { libc::accept4(fd, addr, len, flags) as isize }
        }),
        // SAFETY: `addr` points to `len` bytes of sockaddr kept by the op.
        OpKind::Connect { fd, addr, len } => unsafe { libc::connect(fd, addr, len) as isize },
        // Zero-copy is an io_uring feature; here it is an ordinary send (never chosen on
        // epoll, but the op has the same meaning).
        OpKind::Send {
            fd,
            buf,
            len,
            flags,
        }
        | OpKind::SendZc {
            fd,
            buf,
            len,
            flags,
        } => retry_eintr(|| {
            let flags = flags | libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
            // SAFETY: `buf` is valid for reads of `len` bytes.
            unsafe { libc::send(fd, buf.cast(), len as usize, flags) }
        }),
        OpKind::Recv {
            fd,
            buf,
            len,
            flags,
        } => retry_eintr(|| {
            // SAFETY: `buf` is valid for writes of `len` bytes.
            unsafe { libc::recv(fd, buf.cast(), len as usize, flags | libc::MSG_DONTWAIT) }
        }),
        // SAFETY: no pointers.
        OpKind::Shutdown { fd, how } => unsafe { libc::shutdown(fd, how) as isize },
        OpKind::PollReady { fd, events } => {
            let mut p = libc::pollfd {
                fd,
                events: events as libc::c_short,
                revents: 0,
            };
            // SAFETY: `p` is one live pollfd; a zero timeout never blocks.
            match retry_eintr(|| unsafe { libc::poll(&mut p, 1, 0) } as isize) {
                // Not ready: wait for the direction the row names, then ask again.
                0 => return Attempt::WouldBlock(dir.unwrap_or(Direction::Read)),
                n if n > 0 => p.revents as u16 as isize,
                e => e,
            }
        }
        OpKind::UnlinkAt { dirfd, path, flags } => {
            // SAFETY: `path` is a NUL-terminated string kept alive by the op (as every path
            // below).
            unsafe { libc::unlinkat(dirfd, path, flags) as isize }
        }
        OpKind::RenameAt {
            olddirfd,
            oldpath,
            newdirfd,
            newpath,
            flags,
        } => {
            let nr = libc::SYS_renameat2; // by number: not every libc wraps it
            // SAFETY: both paths are NUL-terminated strings kept alive by the op.
            unsafe { libc::syscall(nr, olddirfd, oldpath, newdirfd, newpath, flags) as isize }
        }
        OpKind::MkdirAt { dirfd, path, mode } => {
            // SAFETY: as above.
            unsafe { libc::mkdirat(dirfd, path, mode as libc::mode_t) as isize }
        }
        OpKind::SymlinkAt {
            target,
            newdirfd,
            linkpath,
        } => {
            // SAFETY: as above.
            unsafe { libc::symlinkat(target, newdirfd, linkpath) as isize }
        }
        OpKind::LinkAt {
            olddirfd,
            oldpath,
            newdirfd,
            newpath,
            flags,
        } => {
            // SAFETY: as above.
            unsafe { libc::linkat(olddirfd, oldpath, newdirfd, newpath, flags) as isize }
        }
        // Offsets were checked to fit i64 by the public API.
        OpKind::Fallocate {
            fd,
            mode,
            offset,
            len,
        } => retry_eintr(|| {
            let (offset, len) = (offset as libc::off_t, len as libc::off_t);
            // SAFETY: no pointers.
            unsafe { libc::fallocate(fd, mode, offset, len) as isize }
        }),
        OpKind::Ftruncate { fd, len } => retry_eintr(|| {
            // SAFETY: no pointers.
            unsafe { libc::ftruncate(fd, len as libc::off_t) as isize }
        }),
        OpKind::Fadvise {
            fd,
            offset,
            len,
            advice,
        } => {
            let (offset, len) = (offset as libc::off_t, len as libc::off_t);
            // SAFETY: no pointers. posix_fadvise returns the error instead of setting errno.
            match unsafe { libc::posix_fadvise(fd, offset, len, advice) } {
                0 => 0,
                e => return Attempt::Done(-e),
            }
        }
        OpKind::SyncFileRange {
            fd,
            offset,
            len,
            flags,
        } => retry_eintr(|| {
            let (offset, len) = (offset as libc::off64_t, libc::off64_t::from(len));
            // SAFETY: no pointers.
            unsafe { libc::sync_file_range(fd, offset, len, flags) as isize }
        }),
        OpKind::SendMsg { fd, msg, flags } => retry_eintr(|| {
            let flags = flags | libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
            // SAFETY: `msg` and the iovec, address and control data it points to are the op's.
            unsafe { libc::sendmsg(fd, msg, flags) }
        }),
        OpKind::RecvMsg { fd, msg, flags } => retry_eintr(|| {
            let flags = flags | libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT;
            // SAFETY: as for SendMsg; the kernel writes only within the lengths `msg` gives.
            unsafe { libc::recvmsg(fd, msg, flags) }
        }),
        OpKind::Socket {
            domain,
            ty,
            protocol,
        } => {
            // SAFETY: no pointers.
            unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) as isize }
        }
        // SAFETY: `addr` points to `len` bytes of sockaddr kept by the op.
        OpKind::Bind { fd, addr, len } => unsafe { libc::bind(fd, addr, len) as isize },
        // SAFETY: no pointers.
        OpKind::Listen { fd, backlog } => unsafe { libc::listen(fd, backlog) as isize },
        OpKind::Splice {
            fd_in,
            off_in,
            fd_out,
            off_out,
            len,
            flags,
        } => {
            let (mut o_in, mut o_out) = (off_in as libc::loff_t, off_out as libc::loff_t);
            let pos = |o: &mut libc::loff_t, off: u64| -> *mut libc::loff_t {
                if off == CURRENT_POS {
                    std::ptr::null_mut()
                } else {
                    o
                }
            };
            let (p_in, p_out) = (pos(&mut o_in, off_in), pos(&mut o_out, off_out));
            let flags = flags | libc::SPLICE_F_NONBLOCK;
            return two_ends(fd_in, fd_out, || {
                // SAFETY: the offsets are null or point to the locals above, which outlive the
                // call; the kernel reads and updates only them.
                unsafe { libc::splice(fd_in, p_in, fd_out, p_out, len as usize, flags) }
            });
        }
        OpKind::Tee {
            fd_in,
            fd_out,
            len,
            flags,
        } => {
            let flags = flags | libc::SPLICE_F_NONBLOCK;
            // SAFETY: no pointers.
            return two_ends(fd_in, fd_out, || unsafe {
                libc::tee(fd_in, fd_out, len as usize, flags)
            });
        }
        // Answered above (`Exec::Timer`, `Exec::UringOnly`); listed so a new op needs an arm.
        OpKind::Timeout { .. }
        | OpKind::MsgRing { .. }
        | OpKind::MsgRingFd { .. }
        | OpKind::FixedFdInstall { .. }
        | OpKind::RecvSelect { .. }
        | OpKind::RecvMulti { .. }
        | OpKind::RecvMsgMulti { .. }
        | OpKind::AcceptMulti { .. } => {
            return Attempt::Done(-libc::EOPNOTSUPP);
        }
    };
    done(ret, dir)
}

#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

/// One buffer, as a one-entry vector.
///
/// # Safety
/// As [`vectored`]: `buf` is valid for `len` bytes until the op completes.
unsafe fn single(fd: RawFd, buf: *mut u8, len: u32, offset: u64, dir: Dir) -> isize {
    let iov = libc::iovec {
        iov_base: buf.cast(),
        iov_len: len as usize,
    };
    // SAFETY: `iov` lives across the call and describes the caller's valid buffer.
    retry_eintr(|| unsafe { vectored(fd, &iov, 1, offset, dir) })
}

/// One (p)readv/(p)writev: at `offset`, or at the current position for `CURRENT_POS`.
///
/// # Safety
/// `iov` points to `count` iovecs describing memory valid for the transfer.
unsafe fn vectored(fd: RawFd, iov: *const libc::iovec, count: u32, offset: u64, dir: Dir) -> isize {
    let n = count as i32;
    // SAFETY: forwarded from the caller.
    unsafe {
        match (dir, offset == CURRENT_POS) {
            (Dir::Read, true) => libc::readv(fd, iov, n),
            (Dir::Read, false) => libc::preadv(fd, iov, n, offset as i64),
            (Dir::Write, true) => libc::writev(fd, iov, n),
            (Dir::Write, false) => libc::pwritev(fd, iov, n, offset as i64),
        }
    }
}

/// Runs a splice or tee (`f`) without blocking: each pipe or socket end that is blocking (as
/// io_uring keeps them) is O_NONBLOCK for the call, as SPLICE_F_NONBLOCK covers only the pipe
/// and a blocking socket would wait for room or data in the syscall. On EAGAIN, poll(2) tells
/// which end is not ready (see op.rs, "Ops on two fds").
fn two_ends(fd_in: RawFd, fd_out: RawFd, mut f: impl FnMut() -> isize) -> Attempt {
    let _nb = (NonBlocking::set(fd_in), NonBlocking::set(fd_out));
    for _ in 0..3 {
        let r = retry_eintr(&mut f);
        if r >= 0 {
            return Attempt::Done(r.min(i32::MAX as isize) as i32);
        }
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if errno != libc::EAGAIN {
            return Attempt::Done(-errno);
        }
        if let Some((fd, dir)) = blocked_end(fd_in, fd_out) {
            return Attempt::WouldBlockOn(fd, dir);
        }
        // Both ends turned ready since the call: try again.
    }
    Attempt::WouldBlockOn(fd_in, Direction::Read)
}

/// The end of a splice that is not ready: the input for reading, else the output for writing.
/// A regular file polls ready both ways, so it is never the one.
fn blocked_end(fd_in: RawFd, fd_out: RawFd) -> Option<(RawFd, Direction)> {
    let mut fds = [
        libc::pollfd {
            fd: fd_in,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: fd_out,
            events: libc::POLLOUT,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a live array of two pollfds; timeout 0 never waits.
    if unsafe { libc::poll(fds.as_mut_ptr(), 2, 0) } < 0 {
        return None;
    }
    let stuck = |p: &libc::pollfd| p.revents & (p.events | libc::POLLERR | libc::POLLHUP) == 0;
    if stuck(&fds[0]) {
        Some((fd_in, Direction::Read))
    } else if stuck(&fds[1]) {
        Some((fd_out, Direction::Write))
    } else {
        None
    }
}

/// O_NONBLOCK on a pipe or socket fd for as long as the value lives, restored on drop; nothing
/// for an fd that already is non-blocking (epoll's) or is a regular file (never waits).
struct NonBlocking(Option<(RawFd, libc::c_int)>);

impl NonBlocking {
    fn set(fd: RawFd) -> NonBlocking {
        // SAFETY: fcntl on an fd the op holds open; no pointers.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if fl < 0 || fl & libc::O_NONBLOCK != 0 {
            return NonBlocking(None);
        }
        // SAFETY: `st` is a live, writable stat buffer.
        let regular = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG
        };
        // SAFETY: as above.
        if regular || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return NonBlocking(None);
        }
        NonBlocking(Some((fd, fl)))
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        if let Some((fd, fl)) = self.0 {
            // SAFETY: as in `set`. (The caller read errno before this runs.)
            unsafe { libc::fcntl(fd, libc::F_SETFL, fl) };
        }
    }
}

fn retry_eintr(mut f: impl FnMut() -> isize) -> isize {
    loop {
        let r = f();
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return r;
        }
    }
}

/// Outcome of a non-blocking connect once the socket is writable.
pub(crate) fn connect_result(fd: RawFd) -> Attempt {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are live locals sized as getsockopt expects.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Attempt::Done(
            -io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        );
    }
    match err {
        0 => Attempt::Done(0),
        libc::EINPROGRESS | libc::EALREADY => Attempt::InProgress,
        e => Attempt::Done(-e),
    }
}
