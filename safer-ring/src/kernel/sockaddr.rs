//! Socket addresses at a stable heap address ([`RawAddr`]) for the kernel to read or fill, in
//! their IP and Unix (`sockaddr_un`) forms, and the calls that take or fill one.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Socket address storage at a stable heap address for the kernel to read or fill.
pub(crate) struct RawAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl RawAddr {
    pub(crate) fn empty() -> Box<RawAddr> {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
        let storage = unsafe { mem::zeroed() };
        Box::new(RawAddr {
            storage,
            len: mem::size_of::<libc::sockaddr_storage>() as _,
        })
    }

    pub(crate) fn from_socket_addr(addr: &SocketAddr) -> Box<RawAddr> {
        let mut raw = RawAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as _,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    (&raw mut raw.storage)
                        .cast::<libc::sockaddr_in>()
                        .write(sin)
                };
                raw.len = mem::size_of::<libc::sockaddr_in>() as _;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as _,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    (&raw mut raw.storage)
                        .cast::<libc::sockaddr_in6>()
                        .write(sin6)
                };
                raw.len = mem::size_of::<libc::sockaddr_in6>() as _;
            }
        }
        raw
    }

    pub(crate) fn sockaddr_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    pub(crate) fn sockaddr_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&raw mut self.storage).cast()
    }

    /// The address as a std type; `None` for families other than IPv4/IPv6 (e.g. Unix).
    pub(crate) fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self.storage.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the family says the kernel wrote a sockaddr_in here.
                let sin = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the kernel wrote a sockaddr_in6 here.
                let s = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(s.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(s.sin6_port),
                    s.sin6_flowinfo,
                    s.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

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
