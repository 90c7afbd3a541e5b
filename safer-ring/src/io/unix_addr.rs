//! Unix socket addresses: std's `SocketAddr` to and from the kernel's `sockaddr_un`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::RawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use crate::kernel::sockaddr::{self, RawAddr, UnixName};

/// `addr` for the kernel; an unnamed address names nothing to bind or connect to.
pub(crate) fn raw_from_std(addr: &SocketAddr) -> io::Result<Box<RawAddr>> {
    if let Some(p) = addr.as_pathname() {
        return raw_from_path(p);
    }
    if let Some(a) = addr.as_abstract_name() {
        return RawAddr::from_unix(UnixName::Abstract(a));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "an unnamed Unix socket address names nothing to bind or connect to",
    ))
}

pub(crate) fn raw_from_path(path: &Path) -> io::Result<Box<RawAddr>> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty path is not a Unix socket address",
        ));
    }
    RawAddr::from_unix(UnixName::Path(bytes))
}

/// The std address of what the kernel wrote into `raw` (accept, recvmsg, getsockname).
pub(crate) fn std_from_raw(raw: &RawAddr) -> io::Result<SocketAddr> {
    match raw.unix_name() {
        Some(UnixName::Unnamed) => unnamed(),
        Some(UnixName::Path(p)) => SocketAddr::from_pathname(Path::new(OsStr::from_bytes(p))),
        Some(UnixName::Abstract(a)) => SocketAddr::from_abstract_name(a),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected a Unix (AF_UNIX) address from the kernel",
        )),
    }
}

/// The socket's own address (`peer`: its peer's).
pub(crate) fn name_of(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    std_from_raw(&*sockaddr::sock_name(fd, peer)?)
}

/// std has no constructor for an unnamed address: take the one an unbound socket reports,
/// once per process.
pub(crate) fn unnamed() -> io::Result<SocketAddr> {
    static UNNAMED: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(a) = UNNAMED.get() {
        return Ok(a.clone());
    }
    let a = std::os::unix::net::UnixDatagram::unbound()?.local_addr()?;
    Ok(UNNAMED.get_or_init(|| a).clone())
}
