//! `Ring::accept_multiple`: a stream of accepted connections (TCP or Unix listeners). Native:
//! one multishot accept (Linux 5.19+), re-armed whenever a completion arrives without
//! IORING_CQE_F_MORE. Fallback: a loop of single accepts (io_uring or epoll).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::multishot::{MultishotStream, Shots};
use crate::RingRef;
use crate::driver::{Driver, MultiKind};
use crate::features::Feature;
use crate::io::{AsIoFd, SharedFd, TcpListener, TcpStream, UnixListener, UnixStream};
use crate::kernel::sys;

/// A listener [`Ring::accept_multiple`](crate::RingRef::accept_multiple) serves:
/// [`TcpListener`] or [`UnixListener`]. Sealed (through [`AsIoFd`]).
pub trait AcceptListener: AsIoFd {
    /// The connections it accepts.
    type Conn: 'static;
    /// Refuses a listener of another address family before anything is accepted.
    #[doc(hidden)]
    fn check_family(&self) -> io::Result<()>;
    /// One single accept (the fallback path), bounded by `timeout` if given.
    #[doc(hidden)]
    fn accept_one<'r>(&'r self, ring: &'r RingRef, timeout: Option<Duration>) -> Single<'r, Self>;
    /// A connection around an fd a multishot accept completion produced.
    #[doc(hidden)]
    fn conn(fd: SharedFd) -> Self::Conn;
}

/// A single accept in flight (boxed: it is the fallback path, one syscall a connection anyway).
#[doc(hidden)]
pub type Single<'r, L> =
    Pin<Box<dyn Future<Output = io::Result<<L as AcceptListener>::Conn>> + 'r>>;

impl AcceptListener for TcpListener {
    type Conn = TcpStream;
    fn check_family(&self) -> io::Result<()> {
        crate::ops::ip_listener(self)
    }
    fn accept_one<'r>(&'r self, ring: &'r RingRef, timeout: Option<Duration>) -> Single<'r, Self> {
        let mut op = ring.accept(self);
        if let Some(bound) = timeout {
            op = op.timeout(bound);
        }
        Box::pin(async move { op.await.map(|(s, _)| s) })
    }
    fn conn(fd: SharedFd) -> TcpStream {
        TcpStream::from_shared(fd)
    }
}

impl AcceptListener for UnixListener {
    type Conn = UnixStream;
    fn check_family(&self) -> io::Result<()> {
        self.shared_fd()
            .expect_domain(&[libc::AF_UNIX], "UnixListener")
    }
    fn accept_one<'r>(&'r self, ring: &'r RingRef, timeout: Option<Duration>) -> Single<'r, Self> {
        let mut op = ring.accept_unix(self);
        if let Some(bound) = timeout {
            op = op.timeout(bound);
        }
        Box::pin(async move { op.await.map(|(s, _)| s) })
    }
    fn conn(fd: SharedFd) -> UnixStream {
        UnixStream::from_shared(fd)
    }
}

/// The multishot accept's part of a [`MultishotStream`].
struct Accepts<'r, L> {
    listener: &'r L,
}

impl<'r, L: AcceptListener> Shots<'r> for Accepts<'r, L> {
    type Item = L::Conn;
    type Single = Single<'r, L>;
    const FEATURE: Feature = Feature::MultiShotAccept;
    const OP: &'static str = "multishot accept";

    fn io(&self) -> &'r dyn AsIoFd {
        self.listener
    }
    fn check(&self) -> io::Result<()> {
        self.listener.check_family()
    }
    fn native(&self, ring: &RingRef) -> Option<MultiKind> {
        ring.uses_native(Feature::MultiShotAccept)
            .then_some(MultiKind::Accept)
    }
    fn single(&mut self, ring: &'r RingRef) -> Single<'r, L> {
        self.listener.accept_one(ring, ring.fallback_timeout())
    }
    fn finish(&mut self, out: io::Result<L::Conn>) -> io::Result<L::Conn> {
        out
    }
    fn decode(&mut self, ring: &RingRef, _: &mut Driver, fd: i32, _: u32) -> io::Result<L::Conn> {
        // SAFETY: `fd` is the result of a successful accept completion: a new fd nothing else
        // owns, handed out once.
        let fd = unsafe { sys::own_fd(fd) };
        Ok(L::conn(SharedFd::new(fd, Some(ring.nonblocking_fds()))))
    }
}

/// Connections accepted on one listener (TCP by default, or a [`UnixListener`]); see
/// [`Ring::accept_multiple`](crate::RingRef::accept_multiple).
///
/// The stream does not end on its own. Errors such as EMFILE/ENFILE are yielded as `Err` items
/// and the stream keeps serving. Dropping it cancels the multishot accept; connections the
/// kernel accepts after that are closed.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let listener = ring.bind_tcp("127.0.0.1:0")?;
/// let _client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// ring.block_on(async {
///     let mut conns = ring.accept_multiple(&listener);
///     while let Some(conn) = conns.next().await {
///         let _stream = conn?; // serve it
///         break;
///     }
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AcceptStream<'r, L: AcceptListener = TcpListener>(MultishotStream<'r, Accepts<'r, L>>);

impl<'r, L: AcceptListener> AcceptStream<'r, L> {
    /// Whether the stream currently runs on the native multishot accept.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let conns = ring.accept_multiple(&listener);
    /// println!("multishot accept: {}", conns.is_native());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_native(&self) -> bool {
        self.0.is_native()
    }

    /// The next connection (an inherent `StreamExt::next`).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let _client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// ring.block_on(async {
    ///     let mut conns = ring.accept_multiple(&listener);
    ///     let stream = conns.next().await.expect("the stream does not end")?;
    ///     assert!(stream.peer_addr()?.ip().is_loopback());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next(&mut self) -> Option<io::Result<L::Conn>> {
        std::future::poll_fn(|cx| self.0.poll_item(cx)).await
    }
}

impl<L: AcceptListener> Stream for AcceptStream<'_, L> {
    type Item = io::Result<L::Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_item(cx)
    }
}

impl RingRef {
    /// Accepts connections on a [`TcpListener`] or a [`UnixListener`] as a stream: natively
    /// one multishot accept (Linux 5.19+), else a loop of single accepts, transparently. [`Ring::enhancement_stats`](crate::RingRef::enhancement_stats) tells which ran.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let _clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(addr)).collect::<Result<_, _>>()?;
    /// ring.block_on(async {
    ///     let mut conns = ring.accept_multiple(&listener);
    ///     for _ in 0..3 {
    ///         let stream = conns.next().await.expect("a connection")?;
    ///         let (n, _) = ring.send(&stream, b"hello".to_vec()).await;
    ///         n?;
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_multishot_accept")]
    pub fn accept_multiple<'r, L: AcceptListener>(
        &'r self,
        listener: &'r L,
    ) -> AcceptStream<'r, L> {
        AcceptStream(MultishotStream::new(self, Accepts { listener }))
    }

    /// Collects up to `max` connections, waiting at most `timeout` in total.
    ///
    /// It takes single accepts, never the multishot one: a multishot accept takes every
    /// connection waiting in the backlog at once, and those beyond `max` would be closed when
    /// it is cancelled. Connections beyond `max` stay in the backlog for the next accept, on
    /// every backend.
    ///
    /// # Errors
    /// The first accept error (connections collected so far are dropped, i.e. closed).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let _c = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// // One client: one connection, returned when the 50 ms are up.
    /// let conns = ring.block_on(ring.accept_up_to(&listener, 4, Duration::from_millis(50)))?;
    /// assert_eq!(conns.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn accept_up_to<L: AcceptListener>(
        &self,
        listener: &L,
        max: usize,
        timeout: Duration,
    ) -> io::Result<Vec<L::Conn>> {
        listener.check_family()?;
        let deadline = Instant::now() + timeout.min(crate::backend::MAX_TIMEOUT);
        let mut out = Vec::with_capacity(max.min(1024));
        while out.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // Bounded by a linked timeout and awaited to the end: a connection the kernel
            // accepts is always handed out, never lost to a cancelled accept.
            match listener.accept_one(self, Some(left)).await {
                Ok(c) => out.push(c),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
