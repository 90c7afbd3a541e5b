//! The shared fd behind every I/O type.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};

use crate::driver::{Chore, ChoreQueue};
use crate::kernel::sys;

/// An fd shared by an I/O value and the operations in flight on it.
#[derive(Clone, Debug)]
#[doc(hidden)]
pub struct SharedFd(Rc<Inner>);

#[derive(Debug)]
struct Inner {
    fd: OwnedFd,
    /// Last O_NONBLOCK state we set; `None` when unknown (adopted fds).
    nonblocking: Cell<Option<bool>>,
    /// The socket's address family (SO_DOMAIN) once a listener asked for it.
    domain: Cell<Option<i32>>,
}

/// The multishot op an I/O object armed on a ring (a recv on a stream, an accept on a
/// listener), kept in the object, not in its fd: the op's slot holds a clone of the fd until
/// its final completion, so the object's going away, not the fd's, is what cancels it.
#[derive(Default)]
#[doc(hidden)]
pub struct Multishot(RefCell<Option<Armed>>);

/// A multishot op's place on its ring.
pub(crate) struct Armed {
    /// The ring's chore queue: identifies the ring (and notices it was dropped).
    pub(crate) ring: Weak<ChoreQueue>,
    /// The op's `user_data` while it is armed.
    pub(crate) ud: Option<u64>,
    /// recv: a completion of that ring partly handed out: (bid, bytes of `bid` handed out,
    /// the completion's bytes from the start of `bid` on). A bundle's bytes past the first
    /// buffer continue in the buffers after `bid` in ring order.
    pub(crate) leftover: Option<(u16, u32, u32)>,
}

impl Multishot {
    pub(crate) fn state(&self) -> std::cell::RefMut<'_, Option<Armed>> {
        self.0.borrow_mut()
    }
}

impl std::fmt::Debug for Multishot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let armed = self.0.try_borrow().map(|a| a.as_ref().and_then(|a| a.ud));
        f.debug_tuple("Multishot").field(&armed.ok()).finish()
    }
}

impl Drop for Multishot {
    fn drop(&mut self) {
        let Some(a) = self.0.get_mut().take() else {
            return;
        };
        // The ring cancels the op (the kernel holds the file while it is armed) and takes the
        // buffer back; a dropped ring already did both.
        if let Some(ring) = a.ring.upgrade() {
            ring.push(Chore::Abandon {
                ud: a.ud,
                leftover: a.leftover.map(|(bid, _, len)| (bid, len)),
            });
        }
    }
}

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd, nonblocking: Option<bool>) -> Self {
        SharedFd(Rc::new(Inner {
            fd,
            nonblocking: Cell::new(nonblocking),
            domain: Cell::new(None),
        }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }

    /// Puts the fd in the blocking mode the ring's backend needs (one fcntl, only on change):
    /// io_uring wants blocking fds (O_NONBLOCK makes reads fail with EAGAIN), epoll non-blocking.
    pub(crate) fn prepare(&self, nonblocking: bool) -> io::Result<()> {
        if self.0.nonblocking.get() != Some(nonblocking) {
            sys::set_nonblocking(self.raw(), nonblocking)?;
            self.0.nonblocking.set(Some(nonblocking));
        }
        Ok(())
    }

    /// Fails unless the socket's address family is one of `want`: a listener type checks this
    /// before its first accept (and `recv_from`/`recv_from_unix` before receiving), so that an
    /// adopted socket of another family is refused before the kernel takes a connection or a
    /// datagram whose sender the type cannot describe. One getsockopt per fd.
    pub(crate) fn expect_domain(&self, want: &[i32], ty: &str) -> io::Result<()> {
        let domain = match self.0.domain.get() {
            Some(d) => d,
            None => {
                let d = i32::from(socket2::SockRef::from(self).domain()?);
                self.0.domain.set(Some(d));
                d
            }
        };
        if want.contains(&domain) {
            return Ok(());
        }
        let name = match domain {
            libc::AF_UNIX => "a Unix (AF_UNIX) socket",
            libc::AF_INET => "an IPv4 (AF_INET) socket",
            libc::AF_INET6 => "an IPv6 (AF_INET6) socket",
            _ => "a socket of another family",
        };
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{ty} holds {name} (address family {domain}); refused before the kernel was asked"
            ),
        ))
    }

    /// The fd itself if no operation holds it any more.
    pub(crate) fn try_unwrap(self) -> Result<OwnedFd, SharedFd> {
        Rc::try_unwrap(self.0).map(|i| i.fd).map_err(SharedFd)
    }
}

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// I/O types that operations can name. Sealed: implemented by safer-ring's own types only.
pub trait AsIoFd: sealed::Sealed {
    #[doc(hidden)]
    fn shared_fd(&self) -> &SharedFd;
    #[doc(hidden)]
    fn multishot(&self) -> &Multishot;
}

macro_rules! io_fd {
    ($($t:ident),*) => {$(
        impl sealed::Sealed for super::$t {}
        impl AsIoFd for super::$t {
            fn shared_fd(&self) -> &SharedFd {
                &self.fd
            }
            fn multishot(&self) -> &Multishot {
                &self.multi
            }
        }
        impl AsRawFd for super::$t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }
        /// Borrowed for socket options through `socket2::SockRef::from(&socket)` or rustix.
        impl AsFd for super::$t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }
    )*};
}

io_fd!(
    File,
    Pipe,
    TcpListener,
    TcpStream,
    UnixStream,
    UdpSocket,
    UnixListener,
    UnixDatagram
);
