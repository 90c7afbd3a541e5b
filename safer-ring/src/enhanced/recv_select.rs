//! `Ring::recv_enhanced`, in tiers: a multishot recv kept armed on the socket over the ring's
//! provided buffers (6.0+); else one buffer-select recv per call (buffer rings, 5.19+); else a
//! plain recv. Provided buffers mean a receive waiting on an idle socket pins no memory.

use std::io;
use std::task::Poll;
use std::time::Instant;

use super::engine::Verdict;
use super::stats::PathTaken;
use std::rc::Rc;

use crate::RingRef;
use crate::backend::{BufGroup, OpKind};
use crate::buf::{BufResult, IoBufMut, Spare};
use crate::driver::op::{Op, OpData};
use crate::driver::{Driver, MultiKind, MultiNext, budget, buffer_id, ring_gone_for, same_ring};
use crate::features::Feature;
use crate::io::{Armed, AsIoFd, SharedFd};
use crate::kernel::cqe_flags::buffer_start;

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

/// A completion's bytes: `len` bytes from the start of provided buffer `bid`, of which `off`
/// were handed out already (a bundle's bytes continue in the buffers after `bid`).
pub(super) type Run = (u16, u32, u32);

/// Where a provided-buffer receive puts a completion's bytes: copied into the caller's buffer
/// ([`Spare`]) or lent as the provided buffer itself (`ProvidedBuf`). Called with the
/// driver borrowed: crate code only.
pub(super) trait Sink {
    /// Takes what it can of `run` (buffers `size` bytes each); returns the rest, which the
    /// socket keeps as its leftover for the next call.
    fn take(&mut self, d: &mut Driver, size: u32, run: Run) -> io::Result<Option<Run>>;
    /// Bytes taken so far.
    fn taken(&self) -> usize;
}

/// Copies a completion's bytes from `(bid, off, len)` on into the caller's buffer. Each
/// provided buffer is recycled once read to its end (its successor looked up first); what
/// does not fit is returned as the new leftover.
impl<B: IoBufMut> Sink for Spare<'_, B> {
    fn take(
        &mut self,
        d: &mut Driver,
        size: u32,
        (mut bid, mut off, mut len): Run,
    ) -> io::Result<Option<Run>> {
        loop {
            let end = len.min(size);
            let chunk = d.chunk(bid, off, end);
            if chunk.is_empty() {
                // Not ours (never, for a completion of this ring): nothing to read or give back.
                d.recycle_run(bid, len);
                return Ok(None);
            }
            let (want, n) = (chunk.len(), self.write(chunk));
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
                None => return Err(bundle_hole()),
            }
        }
    }

    fn taken(&self) -> usize {
        self.filled()
    }
}

/// The rest of a bundle is not where the ring order says: never hand out a stream with a hole.
pub(super) fn bundle_hole() -> io::Error {
    io::Error::other("recv_enhanced: a receive bundle's next buffer is missing; its bytes are lost")
}

impl RingRef {
    /// One chunk from the socket's multishot recv (arming it on first use, with receive
    /// bundles if `bundle`); `Ok((bytes, whether they came from a multi-buffer bundle))`.
    async fn recv_multishot<S: AsIoFd, K: Sink>(
        &self,
        sock: &S,
        sink: &mut K,
        (bgid, size): (u16, u32),
        bundle: bool,
    ) -> io::Result<bool> {
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
                    return Poll::Ready(sink.take(&mut d, size, run).map(|rest| {
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
                    let Some(bid) = buffer_id(flags) else {
                        return Poll::Ready(Ok(())); // EOF
                    };
                    if res == 0 {
                        d.recycle_buffer(bid); // an end of file that named a buffer
                        return Poll::Ready(Ok(()));
                    }
                    bundled = res as u32 > size;
                    let start = buffer_start(flags);
                    return Poll::Ready(
                        sink.take(&mut d, size, (bid, start, start + res as u32))
                            .map(|rest| a.leftover = rest),
                    );
                }
            })
        })
        .await?;
        Ok(bundled)
    }
}

impl RingRef {
    /// The ring's provided-buffer group (created on first use), consumed incrementally where
    /// [`Feature::IncrementalBuffers`] is in use; a kernel that refuses that demotes it.
    pub(crate) fn provided_group(&self) -> Option<BufGroup> {
        let wish = self.uses_native(Feature::IncrementalBuffers);
        let group = self.driver().buffer_group(wish);
        if wish && group.is_some_and(|g| !g.incremental) {
            let why = "incremental buffer ring registration refused";
            self.judge(Feature::IncrementalBuffers, libc::EINVAL, true, why);
        }
        group
    }

    /// The native tiers of a provided-buffer receive into `sink`: the socket's multishot recv,
    /// else one buffer-select recv. `Err(feature)`: no native tier applies, or it gave up
    /// (ENOBUFS: the kernel's buffers ran dry; EINVAL: demoted), and the caller's plain
    /// receive follows, recorded as `feature`'s fallback. `Ok(Ok(()))` with nothing taken is
    /// the end of the stream.
    pub(super) async fn recv_native<S: AsIoFd, K: Sink>(
        &self,
        sock: &S,
        sink: &mut K,
        want: usize,
    ) -> Result<io::Result<()>, Feature> {
        let start = Instant::now();
        let group = if want > 0 && self.uses_native(Feature::BufferRings) {
            self.provided_group()
        } else {
            None
        };
        let Some(BufGroup {
            bgid,
            size,
            incremental,
        }) = group
        else {
            return Err(Feature::BufferRings);
        };
        if self.uses_native(Feature::MultiShotRecv) {
            // Bundles fill whole buffers in ring order; incrementally consumed buffers are
            // taken a part at a time instead.
            let mut bundle = self.uses_native(Feature::RecvSendBundle) && !incremental;
            loop {
                let res = self.recv_multishot(sock, sink, (bgid, size), bundle).await;
                // The bundle flag is the newer one: it is what the kernel refused unless a
                // multishot recv without it is refused too (then that is demoted).
                let feature = if bundle {
                    Feature::RecvSendBundle
                } else {
                    Feature::MultiShotRecv
                };
                let verdict = match &res {
                    Err(e) => e.raw_os_error().map(|errno| {
                        let why = format!("multishot recv answered {e}");
                        self.judge(feature, errno, true, &why)
                    }),
                    Ok(_) => None,
                };
                match verdict {
                    Some(Verdict::Refused) if bundle => {
                        bundle = false;
                        continue;
                    }
                    Some(Verdict::Refused | Verdict::ThisCall) => {} // the plain recv
                    _ => {
                        let took = start.elapsed();
                        self.record(Feature::MultiShotRecv, PathTaken::Native, took);
                        if incremental {
                            self.record(Feature::IncrementalBuffers, PathTaken::Native, took);
                        }
                        match &res {
                            // A completion that filled several buffers at once.
                            Ok(true) => {
                                self.record(Feature::RecvSendBundle, PathTaken::Native, took)
                            }
                            Ok(_) if !bundle => {
                                self.record(Feature::RecvSendBundle, PathTaken::Fallback, took)
                            }
                            _ => {}
                        }
                        return Ok(res.map(|_| ()));
                    }
                }
                return Err(Feature::MultiShotRecv);
            }
        }
        let fd = sock.shared_fd();
        if let Err(e) = self.prepare(fd) {
            return Ok(Err(e));
        }
        let len = want.min(size as usize) as u32;
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
                // No buffer consumed: EOF.
                if let Some(bid) = buffer_id(flags) {
                    let mut d = self.driver();
                    let start = buffer_start(flags);
                    if let Err(e) = sink.take(&mut d, size, (bid, start, start + n)) {
                        return Ok(Err(e));
                    }
                }
                if sink.taken() < (n as usize).min(want) {
                    // The ring was dropped after the kernel filled its buffer: those bytes
                    // are gone, which is not an end of file.
                    return Ok(Err(crate::driver::ring_gone()));
                }
                let took = start.elapsed();
                self.record(Feature::BufferRings, PathTaken::Native, took);
                if incremental {
                    self.record(Feature::IncrementalBuffers, PathTaken::Native, took);
                }
                Ok(Ok(()))
            }
            Err(e) => match e.raw_os_error().map(|errno| {
                let why = format!("buffer-select recv answered {e}");
                self.judge(Feature::BufferRings, errno, true, &why)
            }) {
                Some(Verdict::Refused | Verdict::ThisCall) => Err(Feature::BufferRings),
                _ => Ok(Err(e)),
            },
        }
    }

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
        let want = buf.bytes_total();
        let mut spare = Spare::new(&mut buf);
        let fell_back = match self.recv_native(sock, &mut spare, want).await {
            Ok(res) => {
                let n = spare.commit();
                return (res.map(|()| n), buf);
            }
            Err(feature) => feature,
        };
        // `spare` ends here: nothing was written.
        let start = Instant::now();
        let out = self.recv(sock, buf).await;
        self.record(fell_back, PathTaken::Fallback, start.elapsed());
        out
    }
}
