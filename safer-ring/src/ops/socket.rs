//! Socket creation through the ring (IORING_OP_SOCKET, 5.19) with socket(2) as the fallback.

use std::io;
use std::os::fd::OwnedFd;

use crate::RingRef;
use crate::backend::OpKind;
use crate::backend::sys;
use crate::driver::op::{Op, OpData};
use crate::enhanced::PathTaken;
use crate::features::Feature;

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
