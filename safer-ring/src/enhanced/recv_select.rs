//! `Ring::recv_enhanced`, in tiers: a multishot recv kept armed on the socket over the ring's
//! provided buffers (6.0+); else one buffer-select recv per call (buffer rings, 5.19+); else a
//! plain recv. Provided buffers mean a receive waiting on an idle socket pins no memory.

use std::io;
use std::task::Poll;
use std::time::Instant;

use super::stats::PathTaken;
use std::rc::Rc;

use crate::RingRef;
use crate::backend::OpKind;
use crate::buf::{BufResult, IoBufMut, Spare};
use crate::driver::op::{Op, OpData};
use crate::driver::{Driver, MultiKind, MultiNext, budget, buffer_id, ring_gone_for, same_ring};
use crate::features::Feature;
use crate::io::{Armed, AsIoFd, SharedFd};

/// A receive with IOSQE_BUFFER_SELECT; its output is the raw result and CQE flags.
pub struct RecvSelect {
    fd: SharedFd,
    len: u32,
    bgid: u16,
}

// SAFETY: a buffer-select recv carries no pointers (the kernel picks a provided buffer of the
// ring); the fd it names is held in `fd`.
unsafe impl OpData for RecvSelect {
    type Output = (io::Result<u32>, u32);
    fn kind(&mut self) -> OpKind {
        OpKind::RecvSelect {
            fd: self.fd.raw(),
            len: self.len,
            bgid: self.bgid,
        }
    }
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output {
        (res, flags)
    }
}

/// The error for a socket whose multishot recv belongs to another ring.
fn other_ring() -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        "recv_enhanced: this socket's multishot recv is armed on another ring (which may hold \
         its next bytes); receive on that ring, or drop the socket there first",
    )
}

/// A completion's bytes from `(bid, off, len)` on into `spare`: `len` bytes from the start of
/// buffer `bid`, of which `off` were handed out. A bundle's bytes continue, `size` per buffer,
/// in the buffers the kernel took after `bid` from the ring (`Driver::next_buffer`). Each
/// buffer is recycled once read to its end (its successor looked up first); what does not fit
/// is returned as the new leftover.
fn drain_run<B: IoBufMut>(
    d: &mut Driver,
    spare: &mut Spare<'_, B>,
    size: u32,
    (mut bid, mut off, mut len): (u16, u32, u32),
) -> io::Result<Option<(u16, u32, u32)>> {
    loop {
        let end = len.min(size);
        let chunk = d.chunk(bid, off, end);
        if chunk.is_empty() {
            // Not ours (never, for a completion of this ring): nothing to read or give back.
            d.recycle_run(bid, len);
            return Ok(None);
        }
        let (want, n) = (chunk.len(), spare.write(chunk));
        if n < want {
            return Ok(Some((bid, off + n as u32, len))); // the caller's buffer is full
        }
        if len <= size {
            d.recycle_buffer(bid);
            return Ok(None);
        }
        let next = d.next_buffer(bid);
        d.recycle_buffer(bid);
        match next {
            Some(b) => (bid, off, len) = (b, 0, len - size),
            None => {
                // The rest of the bundle is not where the ring order says: never hand out a
                // stream with a hole.
                return Err(io::Error::other(
                    "recv_enhanced: a receive bundle's next buffer is missing; its bytes are lost",
                ));
            }
        }
    }
}

impl RingRef {
    /// One chunk from the socket's multishot recv (arming it on first use, with receive
    /// bundles if `bundle`); `Ok((bytes, whether they came from a multi-buffer bundle))`.
    async fn recv_multishot<S: AsIoFd, B: IoBufMut>(
        &self,
        sock: &S,
        buf: &mut B,
        (bgid, size): (u16, u32),
        bundle: bool,
    ) -> io::Result<(usize, bool)> {
        let fd = sock.shared_fd();
        self.prepare(fd)?;
        let multi = sock.multishot();
        let chores = self.driver().chores().clone();
        {
            let mut st = multi.state();
            if let Some(a) = st.as_ref() {
                if ring_gone_for(&a.ring) {
                    // Its ring was dropped, and took the op and the buffers it filled with it:
                    // say so once rather than go on as if the stream were whole.
                    let armed = a.ud.is_some() || a.leftover.is_some();
                    *st = None;
                    if armed {
                        return Err(io::Error::other(
                            "recv_enhanced: the ring this socket's multishot recv was armed on \
                             was dropped; bytes it had received and not handed out are lost",
                        ));
                    }
                } else if !same_ring(&a.ring, &chores) {
                    return Err(other_ring());
                }
            }
        }
        let mut spare = Spare::new(buf);
        let mut bundled = false;
        std::future::poll_fn(|cx| {
            budget::counted(cx, |cx| {
                let mut d = self.driver();
                let mut st = multi.state();
                let a = st.get_or_insert_with(|| Armed {
                    ring: Rc::downgrade(&chores),
                    ud: None,
                    leftover: None,
                });
                // A chunk larger than the caller's buffer: hand out the rest first.
                if let Some(run) = a.leftover.take() {
                    return Poll::Ready(drain_run(&mut d, &mut spare, size, run).map(|rest| {
                        a.leftover = rest;
                    }));
                }
                loop {
                    let ud = match a.ud {
                        // Another reader's multishot (a `recv_from_multiple` stream): its
                        // buffers hold datagrams with their headers, not this stream's bytes.
                        Some(ud)
                            if matches!(d.multishot_kind(ud), Some(MultiKind::RecvMsg { .. })) =>
                        {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::ResourceBusy,
                                "recv_enhanced: a recv_from_multiple stream receives on this \
                                 socket; read it through that stream, or drop it first",
                            )));
                        }
                        Some(ud) => ud,
                        None => {
                            let kind = MultiKind::Recv { bgid, bundle };
                            let ud = d.push_multishot(kind, fd, cx.waker())?;
                            a.ud = Some(ud);
                            ud
                        }
                    };
                    let (res, flags) = match d.next_multishot(ud, cx.waker()) {
                        MultiNext::Item { res, flags, last } => {
                            if last {
                                a.ud = None;
                            }
                            (res, flags)
                        }
                        MultiNext::Ended => {
                            a.ud = None;
                            continue; // ended (EOF handled below, or overflow): re-arm
                        }
                        MultiNext::Pending => return Poll::Pending,
                    };
                    if res < 0 {
                        return Poll::Ready(Err(io::Error::from_raw_os_error(-res)));
                    }
                    let Some(bid) = buffer_id(flags).filter(|_| res > 0) else {
                        return Poll::Ready(Ok(())); // EOF
                    };
                    bundled = res as u32 > size;
                    return Poll::Ready(
                        drain_run(&mut d, &mut spare, size, (bid, 0, res as u32))
                            .map(|rest| a.leftover = rest),
                    );
                }
            })
        })
        .await?;
        Ok((spare.commit(), bundled))
    }
}

impl RingRef {
    /// Receives like [`Ring::recv`](crate::RingRef::recv) (same signature, same bytes). Natively, a multishot recv
    /// ([`Feature::MultiShotRecv`], Linux 6.0+) stays armed on the socket after the first call
    /// and fills the ring's provided buffers ([`Feature::BufferRings`]) as data arrives; each call
    /// copies the next chunk (at most 16 KiB) into `buf`. Without multishot, each call is one
    /// buffer-select recv; without buffer rings, or when the kernel's buffers run out
    /// (ENOBUFS), a plain recv. With receive bundles ([`Feature::RecvSendBundle`], Linux
    /// 6.10+) one completion of the multishot recv may fill several provided buffers in a row
    /// (fewer completions on a busy stream); the bytes come out the same. Use either
    /// `recv_enhanced` or `recv` on one socket, not both: an armed multishot may already hold
    /// the next bytes.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.send(&a, b"chunk".to_vec()).await;
    ///     n?;
    ///     let (n, buf) = ring.recv_enhanced(&b, Vec::with_capacity(64)).await;
    ///     assert_eq!((n?, &buf[..]), (5, &b"chunk"[..]));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_recv")]
    pub async fn recv_enhanced<S: AsIoFd, B: IoBufMut>(
        &self,
        sock: &S,
        mut buf: B,
    ) -> BufResult<usize, B> {
        let start = Instant::now();
        let cap = buf.bytes_total();
        if cap > 0
            && self.uses_native(Feature::MultiShotRecv)
            && self.uses_native(Feature::BufferRings)
        {
            let group = self.driver().buffer_group();
            if let Some(group) = group {
                let mut bundle = self.uses_native(Feature::RecvSendBundle);
                loop {
                    match self.recv_multishot(sock, &mut buf, group, bundle).await {
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {} // buffers ran dry
                        // The flag is the newer one: it is what the kernel refused unless a
                        // multishot recv without it is refused too (then that is demoted).
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && bundle => {
                            self.demote(Feature::RecvSendBundle, "recv bundle answered EINVAL");
                            bundle = false;
                            continue;
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                            self.demote(Feature::MultiShotRecv, "multishot recv answered EINVAL");
                        }
                        res => {
                            let took = start.elapsed();
                            self.record(Feature::MultiShotRecv, PathTaken::Native, took);
                            match &res {
                                // A completion that filled several buffers at once.
                                Ok((_, true)) => {
                                    self.record(Feature::RecvSendBundle, PathTaken::Native, took)
                                }
                                Ok(_) if !bundle => {
                                    self.record(Feature::RecvSendBundle, PathTaken::Fallback, took)
                                }
                                _ => {}
                            }
                            return (res.map(|(n, _)| n), buf);
                        }
                    }
                    break;
                }
                let start = Instant::now();
                let out = self.recv(sock, buf).await;
                self.record(Feature::MultiShotRecv, PathTaken::Fallback, start.elapsed());
                return out;
            }
        }
        let group = if self.uses_native(Feature::BufferRings) && cap > 0 {
            self.driver().buffer_group()
        } else {
            None
        };
        if let Some((bgid, size)) = group {
            let fd = sock.shared_fd();
            if let Err(e) = self.prepare(fd) {
                return (Err(e), buf);
            }
            let len = cap.min(size as usize) as u32;
            let (res, flags) = Op::new(
                self,
                RecvSelect {
                    fd: fd.clone(),
                    len,
                    bgid,
                },
            )
            .await;
            match res {
                Ok(n) => {
                    let mut spare = Spare::new(&mut buf);
                    // No buffer consumed: EOF.
                    if let Some(bid) = buffer_id(flags) {
                        let mut d = self.driver();
                        spare.write(d.chunk(bid, 0, n));
                        d.recycle_buffer(bid);
                    }
                    let copied = spare.commit();
                    if copied < (n as usize).min(cap) {
                        // The ring was dropped after the kernel filled its buffer: those bytes
                        // are gone, which is not an end of file.
                        return (Err(crate::driver::ring_gone()), buf);
                    }
                    self.record(Feature::BufferRings, PathTaken::Native, start.elapsed());
                    return (Ok(copied), buf);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {} // ring ran dry: plain recv
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.demote(Feature::BufferRings, "buffer-select recv answered EINVAL");
                }
                Err(e) => return (Err(e), buf),
            }
        }
        let start = Instant::now();
        let out = self.recv(sock, buf).await;
        self.record(Feature::BufferRings, PathTaken::Fallback, start.elapsed());
        out
    }
}
