//! `Ring::recv_from_multiple`: a stream of datagrams with their senders. Native: one multishot
//! recvmsg over the ring's provided buffers (Linux 6.0+), re-armed whenever the kernel ends it
//! (no IORING_CQE_F_MORE: buffers ran out, overflow). Fallback: a loop of single recvmsgs.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;

use super::stats::PathTaken;
use crate::RingRef;
use crate::Slice;
use crate::buf::IoBuf;
use crate::driver::op::Op;
use crate::driver::{MultiKind, MultiNext, budget, buffer_id, ring_gone_for};
use crate::features::Feature;
use crate::io::{Armed, AsIoFd, UdpSocket};
use crate::kernel::msghdr::{MULTI_HEAD, parse_multi};
use crate::ops::RecvMsg;

/// The most payload one datagram of the stream carries, on every path: a provided buffer
/// (16 KiB) less the kernel's header and the address room. Longer datagrams are cut to it and
/// flagged [`Datagram::truncated`].
pub const DATAGRAM_ROOM: usize = 16 * 1024 - MULTI_HEAD as usize;

/// One datagram of a [`RecvFromStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Its bytes (at most [`DATAGRAM_ROOM`]).
    pub data: Vec<u8>,
    /// Its sender.
    pub from: SocketAddr,
    /// It was longer than [`DATAGRAM_ROOM`]: the rest was dropped (MSG_TRUNC).
    pub truncated: bool,
}

enum State<'r> {
    Idle,
    Native {
        ud: u64,
        since: Instant,
        /// Datagrams this arming yielded: an ENOBUFS end after none takes one single receive
        /// before re-arming (no busy loop while other receives hold every buffer).
        got: u64,
    },
    Single {
        op: Op<'r, RecvMsg<Slice<Vec<u8>>>>,
        since: Instant,
    },
}

/// Datagrams arriving on one UDP socket; see
/// [`Ring::recv_from_multiple`](crate::RingRef::recv_from_multiple).
///
/// The stream does not end on its own; errors are yielded as `Err` items and the stream keeps
/// receiving. Dropping it cancels the multishot recvmsg; datagrams the kernel had already
/// placed in the ring's buffers are dropped with it (as a closed socket drops its queue).
pub struct RecvFromStream<'r> {
    ring: &'r RingRef,
    sock: &'r UdpSocket,
    state: State<'r>,
    /// The next arming may not be native (an ENOBUFS end with nothing received).
    single_next: bool,
    /// The single path's receive buffer, reused: each datagram is copied out at its size.
    scratch: Vec<u8>,
}

impl RecvFromStream<'_> {
    /// Whether the stream currently runs on the native multishot recvmsg.
    pub fn is_native(&self) -> bool {
        matches!(self.state, State::Native { .. })
    }

    /// The next datagram (an inherent `StreamExt::next`).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let sock = ring.bind_udp("127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// peer.send_to(b"one", sock.local_addr()?)?;
    /// ring.block_on(async {
    ///     let mut datagrams = ring.recv_from_multiple(&sock);
    ///     let d = datagrams.next().await.expect("the stream does not end")?;
    ///     assert_eq!((&d.data[..], d.from), (&b"one"[..], peer.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next(&mut self) -> Option<io::Result<Datagram>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Arms a multishot recvmsg on the socket, unless one is already armed there (by another
    /// stream, maybe on another ring): this stream then takes the single path.
    fn arm(&mut self, bgid: u16, waker: &std::task::Waker) -> Option<io::Result<u64>> {
        let fd = self.sock.shared_fd();
        if let Err(e) = self.ring.prepare(fd) {
            return Some(Err(e));
        }
        // The driver first: dropping it (last) runs collected user code, which may poll another
        // stream on this socket and so must not find its state borrowed.
        let mut d = self.ring.driver();
        let mut st = self.sock.multishot().state();
        if st.as_ref().is_some_and(|a| !ring_gone_for(&a.ring)) {
            return None;
        }
        let armed = d.push_multishot(MultiKind::RecvMsg { bgid }, fd, waker);
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

    fn single(&mut self) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.reserve_exact(DATAGRAM_ROOM);
        let mut op = self.ring.recv_msg(self.sock, buf.slice(..DATAGRAM_ROOM), 0);
        if let Some(bound) = self.ring.fallback_timeout() {
            op = op.timeout(bound);
        }
        self.state = State::Single {
            op,
            since: Instant::now(),
        };
    }
}

/// The multishot recvmsg `ud` ended or is abandoned: the socket no longer has one.
fn disarm(sock: &UdpSocket, ud: u64) {
    let mut st = sock.multishot().state();
    if st.as_ref().is_some_and(|a| a.ud == Some(ud)) {
        *st = None;
    }
}

fn no_ip_sender() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "datagram without an IP sender address",
    )
}

impl Stream for RecvFromStream<'_> {
    type Item = io::Result<Datagram>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Idle => {
                    // Both paths refuse a socket of another family before a datagram is taken.
                    if let Err(e) = this
                        .sock
                        .shared_fd()
                        .expect_domain(&[libc::AF_INET, libc::AF_INET6], "UdpSocket")
                    {
                        return Poll::Ready(Some(Err(e)));
                    }
                    let single = std::mem::take(&mut this.single_next);
                    let group = (!single
                        && this.ring.uses_native(Feature::MultiShotRecvMsg)
                        && this.ring.uses_native(Feature::BufferRings))
                    .then(|| this.ring.provided_group())
                    .flatten()
                    // Incrementally consumed buffers would cut a datagram to a buffer's rest.
                    .filter(|g| {
                        !g.incremental && g.size as usize == DATAGRAM_ROOM + MULTI_HEAD as usize
                    });
                    if let Some(crate::backend::BufGroup { bgid, .. }) = group {
                        match this.arm(bgid, cx.waker()) {
                            Some(Ok(ud)) => {
                                this.state = State::Native {
                                    ud,
                                    since: Instant::now(),
                                    got: 0,
                                };
                                continue;
                            }
                            Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                            None => {}
                        }
                    }
                    this.single();
                }
                State::Single { op, since } => {
                    let (res, buf) = std::task::ready!(Pin::new(op).poll(cx));
                    let took = since.elapsed();
                    this.state = State::Idle;
                    this.scratch = buf.into_inner();
                    let m = match res {
                        Ok(m) => m,
                        // Including `TimedOut` from the configured bound.
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    };
                    this.ring
                        .record(Feature::MultiShotRecvMsg, PathTaken::Fallback, took);
                    let Some(from) = m.peer_addr() else {
                        return Poll::Ready(Some(Err(no_ip_sender())));
                    };
                    return Poll::Ready(Some(Ok(Datagram {
                        data: this.scratch[..m.len].to_vec(),
                        from,
                        truncated: m.truncated,
                    })));
                }
                State::Native { ud, since, got } => {
                    let ud = *ud;
                    std::task::ready!(budget::poll_proceed(cx));
                    let mut d = this.ring.driver();
                    let (res, flags, last) = match d.next_multishot(ud, cx.waker()) {
                        MultiNext::Item { res, flags, last } => (res, flags, last),
                        // Ended without F_MORE and nothing left: re-arm.
                        MultiNext::Ended => {
                            drop(d);
                            disarm(this.sock, ud);
                            this.state = State::Idle;
                            continue;
                        }
                        MultiNext::Pending => return Poll::Pending,
                    };
                    if last {
                        drop(d);
                        disarm(this.sock, ud);
                        d = this.ring.driver();
                    }
                    if res >= 0 {
                        // Copy the datagram out and give the buffer straight back.
                        let item = match buffer_id(flags) {
                            Some(bid) => {
                                let start = crate::kernel::cqe_flags::buffer_start(flags);
                                let end = start + res as u32;
                                let out = parse_multi(d.chunk(bid, start, end)).and_then(|p| {
                                    let from = p.addr.to_socket_addr().ok_or_else(no_ip_sender)?;
                                    Ok(Datagram {
                                        data: p.payload.to_vec(),
                                        from,
                                        truncated: p.truncated,
                                    })
                                });
                                d.recycle_buffer(bid);
                                out
                            }
                            None => Err(io::Error::other(
                                "multishot recvmsg completed without a buffer",
                            )),
                        };
                        drop(d);
                        let took = std::mem::replace(since, Instant::now()).elapsed();
                        *got += 1;
                        if last {
                            this.state = State::Idle;
                        }
                        this.ring
                            .record(Feature::MultiShotRecvMsg, PathTaken::Native, took);
                        budget::spend(cx);
                        return Poll::Ready(Some(item));
                    }
                    drop(d);
                    let first = *got == 0;
                    this.state = State::Idle; // an error ends this multishot for us
                    if !last {
                        disarm(this.sock, ud);
                        this.ring.driver().abandon_multi(ud);
                    }
                    match -res {
                        // The buffers ran out: re-arm once the stream's reader gave some back;
                        // after an arming that got nothing, take one datagram the plain way.
                        libc::ENOBUFS => this.single_next = first,
                        libc::EINVAL if first => this.ring.demote(
                            Feature::MultiShotRecvMsg,
                            "multishot recvmsg answered EINVAL",
                        ),
                        libc::EOPNOTSUPP if first => {
                            this.ring.disable_native(Feature::MultiShotRecvMsg)
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

impl Drop for RecvFromStream<'_> {
    fn drop(&mut self) {
        let State::Native { ud, .. } = self.state else {
            return;
        };
        disarm(self.sock, ud);
        // Buffers filled and not read are recycled, later ones as they complete; the slot
        // keeps the socket's fd and the header until the kernel's final completion.
        if let Some(mut d) = self.ring.driver_in_drop() {
            d.abandon_multi(ud);
        }
    }
}

impl RingRef {
    /// Receives datagrams as a stream, each with its sender: natively one multishot recvmsg
    /// over the ring's provided buffers ([`Feature::MultiShotRecvMsg`], Linux 6.0+), re-armed
    /// whenever the kernel ends it; else a loop of single receives, transparently, with the
    /// same datagrams on every path (at most [`DATAGRAM_ROOM`] bytes each, longer ones cut
    /// and flagged). [`Ring::enhancement_stats`](crate::RingRef::enhancement_stats) tells which
    /// ran. Read a socket through one such stream, not also with `recv_enhanced`.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let sock = ring.bind_udp("127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// for i in 0..3u8 {
    ///     peer.send_to(&[i; 10], sock.local_addr()?)?;
    /// }
    /// ring.block_on(async {
    ///     let mut datagrams = ring.recv_from_multiple(&sock);
    ///     for i in 0..3u8 {
    ///         let d = datagrams.next().await.expect("a datagram")?;
    ///         assert_eq!(d.data, [i; 10]);
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_recvmsg_multishot")]
    pub fn recv_from_multiple<'r>(&'r self, sock: &'r UdpSocket) -> RecvFromStream<'r> {
        RecvFromStream {
            ring: self,
            sock,
            state: State::Idle,
            single_next: false,
            scratch: Vec::new(),
        }
    }
}
