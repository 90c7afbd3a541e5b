//! `Ring::recv_enhanced`, in tiers: a multishot recv kept armed on the socket over the ring's
//! provided buffers (6.0+); else one buffer-select recv per call (buffer rings, 5.19+); else a
//! plain recv. Provided buffers mean a receive waiting on an idle socket pins no memory.

use std::io;
use std::task::Poll;
use std::time::Instant;

use super::stats::Path;
use crate::Ring;
use crate::backend::{Backend, OpKind};
use crate::buf::IoBufMut;
use crate::driver::op::{Op, OpData};
use crate::driver::{Chore, MultiNext};
use crate::features::Feature;
use crate::io::{AsIoFd, SharedFd};

/// A receive with IOSQE_BUFFER_SELECT; its output is the raw result and CQE flags.
pub struct RecvSelect {
    fd: SharedFd,
    len: u32,
    bgid: u16,
}

impl OpData for RecvSelect {
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

const CQE_F_BUFFER: u32 = 1 << 0;

impl Ring {
    /// One chunk from the socket's multishot recv (arming it on first use).
    async fn recv_multishot<B: IoBufMut>(
        &self,
        fd: &SharedFd,
        buf: &mut B,
        bgid: u16,
    ) -> io::Result<usize> {
        self.prepare(fd)?;
        let cap = buf.bytes_total();
        let dst = buf.stable_mut_ptr();
        let multi = fd.multi();
        let n = std::future::poll_fn(|cx| {
            let mut driver = self.driver();
            let d = &mut *driver;
            // A chunk larger than the caller's buffer: hand out the rest first.
            if let Some((bid, off, len)) = multi.leftover.get() {
                let n = d
                    .backend
                    .copy_buffer(bid, off as usize, len as usize, dst, cap);
                if off as usize + n >= len as usize {
                    d.backend.recycle_buffer(bid);
                    multi.leftover.set(None);
                } else {
                    multi.leftover.set(Some((bid, off + n as u32, len)));
                }
                return Poll::Ready(Ok(n));
            }
            loop {
                let key = match multi.key.get() {
                    Some(k) => k,
                    None => {
                        let k =
                            d.push_multishot(OpKind::RecvMulti { fd: fd.raw(), bgid }, cx.waker())?;
                        multi.key.set(Some(k));
                        let chores = std::rc::Rc::downgrade(&d.chores);
                        *multi.on_drop.borrow_mut() = Some(Box::new(move |key, leftover| {
                            if let Some(chores) = chores.upgrade() {
                                chores.borrow_mut().push(Chore::AbandonRecv(key, leftover));
                            }
                        }));
                        k
                    }
                };
                let (res, flags) = match d.next_multishot(key, cx.waker()) {
                    MultiNext::Item { res, flags, last } => {
                        if last {
                            multi.key.set(None);
                        }
                        (res, flags)
                    }
                    MultiNext::Ended => {
                        multi.key.set(None);
                        continue; // ended (EOF handled below, or overflow): re-arm
                    }
                    MultiNext::Pending => return Poll::Pending,
                };
                if res < 0 {
                    return Poll::Ready(Err(io::Error::from_raw_os_error(-res)));
                }
                if res == 0 || flags & CQE_F_BUFFER == 0 {
                    return Poll::Ready(Ok(0)); // EOF
                }
                let bid = (flags >> 16) as u16;
                let n = d.backend.copy_buffer(bid, 0, res as usize, dst, cap);
                if n < res as usize {
                    multi.leftover.set(Some((bid, n as u32, res as u32)));
                } else {
                    d.backend.recycle_buffer(bid);
                }
                return Poll::Ready(Ok(n));
            }
        })
        .await?;
        // SAFETY: `copy_buffer` wrote `n` bytes at the start of `buf`.
        unsafe { buf.set_init(n) };
        Ok(n)
    }
}

impl Ring {
    /// Receives like [`Ring::recv`] (same signature, same bytes). Natively, a multishot recv
    /// ([`Feature::MultiShotRecv`], Linux 6.0+) stays armed on the socket after the first call
    /// and fills the ring's provided buffers ([`Feature::BufferRings`]) as data arrives; each call
    /// copies the next chunk (at most 16 KiB) into `buf`. Without multishot, each call is one
    /// buffer-select recv; without buffer rings, or when the kernel's buffers run out
    /// (ENOBUFS), a plain recv. Use either `recv_enhanced` or `recv` on one socket, not both:
    /// an armed multishot may already hold the next bytes.
    #[doc(alias = "io_uring_prep_recv")]
    pub async fn recv_enhanced<S: AsIoFd, B: IoBufMut>(
        &self,
        sock: &S,
        mut buf: B,
    ) -> (io::Result<usize>, B) {
        let start = Instant::now();
        let cap = buf.bytes_total();
        if cap > 0
            && self.uses_native(Feature::MultiShotRecv)
            && self.uses_native(Feature::BufferRings)
        {
            let group = self.driver().backend.buffer_group();
            if let Some((bgid, _)) = group {
                match self.recv_multishot(sock.shared_fd(), &mut buf, bgid).await {
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {} // buffers ran dry
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        self.demote(Feature::MultiShotRecv, "multishot recv answered EINVAL");
                    }
                    res => {
                        self.record(Feature::MultiShotRecv, Path::Native, start.elapsed());
                        return (res, buf);
                    }
                }
                let start = Instant::now();
                let out = self.recv(sock, buf).await;
                self.record(Feature::MultiShotRecv, Path::Fallback, start.elapsed());
                return out;
            }
        }
        let group = if self.uses_native(Feature::BufferRings) && cap > 0 {
            self.driver().backend.buffer_group()
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
                    let copied = if flags & CQE_F_BUFFER != 0 {
                        let bid = (flags >> 16) as u16;
                        self.driver().backend.take_buffer(
                            bid,
                            n as usize,
                            buf.stable_mut_ptr(),
                            cap,
                        )
                    } else {
                        0 // EOF: no buffer was consumed
                    };
                    // SAFETY: `take_buffer` wrote `copied` bytes at the start of `buf`.
                    unsafe { buf.set_init(copied) };
                    self.record(Feature::BufferRings, Path::Native, start.elapsed());
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
        self.record(Feature::BufferRings, Path::Fallback, start.elapsed());
        out
    }
}
