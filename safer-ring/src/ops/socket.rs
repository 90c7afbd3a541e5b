//! Socket creation, bind and listen through the ring (IORING_OP_SOCKET 5.19, OP_BIND and
//! OP_LISTEN 6.11), with their syscalls as the fallback.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;

use crate::RingRef;
use crate::backend::OpKind;
use crate::driver::op::{Op, OpData};
use crate::enhanced::PathTaken;
use crate::features::Feature;
use crate::io::unix_addr::raw_from_path;
use crate::io::{SharedFd, TcpListener, UnixListener};
use crate::kernel::sockaddr::RawAddr;
use crate::kernel::sys;

/// IORING_OP_SOCKET; see [`Ring::socket`](crate::RingRef::socket).
pub struct Socket {
    domain: i32,
    ty: i32,
    protocol: i32,
}

// SAFETY: no pointers, no fds.
unsafe impl OpData for Socket {
    type Output = io::Result<OwnedFd>;
    fn kind(&mut self) -> OpKind {
        OpKind::Socket {
            domain: self.domain,
            ty: self.ty,
            protocol: self.protocol,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        // SAFETY: a successful OP_SOCKET returns a new fd nothing else owns, handed out once.
        Ok(unsafe { sys::own_fd(res? as i32) })
    }
}

impl RingRef {
    /// A new close-on-exec socket, e.g. `(libc::AF_INET6, libc::SOCK_DGRAM, 0)`, to wrap with
    /// an I/O type's `from_owned_fd` (after binding or setting options through `socket2`).
    /// Created by IORING_OP_SOCKET where the kernel has it ([`Feature::SocketOp`], 5.19), else by
    /// socket(2); [`Ring::enhancement_stats`](crate::RingRef::enhancement_stats) counts which.
    /// Type flags other than SOCK_NONBLOCK/SOCK_CLOEXEC are refused; the blocking mode is the
    /// backend's business and is set when the socket is first used.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Feature, UdpSocket};
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let fd = ring.block_on(ring.socket(libc::AF_INET, libc::SOCK_DGRAM, 0))?;
    /// socket2::SockRef::from(&fd).bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>()?.into())?;
    /// let sock = UdpSocket::from_owned_fd(fd);
    /// assert!(sock.local_addr()?.ip().is_loopback());
    /// let stats = ring.enhancement_stats(Feature::SocketOp);
    /// assert_eq!(stats.native + stats.fallback, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_socket")]
    pub async fn socket(&self, domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        if ty & !flags & !0xf != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "socket type {ty:#x}: only SOCK_NONBLOCK and SOCK_CLOEXEC may be added to the type"
                ),
            ));
        }
        let ty = (ty & !flags) | libc::SOCK_CLOEXEC;
        // The backend runs socket(2) where the ring does not use OP_SOCKET (epoll, an older
        // kernel, the feature turned off): the same op either way.
        let path = if self.uses_native(Feature::SocketOp) {
            PathTaken::Native
        } else {
            PathTaken::Fallback
        };
        let start = std::time::Instant::now();
        let res = Op::new(
            self,
            Socket {
                domain,
                ty,
                protocol,
            },
        )
        .await;
        self.record(Feature::SocketOp, path, start.elapsed());
        res
    }
}

/// bind(2) through the ring (OP_BIND, 6.11) or as a syscall.
struct Bind {
    fd: SharedFd,
    addr: Box<RawAddr>,
}

// SAFETY: the sockaddr is boxed (does not move with `self`); `fd` holds the socket.
unsafe impl OpData for Bind {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Bind {
            fd: self.fd.raw(),
            addr: self.addr.sockaddr_ptr(),
            len: self.addr.len,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        res.map(drop)
    }
}

/// listen(2) through the ring (OP_LISTEN, 6.11) or as a syscall.
struct Listen {
    fd: SharedFd,
    backlog: i32,
}

// SAFETY: no pointers; `fd` holds the socket.
unsafe impl OpData for Listen {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Listen {
            fd: self.fd.raw(),
            backlog: self.backlog,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        res.map(drop)
    }
}

impl RingRef {
    /// [`bind_tcp`](Self::bind_tcp) with each step through the ring: socket, bind and listen
    /// (backlog 1024) are OP_SOCKET (5.19) and OP_BIND/OP_LISTEN (6.11) where the kernel has
    /// them, their syscalls elsewhere ([`Feature::SocketOp`], [`Feature::BindListen`] in
    /// [`Ring::enhancement_stats`](crate::RingRef::enhancement_stats)). SO_REUSEADDR is set,
    /// as std does.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.block_on(ring.listen_tcp("127.0.0.1:0".parse()?))?;
    /// let _client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let (_stream, peer) = ring.block_on(ring.accept(&listener))?;
    /// assert!(peer.ip().is_loopback());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn listen_tcp(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = self.socket(domain, libc::SOCK_STREAM, 0).await?;
        socket2::SockRef::from(&fd).set_reuse_address(true)?;
        let fd = self
            .bind_and_listen(fd, RawAddr::from_socket_addr(&addr))
            .await?;
        let l = TcpListener::from_shared(fd);
        self.prepare(&l.fd)?;
        Ok(l)
    }

    /// [`bind_unix`](Self::bind_unix) with each step through the ring, as
    /// [`listen_tcp`](Self::listen_tcp).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-lu-{}", std::process::id()));
    /// let listener = ring.block_on(ring.listen_unix(&path))?;
    /// let _client = std::os::unix::net::UnixStream::connect(&path)?;
    /// let (_stream, peer) = ring.block_on(ring.accept_unix(&listener))?;
    /// assert!(peer.is_unnamed());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn listen_unix(&self, path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let addr = raw_from_path(path.as_ref())?;
        let fd = self.socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).await?;
        let fd = self.bind_and_listen(fd, addr).await?;
        let l = UnixListener::from_shared(fd);
        self.prepare(&l.fd)?;
        Ok(l)
    }

    async fn bind_and_listen(&self, fd: OwnedFd, addr: Box<RawAddr>) -> io::Result<SharedFd> {
        let path = if self.uses_native(Feature::BindListen) {
            PathTaken::Native
        } else {
            PathTaken::Fallback
        };
        let start = std::time::Instant::now();
        // Blocking until prepared: both creation paths make a blocking socket.
        let fd = SharedFd::new(fd, Some(false));
        Op::new(
            self,
            Bind {
                fd: fd.clone(),
                addr,
            },
        )
        .await?;
        let backlog = 1024;
        Op::new(
            self,
            Listen {
                fd: fd.clone(),
                backlog,
            },
        )
        .await?;
        self.record(Feature::BindListen, path, start.elapsed());
        Ok(fd)
    }
}
