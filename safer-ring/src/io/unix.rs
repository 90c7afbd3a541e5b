//! Unix sockets: listeners, datagram sockets, and the addresses of all three types.

use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::unix_addr::{name_of, raw_from_path, raw_from_std};
use super::{SharedFd, UnixDatagram, UnixListener, UnixStream};
use crate::RingRef;
use crate::kernel::sockaddr::{RawAddr, bind, connect_now, pair};
use crate::kernel::sys;

impl From<std::os::unix::net::UnixListener> for UnixListener {
    fn from(s: std::os::unix::net::UnixListener) -> Self {
        UnixListener::from_owned_fd(s.into())
    }
}

impl From<std::os::unix::net::UnixDatagram> for UnixDatagram {
    fn from(s: std::os::unix::net::UnixDatagram) -> Self {
        UnixDatagram::from_owned_fd(s.into())
    }
}

impl RingRef {
    /// Binds a Unix stream listener (backlog 1024) to `path`, which must not exist yet
    /// (EADDRINUSE, as std reports it, if it does); the socket file stays after the listener is
    /// dropped, as with std.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-bu-{}", std::process::id()));
    /// let listener = ring.bind_unix(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_unix(&self, path: impl AsRef<Path>) -> io::Result<UnixListener> {
        self.bound_unix_listener(&*raw_from_path(path.as_ref())?)
    }

    /// [`bind_unix`](Self::bind_unix) to a std address, e.g. a Linux abstract name
    /// (`std::os::linux::net::SocketAddrExt::from_abstract_name`), which leaves no file behind.
    ///
    /// # Examples
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let name = format!("safer-ring-doc-{}", std::process::id());
    /// let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    /// let listener = ring.bind_unix_addr(&addr)?;
    /// assert_eq!(listener.local_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_unix_addr(&self, addr: &SocketAddr) -> io::Result<UnixListener> {
        self.bound_unix_listener(&*raw_from_std(addr)?)
    }

    fn bound_unix_listener(&self, addr: &RawAddr) -> io::Result<UnixListener> {
        let nb = self.nonblocking_fds();
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM, nb)?;
        bind(sys_raw(&fd), addr)?;
        sys::listen(sys_raw(&fd), 1024)?;
        Ok(UnixListener::from_shared(SharedFd::new(fd, Some(nb))))
    }

    /// A Unix datagram socket bound to `path` (which must not exist yet).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let dir = std::env::temp_dir();
    /// # let (pa, pb) = (dir.join(format!("safer-ring-doc-da-{}", std::process::id())), dir.join(format!("safer-ring-doc-db-{}", std::process::id())));
    /// let a = ring.bind_unix_datagram(&pa)?;
    /// let b = ring.bind_unix_datagram(&pb)?;
    /// a.connect(&pb)?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.send(&a, b"one datagram".to_vec()).await;
    ///     n?;
    ///     let (_, buf) = ring.recv(&b, Vec::with_capacity(64)).await;
    ///     assert_eq!(buf, b"one datagram");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_file(&pa)?; std::fs::remove_file(&pb)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_unix_datagram(&self, path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        self.datagram_at(Some(&*raw_from_path(path.as_ref())?))
    }

    /// [`bind_unix_datagram`](Self::bind_unix_datagram) to a std address (e.g. an abstract name).
    ///
    /// # Examples
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let name = format!("safer-ring-doc-dg-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    /// let sock = ring.bind_unix_datagram_addr(&addr)?;
    /// assert_eq!(sock.local_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_unix_datagram_addr(&self, addr: &SocketAddr) -> io::Result<UnixDatagram> {
        self.datagram_at(Some(&*raw_from_std(addr)?))
    }

    /// An unbound Unix datagram socket (it can send to a bound one; replies need a name).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let sock = ring.unix_datagram_unbound()?;
    /// assert!(sock.local_addr()?.is_unnamed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unix_datagram_unbound(&self) -> io::Result<UnixDatagram> {
        self.datagram_at(None)
    }

    fn datagram_at(&self, addr: Option<&RawAddr>) -> io::Result<UnixDatagram> {
        let nb = self.nonblocking_fds();
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM, nb)?;
        if let Some(addr) = addr {
            bind(sys_raw(&fd), addr)?;
        }
        Ok(UnixDatagram::from_shared(SharedFd::new(fd, Some(nb))))
    }

    /// A connected pair of Unix datagram sockets.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_datagram_pair()?;
    /// ring.block_on(async {
    ///     ring.send(&a, b"ping".to_vec()).await.0?;
    ///     let (_, buf) = ring.recv(&b, Vec::with_capacity(16)).await;
    ///     assert_eq!(buf, b"ping");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unix_datagram_pair(&self) -> io::Result<(UnixDatagram, UnixDatagram)> {
        let nb = self.nonblocking_fds();
        let (a, b) = pair(libc::SOCK_DGRAM, nb)?;
        Ok((
            UnixDatagram::from_shared(SharedFd::new(a, Some(nb))),
            UnixDatagram::from_shared(SharedFd::new(b, Some(nb))),
        ))
    }
}

fn sys_raw(fd: &std::os::fd::OwnedFd) -> std::os::fd::RawFd {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

impl UnixListener {
    /// The address the listener is bound to.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-ula-{}", std::process::id()));
    /// let listener = ring.bind_unix(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.fd.raw(), false)
    }
}

impl UnixStream {
    /// The local address (unnamed for a connecting or socketpair socket).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, _b) = ring.unix_pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.fd.raw(), false)
    }

    /// The peer's address (for a connected client: the listener's).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-upa-{}", std::process::id()));
    /// let _listener = ring.bind_unix(&path)?;
    /// let client = ring.block_on(ring.connect_unix(&path))?;
    /// assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.fd.raw(), true)
    }
}

impl UnixDatagram {
    /// Sets the peer that [`Ring::send`](crate::RingRef::send) sends to and the only one
    /// [`Ring::recv`](crate::RingRef::recv) receives from. Completes at once (no op).
    ///
    /// # Errors
    /// As connect(2): `NotFound` for a missing path, `ConnectionRefused` for a socket file
    /// nobody is bound to any more.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-udc-{}", std::process::id()));
    /// let server = ring.bind_unix_datagram(&path)?;
    /// let client = ring.unix_datagram_unbound()?;
    /// client.connect(&path)?;
    /// assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// # drop(server); std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        connect_now(self.fd.raw(), &*raw_from_path(path.as_ref())?)
    }

    /// [`connect`](Self::connect) to a std address (e.g. an abstract name).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (server, _) = ring.unix_datagram_pair()?;
    /// let client = ring.unix_datagram_unbound()?;
    /// // An unnamed address cannot be connected to:
    /// assert!(client.connect_addr(&server.local_addr()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        connect_now(self.fd.raw(), &*raw_from_std(addr)?)
    }

    /// The address the socket is bound to (unnamed if it is not).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, _b) = ring.unix_datagram_pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.fd.raw(), false)
    }

    /// The connected peer's address (`NotConnected` if there is none).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let sock = ring.unix_datagram_unbound()?;
    /// assert_eq!(sock.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        name_of(self.fd.raw(), true)
    }
}
