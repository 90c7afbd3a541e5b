//! UDP sockets.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use super::UdpSocket;
use crate::RingRef;
use crate::backend::sys::RawAddr;
use crate::backend::unix_addr::{connect_now, sock_name};

impl From<std::net::UdpSocket> for UdpSocket {
    fn from(s: std::net::UdpSocket) -> Self {
        UdpSocket::from_owned_fd(s.into())
    }
}

impl RingRef {
    /// Binds a UDP socket to the first address that works (port 0: the kernel picks one).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let a = ring.bind_udp("127.0.0.1:0")?;
    /// let b = ring.bind_udp("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// b.connect(a.local_addr()?)?;
    /// ring.block_on(async {
    ///     ring.send(&a, b"datagram".to_vec()).await.0?;
    ///     let (n, buf) = ring.recv(&b, Vec::with_capacity(64)).await;
    ///     assert_eq!((n?, &buf[..]), (8, &b"datagram"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_udp(&self, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let s = UdpSocket::from(std::net::UdpSocket::bind(addr)?);
        self.prepare(&s.fd)?;
        Ok(s)
    }
}

impl UdpSocket {
    /// Sets the default peer (the first address that works): [`Ring::send`](crate::RingRef::send)
    /// sends there and [`Ring::recv`](crate::RingRef::recv) receives only from it. Completes at
    /// once (no op).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let a = ring.bind_udp("127.0.0.1:0")?;
    /// a.connect("127.0.0.1:9")?;
    /// assert_eq!(a.peer_addr()?, "127.0.0.1:9".parse()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match connect_now(self.fd.raw(), &RawAddr::from_socket_addr(&a)) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any addresses",
            )
        }))
    }

    /// The address the socket is bound to.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let a = ring.bind_udp("127.0.0.1:0")?;
    /// assert_ne!(a.local_addr()?.port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ip_name(self, false)
    }

    /// The connected peer's address (`NotConnected` if there is none).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let a = ring.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(a.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        ip_name(self, true)
    }
}

fn ip_name(s: &UdpSocket, peer: bool) -> io::Result<SocketAddr> {
    sock_name(s.fd.raw(), peer)?
        .to_socket_addr()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "UdpSocket holds a socket that is not IPv4/IPv6",
            )
        })
}
