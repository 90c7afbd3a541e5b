//! Sockets: accept, connect, send, recv, shutdown, and socket/pipe creation.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::backend::OpKind;
use crate::buf::{BufResult, Held, IoBuf, IoBufMut};
use crate::driver::op::{Op, OpData};
use crate::io::{AsIoFd, Pipe, SharedFd, TcpListener, TcpStream, UnixStream};
use crate::kernel::sockaddr::RawAddr;
use crate::kernel::sys;
use crate::{RingRef, ops::split_len};

/// accept; see [`Ring::accept`](crate::RingRef::accept).
///
/// # Examples
/// ```
/// use safer_ring::ops::Accept;
/// # let ring = safer_ring::Ring::new(8)?;
/// let listener = ring.bind_tcp("127.0.0.1:0")?;
/// let _c = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let op: safer_ring::Op<'_, Accept> = ring.accept(&listener);
/// let (_stream, peer) = ring.block_on(op)?;
/// assert!(peer.ip().is_loopback());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Accept {
    fd: SharedFd,
    addr: Box<RawAddr>,
    nonblocking: bool,
}

// SAFETY: the sockaddr storage is boxed (does not move with `self`); `fd` holds the listener.
unsafe impl OpData for Accept {
    type Output = io::Result<(TcpStream, SocketAddr)>;
    fn kind(&mut self) -> OpKind {
        OpKind::Accept {
            fd: self.fd.raw(),
            addr: self.addr.sockaddr_mut_ptr(),
            len: &mut self.addr.len,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        // Own the fd first: if this op was dropped, the stream is dropped (closed) right here.
        // SAFETY: a successful accept returns a new fd nothing else owns, handed out once.
        let fd = unsafe { sys::own_fd(res? as i32) };
        let stream = TcpStream::from_shared(SharedFd::new(fd, Some(self.nonblocking)));
        let peer = self.addr.to_socket_addr().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "accepted a connection from a non-IP address",
            )
        })?;
        Ok((stream, peer))
    }
}

/// connect; see [`Ring::connect_tcp`](crate::RingRef::connect_tcp).
///
/// # Examples
/// ```
/// use safer_ring::ops::Connect;
/// # let ring = safer_ring::Ring::new(8)?;
/// let listener = ring.bind_tcp("127.0.0.1:0")?;
/// let op: safer_ring::Op<'_, Connect> = ring.connect_tcp(listener.local_addr()?);
/// let _stream = ring.block_on(op)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connect {
    fd: Option<SharedFd>,
    addr: Box<RawAddr>,
}

// SAFETY: the sockaddr is boxed (does not move with `self`); `fd` holds the socket.
unsafe impl OpData for Connect {
    type Output = io::Result<TcpStream>;
    fn kind(&mut self) -> OpKind {
        let fd = self.fd.as_ref().map_or(-1, SharedFd::raw);
        OpKind::Connect {
            fd,
            addr: self.addr.sockaddr_ptr(),
            len: self.addr.len,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        res?;
        let fd = self
            .fd
            .ok_or_else(|| io::Error::other("connect without a socket"))?;
        Ok(TcpStream::from_shared(fd))
    }
}

/// send; see [`Ring::send`](crate::RingRef::send).
///
/// # Examples
/// ```
/// use safer_ring::ops::Send;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (a, _b) = ring.unix_pair()?;
/// let op: safer_ring::Op<'_, Send<Vec<u8>>> = ring.send(&a, b"x".to_vec());
/// assert_eq!(ring.block_on(op).0?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Send<B> {
    fd: SharedFd,
    buf: Held<B>,
    len: u32,
    flags: i32,
    zero_copy: bool,
}

// SAFETY: the buffer's memory is on the heap and stays put when `self` moves (IoBuf's contract); `fd` holds the socket.
unsafe impl<B: IoBuf> OpData for Send<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        let (fd, buf, len, flags) = (
            self.fd.raw(),
            self.buf.get().stable_ptr(),
            self.len,
            self.flags,
        );
        if self.zero_copy {
            OpKind::SendZc {
                fd,
                buf,
                len,
                flags,
            }
        } else {
            OpKind::Send {
                fd,
                buf,
                len,
                flags,
            }
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// recv; see [`Ring::recv`](crate::RingRef::recv).
///
/// # Examples
/// ```
/// use safer_ring::ops::Recv;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (a, b) = ring.unix_pair()?;
/// ring.block_on(ring.send(&a, b"x".to_vec())).0?;
/// let op: safer_ring::Op<'_, Recv<Vec<u8>>> = ring.recv(&b, Vec::with_capacity(4));
/// assert_eq!(ring.block_on(op).1, b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Recv<B> {
    fd: SharedFd,
    buf: Held<B>,
    len: u32,
    flags: i32,
}

// SAFETY: the buffer's memory is on the heap and stays put when `self` moves (IoBufMut's contract); `fd` holds the socket.
unsafe impl<B: IoBufMut> OpData for Recv<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        OpKind::Recv {
            fd: self.fd.raw(),
            buf: self.buf.get_mut().stable_mut_ptr(),
            len: self.len,
            flags: self.flags,
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> Self::Output {
        if let Ok(n) = res {
            // SAFETY: the kernel reported writing `n` bytes at the buffer's start.
            unsafe { self.buf.get_mut().set_init(n as usize) };
        }
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// shutdown; see [`Ring::shutdown`](crate::RingRef::shutdown).
///
/// # Examples
/// ```
/// use safer_ring::ops::Shutdown;
/// # let ring = safer_ring::Ring::new(8)?;
/// let (a, _b) = ring.unix_pair()?;
/// let op: safer_ring::Op<'_, Shutdown> = ring.shutdown(&a, std::net::Shutdown::Both);
/// ring.block_on(op)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Shutdown {
    fd: SharedFd,
    how: i32,
}

// SAFETY: no pointers; `fd` holds the socket.
unsafe impl OpData for Shutdown {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Shutdown {
            fd: self.fd.raw(),
            how: self.how,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// Refuses a `TcpListener` over a non-IP socket (an adopted Unix socket) before the kernel
/// accepts a connection the type could not describe.
pub(crate) fn ip_listener(listener: &TcpListener) -> io::Result<()> {
    listener
        .shared_fd()
        .expect_domain(&[libc::AF_INET, libc::AF_INET6], "TcpListener")
}

impl RingRef {
    /// Binds a TCP listener (SO_REUSEADDR, backlog 1024) to the first address that works.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?; // port 0: the kernel picks one
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_tcp(&self, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let l = TcpListener::from(std::net::TcpListener::bind(addr)?);
        sys::listen(l.fd.raw(), 1024)?;
        self.prepare(&l.fd)?;
        Ok(l)
    }

    /// Accepts one connection. The new socket is close-on-exec; if the future is dropped after
    /// the kernel accepted, the connection is closed, not leaked. A listener over a non-IP
    /// socket (e.g. a Unix socket adopted with `from_owned_fd`) fails with `InvalidInput`
    /// before anything is accepted: use [`accept_unix`](Self::accept_unix) for those.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let r = ring.clone();
    /// let server = ring.spawn(async move {
    ///     let (stream, peer) = r.accept(&listener).await?;
    ///     let (n, _) = r.send(&stream, b"welcome".to_vec()).await;
    ///     n.map(|_| peer)
    /// });
    /// ring.block_on(async {
    ///     let client = ring.connect_tcp(addr).await?;
    ///     let (_, buf) = ring.recv(&client, Vec::with_capacity(16)).await;
    ///     assert_eq!(buf, b"welcome");
    ///     assert_eq!(server.await.expect("server task")?, client.local_addr()?);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_accept")]
    pub fn accept(&self, listener: &TcpListener) -> Op<'_, Accept> {
        let fd = listener.shared_fd();
        let nonblocking = self.nonblocking_fds();
        let op = Accept {
            fd: fd.clone(),
            addr: RawAddr::empty(),
            nonblocking,
        };
        let check = ip_listener(listener).and_then(|()| self.prepare(fd));
        Op::checked(self, op, check)
    }

    /// Connects a new TCP socket to `addr`.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// ring.block_on(async {
    ///     let client = ring.connect_tcp(addr).await?; // the listener's backlog takes it
    ///     assert_eq!(client.peer_addr()?, addr);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_connect")]
    pub fn connect_tcp(&self, addr: SocketAddr) -> Op<'_, Connect> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let nonblocking = self.nonblocking_fds();
        let raw = RawAddr::from_socket_addr(&addr);
        match sys::socket(domain, libc::SOCK_STREAM, nonblocking) {
            Ok(fd) => Op::new(
                self,
                Connect {
                    fd: Some(SharedFd::new(fd, Some(nonblocking))),
                    addr: raw,
                },
            ),
            Err(e) => Op::fail(
                self,
                Connect {
                    fd: None,
                    addr: raw,
                },
                e,
            ),
        }
    }

    /// Sends `buf`'s initialized bytes (MSG_NOSIGNAL: a closed peer gives EPIPE, no signal).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     let (n, buf) = ring.send(&a, b"hi".to_vec()).await;
    ///     assert_eq!(n?, 2);
    ///     assert_eq!(buf, b"hi"); // handed back, e.g. to reuse
    ///     drop(b);
    ///     let (res, _) = ring.send(&a, buf).await;
    ///     assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe); // no SIGPIPE
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_send")]
    pub fn send<S: AsIoFd, B: IoBuf>(&self, sock: &S, buf: B) -> Op<'_, Send<B>> {
        self.send_op(sock, buf, false)
    }

    /// Zero-copy send (IORING_OP_SEND_ZC, Linux 6.0+); the buffer comes back only after the
    /// kernel's release notification. Used by [`Ring::send_enhanced`](crate::RingRef::send_enhanced).
    pub(crate) fn send_zc<S: AsIoFd, B: IoBuf>(&self, sock: &S, buf: B) -> Op<'_, Send<B>> {
        self.send_op(sock, buf, true)
    }

    fn send_op<S: AsIoFd, B: IoBuf>(&self, sock: &S, buf: B, zero_copy: bool) -> Op<'_, Send<B>> {
        let fd = sock.shared_fd();
        let (len, check) = split_len(buf.bytes_init());
        let op = Send {
            fd: fd.clone(),
            buf: Held::new(buf),
            len,
            flags: 0,
            zero_copy,
        };
        Op::checked(self, op, check.and_then(|()| self.prepare(fd)))
    }

    /// Receives into `buf` (filled from its start; a `Vec`'s length is set to the bytes read).
    /// `Ok(0)` means the peer closed its side.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.send(&a, b"data".to_vec()).await;
    ///     n?;
    ///     let (n, buf) = ring.recv(&b, Vec::with_capacity(1024)).await;
    ///     assert_eq!((n?, &buf[..]), (4, &b"data"[..]));
    ///     drop(a);
    ///     let (n, _) = ring.recv(&b, buf).await;
    ///     assert_eq!(n?, 0, "the peer closed");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_recv")]
    pub fn recv<S: AsIoFd, B: IoBufMut>(&self, sock: &S, buf: B) -> Op<'_, Recv<B>> {
        let fd = sock.shared_fd();
        let (len, check) = split_len(buf.bytes_total());
        let op = Recv {
            fd: fd.clone(),
            buf: Held::new(buf),
            len,
            flags: 0,
        };
        Op::checked(self, op, check.and_then(|()| self.prepare(fd)))
    }

    /// Shuts down one or both directions of a socket.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     ring.shutdown(&a, std::net::Shutdown::Write).await?;
    ///     let (n, _) = ring.recv(&b, Vec::with_capacity(8)).await;
    ///     assert_eq!(n?, 0, "end of stream after the peer's shutdown");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_shutdown")]
    pub fn shutdown<S: AsIoFd>(&self, sock: &S, how: std::net::Shutdown) -> Op<'_, Shutdown> {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        Op::new(
            self,
            Shutdown {
                fd: sock.shared_fd().clone(),
                how,
            },
        )
    }

    /// A pipe: (read end, write end).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.write(&tx, b"through".to_vec()).await;
    ///     n?;
    ///     let (_, buf) = ring.read(&rx, Vec::with_capacity(16)).await;
    ///     assert_eq!(buf, b"through");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pipe(&self) -> io::Result<(Pipe, Pipe)> {
        let nb = self.nonblocking_fds();
        let (r, w) = sys::pipe(nb)?;
        Ok((
            Pipe::from_shared(SharedFd::new(r, Some(nb))),
            Pipe::from_shared(SharedFd::new(w, Some(nb))),
        ))
    }

    /// A connected pair of Unix stream sockets.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.send(&b, b"pong".to_vec()).await;
    ///     n?;
    ///     let (_, buf) = ring.recv(&a, Vec::with_capacity(16)).await;
    ///     assert_eq!(buf, b"pong");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unix_pair(&self) -> io::Result<(UnixStream, UnixStream)> {
        let nb = self.nonblocking_fds();
        let (a, b) = sys::socketpair(nb)?;
        Ok((
            UnixStream::from_shared(SharedFd::new(a, Some(nb))),
            UnixStream::from_shared(SharedFd::new(b, Some(nb))),
        ))
    }
}
