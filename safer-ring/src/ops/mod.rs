//! Operations, one file per family. Each is a value owning its inputs (fd handle, buffer) that
//! becomes an [`Op`](crate::Op) future; buffers come back with the result, on success and error.

mod all;
mod fixed;
mod fixed_files;
mod fs;
mod msg;
mod net;
mod path;
mod ready;
mod rw;
mod socket;
mod splice;
mod time;
mod unix;

pub use fixed::{ReadFixed, WriteFixed};
pub use fixed_files::{
    FsyncRegistered, ReadRegistered, RecvRegistered, SendRegistered, WriteRegistered,
};
pub use fs::Metadata;
pub use fs::{Close, Fsync, OpenAt, Statx};
pub use msg::{MsgIn, MsgOut, RecvFrom, RecvFromUnix, RecvMsg, SendMsg};
pub(crate) use net::ip_listener;
pub use net::{Accept, Connect, Recv, Send, Shutdown};
pub use path::{Fallocate, FileRange, Ftruncate, PathOp};
pub use ready::{Readiness, Ready};
pub use rw::{ReadAt, Readv, WriteAt, Writev};
pub use socket::Socket;
pub use splice::{Splice, Tee};
pub use time::{Elapsed, Interval, MissedTicks, Nop, Sleep};
pub use unix::{AcceptUnix, ConnectUnix};

use std::io;

use crate::error::SaferRingError;

/// `len` as the kernel's u32, or 0 and the error for a buffer one operation cannot describe.
pub(crate) fn split_len(len: usize) -> (u32, io::Result<()>) {
    match check_len(len) {
        Ok(n) => (n, Ok(())),
        Err(e) => (0, Err(e)),
    }
}

/// Checks that one operation can describe `len` bytes (the kernel takes a u32).
pub(crate) fn check_len(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| {
        SaferRingError::BufferTooLarge {
            len,
            max: u32::MAX as usize,
        }
        .into()
    })
}

/// `InvalidInput` unless `value` fits the kernel's signed 64-bit file offsets (and so cannot be
/// taken for `CURRENT_POS`, the backends' "current position" marker, `u64::MAX`).
pub(crate) fn check_offset(what: &str, value: u64) -> io::Result<()> {
    if value > i64::MAX as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{what} {value} is beyond the largest file offset ({}); `read`/`write` (or `None`) use the current position",
                i64::MAX
            ),
        ));
    }
    Ok(())
}

/// `offset` as the backends take it: an explicit one must be a file offset (`u64::MAX` is
/// their `CURRENT_POS`), `None` is the current position.
pub(crate) fn position(offset: Option<u64>) -> (u64, io::Result<()>) {
    match offset {
        None => (crate::backend::CURRENT_POS, Ok(())),
        Some(o) => (o, check_offset("offset", o)),
    }
}
