//! `sockaddr_un` in the boxed [`RawAddr`] storage: what the Unix socket types hand the kernel
//! and read back from accept/recvmsg.

use std::io;
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::sys::RawAddr;

/// Offset of `sun_path` in `sockaddr_un` (the family field before it).
const PATH_OFFSET: usize = mem::size_of::<libc::sa_family_t>();

/// What an `AF_UNIX` address names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UnixName<'a> {
    /// No name (an unbound or socketpair socket).
    Unnamed,
    /// A filesystem path (without its terminating NUL).
    Path(&'a [u8]),
    /// A Linux abstract name (without its leading NUL).
    Abstract(&'a [u8]),
}

impl RawAddr {
    /// An `AF_UNIX` address for `name`, or an error naming the limit when it does not fit
    /// `sun_path` (108 bytes including the path's NUL or the abstract name's leading NUL).
    pub(crate) fn from_unix(name: UnixName<'_>) -> io::Result<Box<RawAddr>> {
        let mut un = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as _,
            sun_path: [0; 108],
        };
        let (bytes, lead) = match name {
            UnixName::Unnamed => (&[][..], 0),
            UnixName::Path(p) => (p, 0),
            UnixName::Abstract(a) => (a, 1),
        };
        let room = un.sun_path.len() - 1;
        if bytes.len() > room {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "Unix socket address of {} bytes is longer than the {room} bytes sun_path holds",
                    bytes.len()
                ),
            ));
        }
        if matches!(name, UnixName::Path(_)) && bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Unix socket path contains a NUL byte",
            ));
        }
        for (d, s) in un.sun_path[lead..].iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let mut raw = RawAddr::empty();
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        unsafe { (&raw mut raw.storage).cast::<libc::sockaddr_un>().write(un) };
        // Paths are counted with their NUL (as the kernel reports them), abstract names exactly.
        let nul = usize::from(matches!(name, UnixName::Path(_)));
        raw.len = (PATH_OFFSET + lead + bytes.len() + nul) as _;
        Ok(raw)
    }

    /// The Unix name the kernel wrote here, `None` if the family is not `AF_UNIX`.
    pub(crate) fn unix_name(&self) -> Option<UnixName<'_>> {
        if self.storage.ss_family as i32 != libc::AF_UNIX {
            return None;
        }
        // SAFETY: the family says the kernel wrote a sockaddr_un here.
        let un = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_un>() };
        // SAFETY: c_char and u8 have the same size and alignment; the array is fully initialized.
        let path: &[u8] = unsafe { &*(&raw const un.sun_path as *const [u8; 108]) };
        let len = (self.len as usize)
            .saturating_sub(PATH_OFFSET)
            .min(path.len());
        let path = &path[..len];
        Some(match path.split_first() {
            None => UnixName::Unnamed,
            Some((0, name)) => UnixName::Abstract(name),
            // A path may be reported with or without its NUL (and with trailing bytes after it).
            Some(_) => UnixName::Path(path.split(|b| *b == 0).next().unwrap_or(path)),
        })
    }
}

fn cvt(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// bind(2) to `addr` (any family).
pub(crate) fn bind(fd: RawFd, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `addr` holds `len` initialized bytes of sockaddr; the kernel only reads them.
    cvt(unsafe { libc::bind(fd, addr.sockaddr_ptr(), addr.len) })
}

/// connect(2) that completes at once: datagram sockets only record their peer.
pub(crate) fn connect_now(fd: RawFd, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: as in `bind`.
    cvt(unsafe { libc::connect(fd, addr.sockaddr_ptr(), addr.len) })
}

/// getsockname(2) (`peer`: getpeername(2)).
pub(crate) fn sock_name(fd: RawFd, peer: bool) -> io::Result<Box<RawAddr>> {
    let mut raw = RawAddr::empty();
    let (ptr, len) = (raw.sockaddr_mut_ptr(), &raw mut raw.len);
    // SAFETY: `ptr` has room for `len` bytes (a whole sockaddr_storage); both are live locals
    // of `raw`, which the kernel writes before returning.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, ptr, len)
        } else {
            libc::getsockname(fd, ptr, len)
        }
    };
    cvt(r).map(|()| raw)
}

/// A connected pair of close-on-exec Unix sockets of type `ty` (stream or datagram).
pub(crate) fn pair(ty: i32, nonblocking: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let nb = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds the kernel writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            ty | libc::SOCK_CLOEXEC | nb,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let u = RawAddr::from_unix(UnixName::Unnamed).unwrap();
        assert_eq!(u.unix_name(), Some(UnixName::Unnamed));
        let p = RawAddr::from_unix(UnixName::Path(b"/a")).unwrap();
        assert_eq!(p.unix_name(), Some(UnixName::Path(b"/a")));
        assert_eq!(p.len as usize, PATH_OFFSET + 3);
        let a = RawAddr::from_unix(UnixName::Abstract(b"a\0b")).unwrap();
        assert_eq!(a.unix_name(), Some(UnixName::Abstract(b"a\0b")));
        assert!(RawAddr::from_unix(UnixName::Path(&[b'x'; 108])).is_err());
        assert!(RawAddr::from_unix(UnixName::Path(&[b'x'; 107])).is_ok());
        assert!(RawAddr::from_unix(UnixName::Path(b"a\0b")).is_err());
    }
}
