//! UDP sockets.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use super::UdpSocket;
use crate::RingRef;
use crate::kernel::msghdr;
use crate::kernel::sockaddr::{RawAddr, connect_now, sock_name};

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

    /// Turns UDP GRO (UDP_GRO, Linux 5.0+) on or off: with it on, the kernel may hand
    /// several datagrams of one sender as one coalesced receive, and
    /// [`Ring::recv_msg`](crate::RingRef::recv_msg) reports their size in
    /// [`MsgIn::segment_size`](crate::ops::MsgIn::segment_size). Receive with a buffer of
    /// 64 KiB then, or coalesced data is cut. Completes at once (no op).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let sock = ring.bind_udp("127.0.0.1:0")?;
    /// sock.set_gro(true)?;
    /// assert!(sock.gro()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "UDP_GRO")]
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        msghdr::set_udp_gro(self.fd.raw(), on)
    }

    /// Whether UDP GRO is on (see [`set_gro`](Self::set_gro)).
    pub fn gro(&self) -> io::Result<bool> {
        msghdr::udp_gro(self.fd.raw())
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
