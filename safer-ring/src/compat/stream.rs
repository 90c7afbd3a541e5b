//! Which operations the adapter uses for each I/O type.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;

use crate::RingRef;
use crate::io::{AsIoFd, File, Pipe, TcpStream, UnixStream};

/// An operation the adapter keeps across polls. It owns a `RingRef` and an `Rc` of the stream,
/// so it borrows nothing from the adapter (the `Op` inside borrows the `RingRef` the same
/// boxed future owns); dropping it drops the `Op`, which hands its buffer to the ring.
pub(crate) type BoxOp<T> = Pin<Box<dyn Future<Output = T>>>;

mod sealed {
    pub trait Sealed {}
}

/// The I/O types [`Compat`](crate::Compat) adapts: sockets (`TcpStream`, `UnixStream`: `recv`
/// and `send`, and `poll_shutdown` shuts the write side down), pipe ends and files (`read` and
/// `write` at the fd's position; `poll_shutdown` only flushes).
pub trait CompatIo: AsIoFd + sealed::Sealed + 'static {
    #[doc(hidden)]
    const SOCKET: bool;
}

macro_rules! compat_io {
    ($($t:ty => $socket:expr),*) => {$(
        impl sealed::Sealed for $t {}
        impl CompatIo for $t {
            const SOCKET: bool = $socket;
        }
    )*};
}

compat_io!(TcpStream => true, UnixStream => true, Pipe => false, File => false);

/// One read into `buf` (filled from its start; its length is set to the bytes read).
pub(crate) fn read<S: CompatIo>(
    ring: &RingRef,
    io: &Rc<S>,
    buf: Vec<u8>,
) -> BoxOp<(io::Result<usize>, Vec<u8>)> {
    let (ring, io) = (ring.clone(), io.clone());
    Box::pin(async move {
        if S::SOCKET {
            ring.recv(&*io, buf).await
        } else {
            ring.read(&*io, buf).await
        }
    })
}

/// Writes all of `buf`, continuing short writes.
pub(crate) fn write_all<S: CompatIo>(
    ring: &RingRef,
    io: &Rc<S>,
    buf: Vec<u8>,
) -> BoxOp<(io::Result<()>, Vec<u8>)> {
    let (ring, io) = (ring.clone(), io.clone());
    Box::pin(async move {
        if S::SOCKET {
            ring.send_all(&*io, buf).await
        } else {
            ring.write_all(&*io, buf).await
        }
    })
}

/// Shuts the write side of a socket down; `None` for types without one.
pub(crate) fn shutdown_write<S: CompatIo>(
    ring: &RingRef,
    io: &Rc<S>,
) -> Option<BoxOp<io::Result<()>>> {
    if !S::SOCKET {
        return None;
    }
    let (ring, io) = (ring.clone(), io.clone());
    Some(Box::pin(async move {
        ring.shutdown(&*io, std::net::Shutdown::Write).await
    }))
}
