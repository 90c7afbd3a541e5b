//! The I/O types. They carry no ring: operations are methods of [`Ring`](crate::Ring).

use std::io;
use std::os::fd::OwnedFd;

use super::SharedFd;
use super::fd::Multishot;

macro_rules! io_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name {
            pub(crate) fd: SharedFd,
            pub(crate) multi: Multishot,
        }

        impl $name {
            #[allow(dead_code)] // not every type is created from a completion
            pub(crate) fn from_shared(fd: SharedFd) -> Self {
                $name { fd, multi: Multishot::default() }
            }

            /// Takes ownership of `fd`. Its O_NONBLOCK flag is adjusted to the backend of the
            /// ring it is first used with.
            pub fn from_owned_fd(fd: OwnedFd) -> Self {
                $name::from_shared(SharedFd::new(fd, None))
            }

            /// Gives the fd back, or `Err(self)` while an operation still uses it (one whose
            /// future was dropped, or a multishot op this object armed, which dropping the
            /// object cancels).
            pub fn into_owned_fd(self) -> Result<OwnedFd, Self> {
                let $name { fd, multi } = self;
                fd.try_unwrap().map_err(|fd| $name { fd, multi })
            }
        }
    };
}

io_type!(
    /// An open file. Created by [`Ring::open`](crate::RingRef::open) or from a std file.
    File
);
io_type!(
    /// One end of a pipe, from [`Ring::pipe`](crate::RingRef::pipe).
    Pipe
);
io_type!(
    /// A listening TCP socket, from [`Ring::bind_tcp`](crate::RingRef::bind_tcp).
    TcpListener
);
io_type!(
    /// A connected TCP socket, from [`Ring::connect_tcp`](crate::RingRef::connect_tcp) or
    /// [`Ring::accept`](crate::RingRef::accept).
    TcpStream
);
io_type!(
    /// A connected Unix stream socket, from [`Ring::unix_pair`](crate::RingRef::unix_pair),
    /// [`Ring::connect_unix`](crate::RingRef::connect_unix) or
    /// [`Ring::accept_unix`](crate::RingRef::accept_unix).
    UnixStream
);
io_type!(
    /// A UDP socket, from [`Ring::bind_udp`](crate::RingRef::bind_udp): datagrams with
    /// [`Ring::send`](crate::RingRef::send)/[`Ring::recv`](crate::RingRef::recv) once
    /// [connected](UdpSocket::connect). Socket options: `socket2::SockRef::from(&socket)`.
    UdpSocket
);
io_type!(
    /// A listening Unix stream socket, from [`Ring::bind_unix`](crate::RingRef::bind_unix).
    UnixListener
);
io_type!(
    /// A Unix datagram socket, from [`Ring::bind_unix_datagram`](crate::RingRef::bind_unix_datagram),
    /// [`Ring::unix_datagram_unbound`](crate::RingRef::unix_datagram_unbound) or
    /// [`Ring::unix_datagram_pair`](crate::RingRef::unix_datagram_pair).
    UnixDatagram
);

impl From<std::fs::File> for File {
    fn from(f: std::fs::File) -> Self {
        File::from_owned_fd(f.into())
    }
}

impl From<std::net::TcpStream> for TcpStream {
    fn from(s: std::net::TcpStream) -> Self {
        TcpStream::from_owned_fd(s.into())
    }
}

impl From<std::net::TcpListener> for TcpListener {
    fn from(s: std::net::TcpListener) -> Self {
        TcpListener::from_owned_fd(s.into())
    }
}

impl From<std::os::unix::net::UnixStream> for UnixStream {
    fn from(s: std::os::unix::net::UnixStream) -> Self {
        UnixStream::from_owned_fd(s.into())
    }
}

impl TcpListener {
    /// The address the listener is bound to.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// println!("listening on {}", listener.local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        with_std_listener(self, |l| l.local_addr())
    }
}

impl TcpStream {
    /// The local address.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let client = ring.block_on(ring.connect_tcp(listener.local_addr()?))?;
    /// assert!(client.local_addr()?.ip().is_loopback());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        with_std_stream(self, |s| s.local_addr())
    }

    /// The peer's address.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let client = ring.block_on(ring.connect_tcp(listener.local_addr()?))?;
    /// assert_eq!(client.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        with_std_stream(self, |s| s.peer_addr())
    }

    /// Sets TCP_NODELAY.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let client = ring.block_on(ring.connect_tcp(listener.local_addr()?))?;
    /// client.set_nodelay(true)?; // small writes go out at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        with_std_stream(self, |s| s.set_nodelay(on))
    }
}

/// Runs `f` on a borrowed std view of the fd without taking ownership.
fn with_std_stream<T>(
    s: &TcpStream,
    f: impl FnOnce(&std::net::TcpStream) -> io::Result<T>,
) -> io::Result<T> {
    let dup = crate::kernel::sys::dup_fd(s.fd.raw())?;
    f(&std::net::TcpStream::from(dup))
}

fn with_std_listener<T>(
    l: &TcpListener,
    f: impl FnOnce(&std::net::TcpListener) -> io::Result<T>,
) -> io::Result<T> {
    let dup = crate::kernel::sys::dup_fd(l.fd.raw())?;
    f(&std::net::TcpListener::from(dup))
}

/// Options for [`Ring::open`](crate::RingRef::open), mirroring `std::fs::OpenOptions`.
///
/// # Examples
/// ```
/// use safer_ring::OpenOptions;
/// # let ring = safer_ring::Ring::new(8)?;
/// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-s-{}", std::process::id()));
/// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true).truncate(true)))?;
/// # drop(file);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) append: bool,
    pub(crate) truncate: bool,
    pub(crate) create: bool,
    pub(crate) create_new: bool,
    pub(crate) mode: u32,
    pub(crate) custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off, mode 0o666.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-n-{}", std::process::id()));
    /// std::fs::write(&path, b"x")?;
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().read(true)))?;
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }
    /// Open for reading.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-r-{}", std::process::id()));
    /// std::fs::write(&path, b"x")?;
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().read(true)))?;
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(mut self, on: bool) -> Self {
        self.read = on;
        self
    }
    /// Open for writing.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-w-{}", std::process::id()));
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true)))?;
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(mut self, on: bool) -> Self {
        self.write = on;
        self
    }
    /// Append (O_APPEND).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-a-{}", std::process::id()));
    /// std::fs::write(&path, b"log\n")?;
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().append(true)))?;
    /// let (n, _) = ring.block_on(ring.write(&file, b"more\n".to_vec()));
    /// n?;
    /// assert_eq!(std::fs::read(&path)?, b"log\nmore\n");
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(mut self, on: bool) -> Self {
        self.append = on;
        self
    }
    /// Truncate (O_TRUNC).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-t-{}", std::process::id()));
    /// std::fs::write(&path, b"old")?;
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).truncate(true)))?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), 0);
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate(mut self, on: bool) -> Self {
        self.truncate = on;
        self
    }
    /// Create if missing (O_CREAT).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-c-{}", std::process::id()));
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true)))?;
    /// assert!(path.exists());
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }
    /// Create, failing if it exists (O_CREAT | O_EXCL).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-cn-{}", std::process::id()));
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create_new(true)))?;
    /// let again = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create_new(true)));
    /// assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_new(mut self, on: bool) -> Self {
        self.create_new = on;
        self
    }
    /// Permission bits for a created file.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-m-{}", std::process::id()));
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true).mode(0o600)))?;
    /// use std::os::unix::fs::PermissionsExt;
    /// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// Extra open(2) flags, e.g. `libc::O_DIRECT`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::OpenOptions;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-oo-cf-{}", std::process::id()));
    /// let file = ring.block_on(ring.open(&path, &OpenOptions::new().write(true).create(true).custom_flags(libc::O_SYNC)))?;
    /// # drop(file);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn custom_flags(mut self, flags: i32) -> Self {
        self.custom_flags = flags;
        self
    }

    pub(crate) fn flags(&self) -> io::Result<i32> {
        let access = match (self.read, self.write || self.append) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "OpenOptions: neither read nor write/append was requested",
                ));
            }
        };
        let mut f = access | libc::O_CLOEXEC | self.custom_flags;
        if self.append {
            f |= libc::O_APPEND;
        }
        if self.truncate {
            f |= libc::O_TRUNC;
        }
        if self.create_new {
            f |= libc::O_CREAT | libc::O_EXCL;
        } else if self.create {
            f |= libc::O_CREAT;
        }
        Ok(f)
    }
}
