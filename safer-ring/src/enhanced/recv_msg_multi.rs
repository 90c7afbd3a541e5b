//! `Ring::recv_from_multiple`: a stream of datagrams with their senders. Native: one multishot
//! recvmsg over the ring's provided buffers (Linux 6.0+), re-armed whenever the kernel ends it
//! (no IORING_CQE_F_MORE: buffers ran out, overflow). Fallback: a loop of single recvmsgs.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::multishot::{MultishotStream, Shots};
use crate::RingRef;
use crate::Slice;
use crate::buf::IoBuf;
use crate::driver::op::Op;
use crate::driver::{Driver, MultiKind, buffer_id};
use crate::features::Feature;
use crate::io::{AsIoFd, UdpSocket};
use crate::kernel::msghdr::{MULTI_HEAD, parse_multi};
use crate::ops::{MsgIn, RecvMsg};

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

/// The multishot recvmsg's part of a [`MultishotStream`].
struct Datagrams<'r> {
    sock: &'r UdpSocket,
    /// The single path's receive buffer, reused: each datagram is copied out at its size.
    scratch: Vec<u8>,
}

fn no_ip_sender() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "datagram without an IP sender address",
    )
}

impl<'r> Shots<'r> for Datagrams<'r> {
    type Item = Datagram;
    type Single = Op<'r, RecvMsg<Slice<Vec<u8>>>>;
    const FEATURE: Feature = Feature::MultiShotRecvMsg;
    const OP: &'static str = "multishot recvmsg";

    fn io(&self) -> &'r dyn AsIoFd {
        self.sock
    }
    fn check(&self) -> io::Result<()> {
        self.sock
            .shared_fd()
            .expect_domain(&[libc::AF_INET, libc::AF_INET6], "UdpSocket")
    }
    fn native(&self, ring: &RingRef) -> Option<MultiKind> {
        if !(ring.uses_native(Feature::MultiShotRecvMsg) && ring.uses_native(Feature::BufferRings))
        {
            return None;
        }
        ring.provided_group()
            // Incrementally consumed buffers would cut a datagram to a buffer's rest.
            .filter(|g| !g.incremental && g.size as usize == DATAGRAM_ROOM + MULTI_HEAD as usize)
            .map(|g| MultiKind::RecvMsg { bgid: g.bgid })
    }
    fn single(&mut self, ring: &'r RingRef) -> Self::Single {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.reserve_exact(DATAGRAM_ROOM);
        let op = ring.recv_msg(self.sock, buf.slice(..DATAGRAM_ROOM), 0);
        match ring.fallback_timeout() {
            Some(bound) => op.timeout(bound),
            None => op,
        }
    }
    fn finish(&mut self, (res, buf): (io::Result<MsgIn>, Slice<Vec<u8>>)) -> io::Result<Datagram> {
        self.scratch = buf.into_inner();
        let m = res?;
        let from = m.peer_addr().ok_or_else(no_ip_sender)?;
        Ok(Datagram {
            data: self.scratch[..m.len].to_vec(),
            from,
            truncated: m.truncated,
        })
    }
    fn decode(
        &mut self,
        _: &RingRef,
        d: &mut Driver,
        res: i32,
        flags: u32,
    ) -> io::Result<Datagram> {
        // Copy the datagram out and give the buffer straight back.
        let Some(bid) = buffer_id(flags) else {
            return Err(io::Error::other(
                "multishot recvmsg completed without a buffer",
            ));
        };
        let start = crate::kernel::cqe_flags::buffer_start(flags);
        let out = parse_multi(d.chunk(bid, start, start + res as u32)).and_then(|p| {
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
}

/// Datagrams arriving on one UDP socket; see
/// [`Ring::recv_from_multiple`](crate::RingRef::recv_from_multiple).
///
/// The stream does not end on its own; errors are yielded as `Err` items and the stream keeps
/// receiving. Dropping it cancels the multishot recvmsg; datagrams the kernel had already
/// placed in the ring's buffers are dropped with it (as a closed socket drops its queue).
pub struct RecvFromStream<'r>(MultishotStream<'r, Datagrams<'r>>);

impl RecvFromStream<'_> {
    /// Whether the stream currently runs on the native multishot recvmsg.
    pub fn is_native(&self) -> bool {
        self.0.is_native()
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
        std::future::poll_fn(|cx| self.0.poll_item(cx)).await
    }
}

impl Stream for RecvFromStream<'_> {
    type Item = io::Result<Datagram>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_item(cx)
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
        RecvFromStream(MultishotStream::new(
            self,
            Datagrams {
                sock,
                scratch: Vec::new(),
            },
        ))
    }
}
