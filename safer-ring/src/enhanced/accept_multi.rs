//! `Ring::accept_multiple`: a stream of accepted connections (TCP or Unix listeners). Native:
//! one multishot accept (Linux 5.19+), re-armed whenever a completion arrives without
//! IORING_CQE_F_MORE. Fallback: a loop of single accepts (io_uring or epoll).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::stats::PathTaken;
use crate::RingRef;
use std::rc::Rc;

use crate::driver::{MultiKind, MultiNext, budget, ring_gone_for};
use crate::features::Feature;
use crate::io::{Armed, AsIoFd, SharedFd, TcpListener, TcpStream, UnixListener, UnixStream};
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

enum State<'r, L: AcceptListener> {
    Idle,
    Native {
        ud: u64,
        since: Instant,
        accepted: u64,
    },
    Single {
        op: Single<'r, L>,
        since: Instant,
    },
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
pub struct AcceptStream<'r, L: AcceptListener = TcpListener> {
    ring: &'r RingRef,
    listener: &'r L,
    state: State<'r, L>,
}

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
        matches!(self.state, State::Native { .. })
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
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Arms a multishot accept on the listener, unless one is already armed there (by
    /// another stream, maybe on another ring): this stream then takes the single-accept path.
    fn arm(&mut self, waker: &std::task::Waker) -> Option<io::Result<u64>> {
        let fd = self.listener.shared_fd();
        if let Err(e) = self.ring.prepare(fd) {
            return Some(Err(e));
        }
        // The driver first: dropping it (last) runs collected user code, which may poll another
        // stream on this listener and so must not find its state borrowed.
        let mut d = self.ring.driver();
        let mut st = self.listener.multishot().state();
        if st.as_ref().is_some_and(|a| !ring_gone_for(&a.ring)) {
            return None;
        }
        let armed = d.push_multishot(MultiKind::Accept, fd, waker);
        if let Ok(ud) = armed {
            *st = Some(Armed {
                ring: Rc::downgrade(d.chores()),
                ud: Some(ud),
                leftover: None,
            });
        }
        drop(st);
        Some(armed)
    }

    fn stream_from(&self, fd: i32) -> L::Conn {
        // SAFETY: `fd` is the result of a successful accept completion: a new fd nothing else
        // owns, handed out once.
        let fd = unsafe { sys::own_fd(fd) };
        L::conn(SharedFd::new(fd, Some(self.ring.nonblocking_fds())))
    }
}

/// The multishot accept `ud` ended or is abandoned: the listener no longer has one.
fn disarm<L: AcceptListener>(listener: &L, ud: u64) {
    let mut st = listener.multishot().state();
    if st.as_ref().is_some_and(|a| a.ud == Some(ud)) {
        *st = None;
    }
}

impl<L: AcceptListener> Stream for AcceptStream<'_, L> {
    type Item = io::Result<L::Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Idle => {
                    // Both paths refuse a non-IP listener before the kernel accepts anything.
                    if let Err(e) = this.listener.check_family() {
                        return Poll::Ready(Some(Err(e)));
                    }
                    let native = this.ring.uses_native(Feature::MultiShotAccept);
                    match native.then(|| this.arm(cx.waker())).flatten() {
                        Some(Ok(ud)) => {
                            this.state = State::Native {
                                ud,
                                since: Instant::now(),
                                accepted: 0,
                            };
                            continue;
                        }
                        Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                        None => {}
                    }
                    this.state = State::Single {
                        op: this
                            .listener
                            .accept_one(this.ring, this.ring.fallback_timeout()),
                        since: Instant::now(),
                    };
                }
                State::Single { op, since } => {
                    let res = std::task::ready!(op.as_mut().poll(cx));
                    let took = since.elapsed();
                    this.state = State::Idle;
                    match res {
                        Ok(stream) => {
                            this.ring
                                .record(Feature::MultiShotAccept, PathTaken::Fallback, took);
                            return Poll::Ready(Some(Ok(stream)));
                        }
                        // Including `TimedOut` from the configured bound; the next poll
                        // accepts again.
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                State::Native {
                    ud,
                    since,
                    accepted,
                } => {
                    let ud = *ud;
                    std::task::ready!(budget::poll_proceed(cx));
                    let next = this.ring.driver().next_multishot(ud, cx.waker());
                    let (res, last) = match next {
                        MultiNext::Item { res, last, .. } => (res, last),
                        // Ended without F_MORE and nothing left: re-arm.
                        MultiNext::Ended => {
                            disarm(this.listener, ud);
                            this.state = State::Idle;
                            continue;
                        }
                        MultiNext::Pending => return Poll::Pending,
                    };
                    let took = std::mem::replace(since, Instant::now()).elapsed();
                    if last {
                        disarm(this.listener, ud);
                    }
                    if res >= 0 {
                        *accepted += 1;
                        if last {
                            this.state = State::Idle;
                        }
                        this.ring
                            .record(Feature::MultiShotAccept, PathTaken::Native, took);
                        budget::spend(cx);
                        return Poll::Ready(Some(Ok(this.stream_from(res))));
                    }
                    let first = *accepted == 0;
                    this.state = State::Idle; // an error ends this multishot for us
                    if !last {
                        disarm(this.listener, ud);
                        this.ring.driver().abandon_multi(ud);
                    }
                    match -res {
                        // The kernel does not know the multishot flag (version/probe could not
                        // tell): demote for the process and carry on with single accepts.
                        libc::EINVAL if first => this
                            .ring
                            .demote(Feature::MultiShotAccept, "multishot accept answered EINVAL"),
                        // A backend without multishot (never chosen natively, but possible):
                        // this ring only, not a kernel verdict.
                        libc::EOPNOTSUPP if first => {
                            this.ring.disable_native(Feature::MultiShotAccept)
                        }
                        libc::ECANCELED => continue,
                        errno => {
                            return Poll::Ready(Some(Err(io::Error::from_raw_os_error(errno))));
                        }
                    }
                }
            }
        }
    }
}

impl<L: AcceptListener> Drop for AcceptStream<'_, L> {
    fn drop(&mut self) {
        let State::Native { ud, .. } = self.state else {
            return;
        };
        disarm(self.listener, ud);
        // Connections accepted but never handed out are closed, later ones as they arrive.
        if let Some(mut d) = self.ring.driver_in_drop() {
            d.abandon_multi(ud);
        }
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
        AcceptStream {
            ring: self,
            listener,
            state: State::Idle,
        }
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
