//! `Ring::recv_enhanced`: receive into a kernel-chosen provided buffer (buffer ring, 5.19+),
//! so a receive waiting on an idle socket pins no buffer of its own.

use std::io;
use std::time::Instant;

use super::stats::Path;
use crate::Ring;
use crate::backend::{Backend, OpKind};
use crate::buf::IoBufMut;
use crate::driver::op::{Op, OpData};
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
    /// Receives like [`Ring::recv`] (same signature, same bytes): natively from the ring's
    /// provided-buffer ring ([`Feature::BufferRings`], Linux 5.19+; at most 16 KiB per call),
    /// copied into `buf`; otherwise, or when the kernel's buffers run out (ENOBUFS), a plain
    /// recv. Multishot recv is not used: a call-per-receive API has nowhere to keep it armed.
    #[doc(alias = "io_uring_prep_recv")]
    pub async fn recv_enhanced<S: AsIoFd, B: IoBufMut>(
        &self,
        sock: &S,
        mut buf: B,
    ) -> (io::Result<usize>, B) {
        let start = Instant::now();
        let cap = buf.bytes_total();
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
