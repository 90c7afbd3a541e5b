//! I/O types owned by safer-ring: every fd is shared (`Rc`) with the operations naming it, so it
//! is closed only after the last of them has completed.

mod fd;
mod fixed_file;
mod types;
mod udp;
mod unix;
pub(crate) mod unix_addr;

pub(crate) use fd::Armed;
pub use fd::AsIoFd;
pub use fd::SharedFd;
pub use fixed_file::FixedFile;
pub use types::{
    File, OpenOptions, Pipe, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener,
    UnixStream,
};
