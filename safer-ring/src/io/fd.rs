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
    /// The multishot recv armed on this socket by `recv_enhanced`, if any.
    pub(crate) multi: MultiRecv,
}

/// Called with (slot key, partly read buffer) when the socket goes away.
pub(crate) type DropHook = Box<dyn FnOnce(usize, Option<u16>)>;

/// A socket's multishot recv: its slot, a partly read provided buffer, and the hook that asks
/// the ring to cancel it when the socket goes away (the kernel holds the socket open while a
/// multishot is armed, so it must be cancelled, not just forgotten).
#[derive(Default)]
pub(crate) struct MultiRecv {
    pub(crate) key: Cell<Option<usize>>,
    /// (buffer id, bytes already handed out, bytes in the buffer).
    pub(crate) leftover: Cell<Option<(u16, u32, u32)>>,
    pub(crate) on_drop: std::cell::RefCell<Option<DropHook>>,
}

impl std::fmt::Debug for MultiRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiRecv")
            .field("key", &self.key.get())
            .finish()
    }
}

impl Drop for MultiRecv {
    fn drop(&mut self) {
        if let (Some(key), Some(hook)) = (self.key.get(), self.on_drop.get_mut().take()) {
            hook(key, self.leftover.get().map(|l| l.0));
        }
    }
}

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd, nonblocking: Option<bool>) -> Self {
        SharedFd(Rc::new(Inner {
            fd,
            nonblocking: Cell::new(nonblocking),
            multi: MultiRecv::default(),
        }))
    }

    pub(crate) fn multi(&self) -> &MultiRecv {
        &self.0.multi
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
