//! Unix stream sockets: accept on a [`UnixListener`], connect to a path or abstract name.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use crate::RingRef;
use crate::backend::OpKind;
use crate::driver::op::{Op, OpData};
use crate::io::unix_addr::{raw_from_path, raw_from_std, std_from_raw};
use crate::io::{AsIoFd, SharedFd, UnixListener, UnixStream};
use crate::kernel::sockaddr::RawAddr;
use crate::kernel::sys;

/// accept on a Unix listener; see [`Ring::accept_unix`](crate::RingRef::accept_unix).
pub struct AcceptUnix {
    fd: SharedFd,
    addr: Box<RawAddr>,
    nonblocking: bool,
}

// SAFETY: the sockaddr storage is boxed (does not move with `self`); `fd` holds the listener.
unsafe impl OpData for AcceptUnix {
    type Output = io::Result<(UnixStream, SocketAddr)>;
    fn kind(&mut self) -> OpKind {
        OpKind::Accept {
            fd: self.fd.raw(),
            addr: self.addr.sockaddr_mut_ptr(),
            len: &mut self.addr.len,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        // Own the fd first: if this op was dropped, the stream is closed right here.
        // SAFETY: a successful accept returns a new fd nothing else owns, handed out once.
        let fd = unsafe { sys::own_fd(res? as i32) };
        let stream = UnixStream::from_shared(SharedFd::new(fd, Some(self.nonblocking)));
        // std refuses to build a path of the full 108 bytes (no NUL) from its parts, but reads
        // one from the kernel itself: ask it then, rather than close an accepted connection.
        let addr = match std_from_raw(&self.addr) {
            Ok(a) => a,
            Err(_) => std::os::unix::net::UnixStream::from(stream.as_fd().try_clone_to_owned()?)
                .peer_addr()?,
        };
        Ok((stream, addr))
    }
}

/// connect of a new Unix stream socket; see [`Ring::connect_unix`](crate::RingRef::connect_unix).
pub struct ConnectUnix {
    fd: Option<SharedFd>,
    addr: Box<RawAddr>,
}

// SAFETY: the sockaddr is boxed (does not move with `self`); `fd` holds the socket.
unsafe impl OpData for ConnectUnix {
    type Output = io::Result<UnixStream>;
    fn kind(&mut self) -> OpKind {
        OpKind::Connect {
            fd: self.fd.as_ref().map_or(-1, SharedFd::raw),
            addr: self.addr.sockaddr_ptr(),
            len: self.addr.len,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        res?;
        let fd = self
            .fd
            .ok_or_else(|| io::Error::other("connect without a socket"))?;
        Ok(UnixStream::from_shared(fd))
    }
}

impl RingRef {
    /// Accepts one connection on a Unix listener: the stream (close-on-exec) and the peer's
    /// address (unnamed unless the client bound one). A socket of another family adopted as
    /// `UnixListener` is refused before anything is accepted.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-au-{}", std::process::id()));
    /// let listener = ring.bind_unix(&path)?;
    /// let _client = std::os::unix::net::UnixStream::connect(&path)?;
    /// let (stream, peer) = ring.block_on(ring.accept_unix(&listener))?;
    /// assert!(peer.is_unnamed());
    /// assert_eq!(stream.local_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_accept")]
    pub fn accept_unix(&self, listener: &UnixListener) -> Op<'_, AcceptUnix> {
        let fd = listener.shared_fd();
        let op = AcceptUnix {
            fd: fd.clone(),
            addr: RawAddr::empty(),
            nonblocking: self.nonblocking_fds(),
        };
        let check = fd
            .expect_domain(&[libc::AF_UNIX], "UnixListener")
            .and_then(|()| self.prepare(fd));
        Op::checked(self, op, check)
    }

    /// Connects a new Unix stream socket to the listener at `path`.
    ///
    /// # Errors
    /// As std: `NotFound` when nothing is at `path`, `ConnectionRefused` when the socket file
    /// is there but nobody listens on it.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-cu-{}", std::process::id()));
    /// let listener = ring.bind_unix(&path)?;
    /// ring.block_on(async {
    ///     let client = ring.connect_unix(&path).await?;
    ///     let (server, _) = ring.accept_unix(&listener).await?;
    ///     ring.send(&client, b"hi".to_vec()).await.0?;
    ///     let (_, buf) = ring.recv(&server, Vec::with_capacity(8)).await;
    ///     assert_eq!(buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_connect")]
    pub fn connect_unix(&self, path: impl AsRef<Path>) -> Op<'_, ConnectUnix> {
        self.connect_unix_raw(raw_from_path(path.as_ref()))
    }

    /// [`connect_unix`](Self::connect_unix) to a std address, e.g. an abstract name.
    ///
    /// # Examples
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let name = format!("safer-ring-doc-cua-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    /// let _listener = ring.bind_unix_addr(&addr)?;
    /// let client = ring.block_on(ring.connect_unix_addr(&addr))?;
    /// assert_eq!(client.peer_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_connect")]
    pub fn connect_unix_addr(&self, addr: &SocketAddr) -> Op<'_, ConnectUnix> {
        self.connect_unix_raw(raw_from_std(addr))
    }

    fn connect_unix_raw(&self, addr: io::Result<Box<RawAddr>>) -> Op<'_, ConnectUnix> {
        let nonblocking = self.nonblocking_fds();
        let made = addr.and_then(|addr| {
            let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM, nonblocking);
            Ok((fd?, addr))
        });
        match made {
            Ok((fd, addr)) => Op::new(
                self,
                ConnectUnix {
                    fd: Some(SharedFd::new(fd, Some(nonblocking))),
                    addr,
                },
            ),
            Err(e) => Op::fail(
                self,
                ConnectUnix {
                    fd: None,
                    addr: RawAddr::empty(),
                },
                e,
            ),
        }
    }
}
