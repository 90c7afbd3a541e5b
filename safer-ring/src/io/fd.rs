//! The shared fd behind every I/O type.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::backend::sys;

/// An fd shared by an I/O value and the operations in flight on it.
#[derive(Clone, Debug)]
#[doc(hidden)]
pub struct SharedFd(Rc<Inner>);

#[derive(Debug)]
struct Inner {
    fd: OwnedFd,
    /// Last O_NONBLOCK state we set; `None` when unknown (adopted fds).
    nonblocking: Cell<Option<bool>>,
}

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd, nonblocking: Option<bool>) -> Self {
        SharedFd(Rc::new(Inner {
            fd,
            nonblocking: Cell::new(nonblocking),
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

    /// The fd itself if no operation holds it any more.
    pub(crate) fn try_unwrap(self) -> Result<OwnedFd, SharedFd> {
        Rc::try_unwrap(self.0).map(|i| i.fd).map_err(SharedFd)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// I/O types that operations can name. Sealed: implemented by safer-ring's own types only.
pub trait AsIoFd: sealed::Sealed {
    #[doc(hidden)]
    fn shared_fd(&self) -> &SharedFd;
}

macro_rules! io_fd {
    ($($t:ident),*) => {$(
        impl sealed::Sealed for super::$t {}
        impl AsIoFd for super::$t {
            fn shared_fd(&self) -> &SharedFd {
                &self.fd
            }
        }
        impl AsRawFd for super::$t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }
    )*};
}

io_fd!(File, Pipe, TcpListener, TcpStream, UnixStream);
