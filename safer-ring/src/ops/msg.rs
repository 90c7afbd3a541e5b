//! sendmsg/recvmsg: datagrams to and from an address, and fds passed over Unix sockets
//! (SCM_RIGHTS). `send_to`/`recv_from` are these ops with the parts they do not need left out.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;

use crate::RingRef;
use crate::backend::OpKind;
use crate::buf::{BufResult, Held, IoBuf, IoBufMut};
use crate::driver::op::{Op, OpData};
use crate::io::unix_addr::{raw_from_path, raw_from_std, std_from_raw, unnamed};
use crate::io::{AsIoFd, SharedFd, UdpSocket, UnixDatagram};
use crate::kernel::msghdr::MsgParts;
use crate::kernel::sockaddr::RawAddr;
use crate::ops::split_len;

/// What a [`Ring::send_msg`](crate::RingRef::send_msg) sends besides its bytes: a destination
/// (for unconnected datagram sockets) and fds to pass over a Unix socket.
///
/// # Examples
/// ```
/// use safer_ring::ops::MsgOut;
/// let (_read_end, write_end) = std::io::pipe()?;
/// let msg = MsgOut::new().fd(write_end); // closed here once the kernel has sent it
/// # drop(msg);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct MsgOut {
    to: Option<io::Result<Box<RawAddr>>>,
    fds: Vec<OwnedFd>,
    segment: Option<u16>,
}

impl MsgOut {
    /// No destination (the connected peer), no fds.
    pub fn new() -> Self {
        MsgOut::default()
    }

    /// Sends to an IP address.
    pub fn to(mut self, addr: SocketAddr) -> Self {
        self.to = Some(Ok(RawAddr::from_socket_addr(&addr)));
        self
    }

    /// Sends to the Unix socket bound at `path` (a bad path fails the op, with the reason).
    pub fn to_unix(mut self, path: impl AsRef<Path>) -> Self {
        self.to = Some(raw_from_path(path.as_ref()));
        self
    }

    /// Sends to a Unix socket address (e.g. an abstract name).
    pub fn to_unix_addr(mut self, addr: &UnixSocketAddr) -> Self {
        self.to = Some(raw_from_std(addr));
        self
    }

    /// Passes `fd` (SCM_RIGHTS; at most 253 a message). The op keeps it open until it
    /// completes (sent or failed), then closes this copy: `try_clone` first to keep using it.
    pub fn fd(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.fds.push(fd.into());
        self
    }

    /// UDP GSO (UDP_SEGMENT, Linux 4.18+): the kernel splits the buffer into datagrams of
    /// `size` bytes (the last may be shorter), one send for all of them. The op fails with
    /// `InvalidInput` for a size of 0, a size larger than the buffer, or more than 65 507
    /// bytes in all; the kernel refuses it on a socket that is not UDP.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::ops::MsgOut;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let a = ring.bind_udp("127.0.0.1:0")?;
    /// let b = ring.bind_udp("127.0.0.1:0")?;
    /// let msg = MsgOut::new().to(b.local_addr()?).segment_size(1000);
    /// let (n, _) = ring.block_on(ring.send_msg(&a, vec![1u8; 2500], msg));
    /// assert_eq!(n?, 2500); // three datagrams: 1000, 1000 and 500 bytes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "UDP_SEGMENT")]
    pub fn segment_size(mut self, size: u16) -> Self {
        self.segment = Some(size);
        self
    }
}

/// sendmsg; see [`Ring::send_msg`](crate::RingRef::send_msg) and
/// [`Ring::send_to`](crate::RingRef::send_to).
pub struct SendMsg<B> {
    fd: SharedFd,
    buf: Held<B>,
    /// `None` only when the op failed before submission.
    parts: Option<Held<Box<MsgParts>>>,
    /// The passed fds stay open until the completion: the kernel takes its references then.
    _fds: Vec<OwnedFd>,
}

// SAFETY: the buffer's memory is on the heap (IoBuf's contract) and the header, iovec,
// address and control data are boxed: none moves with `self`; `fd` holds the socket and
// `_fds` the fds named in the control data.
unsafe impl<B: IoBuf> OpData for SendMsg<B> {
    type Output = BufResult<usize, B>;
    fn kind(&mut self) -> OpKind {
        match &mut self.parts {
            Some(p) => OpKind::SendMsg {
                fd: self.fd.raw(),
                msg: p.get_mut().hdr_ptr(),
                flags: 0,
            },
            // Never submitted: an op whose input was refused completes with that error.
            None => OpKind::Nop,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> Self::Output {
        (res.map(|n| n as usize), self.buf.into_inner())
    }
}

/// What [`Ring::recv_msg`](crate::RingRef::recv_msg) received besides the bytes.
#[derive(Debug)]
pub struct MsgIn {
    /// Bytes received into the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer; the rest was dropped (MSG_TRUNC).
    pub truncated: bool,
    /// More control data came than there was room for (MSG_CTRUNC): fds that did not fit
    /// were closed by the kernel and are lost. Ask for more room (`max_fds`) if it matters.
    pub control_truncated: bool,
    /// The fds passed with the message (close-on-exec), in the order sent.
    pub fds: Vec<OwnedFd>,
    addr: RawAddr,
    gro_segment: Option<u16>,
}

impl MsgIn {
    /// The segment size the kernel reported with a UDP_GRO cmsg: the bytes received are
    /// datagrams of that size coalesced (the last may be shorter). `None` when GRO is off
    /// ([`UdpSocket::set_gro`](crate::UdpSocket::set_gro)) or the kernel did not coalesce.
    pub fn segment_size(&self) -> Option<u16> {
        self.gro_segment
    }

    /// The sender's IP address (`None` for other families and connected stream sockets).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.addr.to_socket_addr()
    }

    /// The sender's Unix address: unnamed if it has not bound one, or if the kernel named no
    /// sender at all (a stream socket).
    ///
    /// # Errors
    /// `InvalidData` when the kernel reported an address of another family.
    pub fn peer_unix_addr(&self) -> io::Result<UnixSocketAddr> {
        if self.addr.len == 0 {
            return unnamed();
        }
        std_from_raw(&self.addr)
    }
}

impl std::fmt::Debug for RawAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAddr")
            .field("family", &self.storage.ss_family)
            .field("len", &self.len)
            .finish()
    }
}

/// recvmsg; see [`Ring::recv_msg`](crate::RingRef::recv_msg).
pub struct RecvMsg<B> {
    fd: SharedFd,
    buf: Held<B>,
    parts: Option<Held<Box<MsgParts>>>,
}

// SAFETY: as for `SendMsg`: the buffer is on the heap, the header and its parts boxed.
unsafe impl<B: IoBufMut> OpData for RecvMsg<B> {
    type Output = BufResult<MsgIn, B>;
    fn kind(&mut self) -> OpKind {
        match &mut self.parts {
            Some(p) => OpKind::RecvMsg {
                fd: self.fd.raw(),
                msg: p.get_mut().hdr_ptr(),
                flags: 0,
            },
            None => OpKind::Nop,
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> Self::Output {
        let out = match (res, self.parts.take()) {
            (Ok(n), Some(parts)) => {
                let mut parts = parts.into_inner();
                // Own the fds first: if this op was dropped, they are closed right here.
                let gro_segment = parts.gro_segment();
                let fds = parts.take_fds();
                // SAFETY: the kernel reported writing `n` bytes at the buffer's start.
                unsafe { self.buf.get_mut().set_init(n as usize) };
                let flags = parts.flags();
                let a = parts.addr();
                Ok(MsgIn {
                    len: n as usize,
                    truncated: flags & libc::MSG_TRUNC != 0,
                    control_truncated: flags & libc::MSG_CTRUNC != 0,
                    fds,
                    addr: RawAddr {
                        storage: a.storage,
                        len: a.len,
                    },
                    gro_segment,
                })
            }
            (Ok(_), None) => Err(io::Error::other("recvmsg completed without its header")),
            (Err(e), _) => Err(e),
        };
        (out, self.buf.into_inner())
    }
}

/// recv_from on a UDP socket; see [`Ring::recv_from`](crate::RingRef::recv_from).
pub struct RecvFrom<B>(RecvMsg<B>);

// SAFETY: the inner op's guarantees.
unsafe impl<B: IoBufMut> OpData for RecvFrom<B> {
    type Output = BufResult<(usize, SocketAddr), B>;
    fn kind(&mut self) -> OpKind {
        self.0.kind()
    }
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output {
        let (m, buf) = self.0.complete(res, flags);
        let r = m.and_then(|m| {
            let a = m.peer_addr().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "datagram without an IP sender")
            })?;
            Ok((m.len, a))
        });
        (r, buf)
    }
}

/// recv_from on a Unix datagram socket; see
/// [`Ring::recv_from_unix`](crate::RingRef::recv_from_unix).
pub struct RecvFromUnix<B>(RecvMsg<B>);

// SAFETY: the inner op's guarantees.
unsafe impl<B: IoBufMut> OpData for RecvFromUnix<B> {
    type Output = BufResult<(usize, UnixSocketAddr), B>;
    fn kind(&mut self) -> OpKind {
        self.0.kind()
    }
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output {
        let (m, buf) = self.0.complete(res, flags);
        // The datagram is taken: an address std cannot hold (a sender bound to a path of the
        // full 108 bytes, no NUL) is reported unnamed rather than the bytes lost.
        let with_addr = |m: MsgIn| {
            let addr = m.peer_unix_addr().or_else(|e| {
                tracing::debug!(error = %e, "sender's Unix address not representable; reported unnamed");
                unnamed()
            })?;
            Ok((m.len, addr))
        };
        (m.and_then(with_addr), buf)
    }
}

impl RingRef {
    /// sendmsg(2): `buf`'s initialized bytes, to `msg`'s destination if it has one, with its
    /// fds (SCM_RIGHTS, Unix sockets only).
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use safer_ring::ops::MsgOut;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// let (mut read_end, write_end) = std::io::pipe()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.send_msg(&a, b"fd".to_vec(), MsgOut::new().fd(write_end)).await;
    ///     n?;
    ///     let (m, _) = ring.recv_msg(&b, Vec::with_capacity(8), 1).await;
    ///     let mut m = m?;
    ///     let passed = std::fs::File::from(m.fds.pop().expect("one fd"));
    ///     std::io::Write::write_all(&mut &passed, b"through the passed fd")?;
    ///     drop(passed);
    ///     let mut s = String::new();
    ///     read_end.read_to_string(&mut s)?;
    ///     assert_eq!(s, "through the passed fd");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_sendmsg")]
    pub fn send_msg<S: AsIoFd, B: IoBuf>(
        &self,
        sock: &S,
        buf: B,
        msg: MsgOut,
    ) -> Op<'_, SendMsg<B>> {
        let fd = sock.shared_fd();
        let (len, mut check) = split_len(buf.bytes_init());
        let buf = Held::new(buf);
        let MsgOut { to, fds, segment } = msg;
        let to = match to.transpose() {
            Ok(to) => to,
            Err(e) => {
                check = check.and(Err(e));
                None
            }
        };
        let parts = check
            .and_then(|()| MsgParts::for_send(buf.get().stable_ptr(), len, to, &fds, segment))
            .and_then(|p| self.prepare(fd).map(|()| p));
        match parts {
            Ok(p) => Op::new(
                self,
                SendMsg {
                    fd: fd.clone(),
                    buf,
                    parts: Some(Held::new(p)),
                    _fds: fds,
                },
            ),
            Err(e) => Op::fail(
                self,
                SendMsg {
                    fd: fd.clone(),
                    buf,
                    parts: None,
                    _fds: fds,
                },
                e,
            ),
        }
    }

    /// recvmsg(2) into `buf`, with room for at least `max_fds` passed fds (0 for none; at most
    /// 253). The control buffer is whole 8-byte words, so an odd `max_fds` has room for one
    /// more fd: every fd the kernel delivers is handed out, never closed behind your back.
    /// Reports the sender's address, truncation (MSG_TRUNC, MSG_CTRUNC) and the fds received.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_datagram_pair()?;
    /// ring.block_on(async {
    ///     ring.send(&a, vec![7u8; 100]).await.0?;
    ///     let (m, buf) = ring.recv_msg(&b, Vec::with_capacity(10), 0).await;
    ///     let m = m?;
    ///     assert!(m.truncated, "100 bytes did not fit in 10");
    ///     assert_eq!((m.len, buf.len()), (10, 10));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_recvmsg")]
    pub fn recv_msg<S: AsIoFd, B: IoBufMut>(
        &self,
        sock: &S,
        buf: B,
        max_fds: usize,
    ) -> Op<'_, RecvMsg<B>> {
        let (op, check) = self.recv_msg_op(sock, buf, max_fds);
        Op::checked(self, op, check)
    }

    fn recv_msg_op<S: AsIoFd, B: IoBufMut>(
        &self,
        sock: &S,
        buf: B,
        max_fds: usize,
    ) -> (RecvMsg<B>, io::Result<()>) {
        let fd = sock.shared_fd();
        let (len, check) = split_len(buf.bytes_total());
        let mut buf = Held::new(buf);
        // Room for a UDP_GRO segment size on IP sockets (never an fd: only Unix sockets pass
        // those, and there the room asked for is exactly `max_fds`).
        let gro = fd
            .expect_domain(&[libc::AF_INET, libc::AF_INET6], "")
            .is_ok();
        let parts = check
            .and_then(|()| MsgParts::for_recv(buf.get_mut().stable_mut_ptr(), len, max_fds, gro))
            .and_then(|p| self.prepare(fd).map(|()| p));
        let (parts, check) = match parts {
            Ok(p) => (Some(Held::new(p)), Ok(())),
            Err(e) => (None, Err(e)),
        };
        (
            RecvMsg {
                fd: fd.clone(),
                buf,
                parts,
            },
            check,
        )
    }

    /// Sends one datagram to `addr` (the socket need not be connected).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let a = ring.bind_udp("127.0.0.1:0")?;
    /// let b = ring.bind_udp("127.0.0.1:0")?;
    /// ring.block_on(async {
    ///     ring.send_to(&a, b"hello".to_vec(), b.local_addr()?).await.0?;
    ///     let (r, buf) = ring.recv_from(&b, Vec::with_capacity(16)).await;
    ///     let (n, from) = r?;
    ///     assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr()?));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "sendto")]
    pub fn send_to<B: IoBuf>(
        &self,
        sock: &UdpSocket,
        buf: B,
        addr: SocketAddr,
    ) -> Op<'_, SendMsg<B>> {
        self.send_msg(sock, buf, MsgOut::new().to(addr))
    }

    /// Receives one datagram and its sender's address. A datagram longer than `buf` is cut
    /// to fit, as recvfrom(2) does ([`recv_msg`](Self::recv_msg) tells when).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let sock = ring.bind_udp("127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// peer.send_to(b"ping", sock.local_addr()?)?;
    /// let (r, buf) = ring.block_on(ring.recv_from(&sock, Vec::with_capacity(16)));
    /// assert_eq!(r?.1, peer.local_addr()?);
    /// assert_eq!(buf, b"ping");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "recvfrom")]
    pub fn recv_from<B: IoBufMut>(&self, sock: &UdpSocket, buf: B) -> Op<'_, RecvFrom<B>> {
        let (op, check) = self.recv_msg_op(sock, buf, 0);
        // An adopted socket of another family: refused before a datagram is consumed.
        let check = check.and_then(|()| {
            sock.shared_fd()
                .expect_domain(&[libc::AF_INET, libc::AF_INET6], "UdpSocket")
        });
        Op::checked(self, RecvFrom(op), check)
    }

    /// Sends one datagram to the Unix datagram socket bound at `path`.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// # let path = std::env::temp_dir().join(format!("safer-ring-doc-stu-{}", std::process::id()));
    /// let server = ring.bind_unix_datagram(&path)?;
    /// let client = ring.unix_datagram_unbound()?;
    /// ring.block_on(async {
    ///     ring.send_to_unix(&client, b"hi".to_vec(), &path).await.0?;
    ///     let (r, buf) = ring.recv_from_unix(&server, Vec::with_capacity(8)).await;
    ///     assert!(r?.1.is_unnamed(), "the client never bound a name");
    ///     assert_eq!(buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_to_unix<B: IoBuf>(
        &self,
        sock: &UnixDatagram,
        buf: B,
        path: impl AsRef<Path>,
    ) -> Op<'_, SendMsg<B>> {
        self.send_msg(sock, buf, MsgOut::new().to_unix(path))
    }

    /// [`send_to_unix`](Self::send_to_unix) to a std address (e.g. an abstract name).
    ///
    /// # Examples
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let name = format!("safer-ring-doc-stua-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    /// let server = ring.bind_unix_datagram_addr(&addr)?;
    /// let client = ring.unix_datagram_unbound()?;
    /// ring.block_on(ring.send_to_unix_addr(&client, b"x".to_vec(), &addr)).0?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_to_unix_addr<B: IoBuf>(
        &self,
        sock: &UnixDatagram,
        buf: B,
        addr: &UnixSocketAddr,
    ) -> Op<'_, SendMsg<B>> {
        self.send_msg(sock, buf, MsgOut::new().to_unix_addr(addr))
    }

    /// Receives one datagram and its sender's address (unnamed if the sender has not bound).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_datagram_pair()?;
    /// ring.block_on(async {
    ///     ring.send(&a, b"x".to_vec()).await.0?;
    ///     let (r, _) = ring.recv_from_unix(&b, Vec::with_capacity(8)).await;
    ///     assert_eq!(r?.0, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_from_unix<B: IoBufMut>(
        &self,
        sock: &UnixDatagram,
        buf: B,
    ) -> Op<'_, RecvFromUnix<B>> {
        let (op, check) = self.recv_msg_op(sock, buf, 0);
        let check = check.and_then(|()| {
            sock.shared_fd()
                .expect_domain(&[libc::AF_UNIX], "UnixDatagram")
        });
        Op::checked(self, RecvFromUnix(op), check)
    }
}
