//! `Ring::recv_provided`: a receive whose bytes stay in the ring's provided buffer, lent to the
//! caller, so a connection waiting for data holds no receive buffer at all.

use std::io;
use std::ops::Deref;
use std::rc::Weak;
use std::time::Instant;

use super::recv_select::{Run, Sink, bundle_hole};
use super::stats::PathTaken;
use crate::RingRef;
use crate::backend::Lent;
use crate::driver::{Chore, ChoreQueue, Driver};
use crate::io::AsIoFd;
use crate::kernel::sys;

/// Buffer size of the fallback paths (no provided buffers): the ring's provided buffers' size.
const FALLBACK_LEN: usize = 16 * 1024;

/// Bytes received by [`recv_provided`](crate::RingRef::recv_provided): natively one of the
/// ring's provided buffers, lent until this is dropped (which gives the buffer back to the
/// kernel); on the fallback paths a buffer of its own. Empty at the end of the stream.
///
/// Hold it briefly: the ring has 64 provided buffers, and while every one is lent, receives
/// fall back to buffers of their own.
pub struct ProvidedBuf(Inner);

enum Inner {
    Lent {
        bytes: Lent,
        bid: u16,
        ring: Weak<ChoreQueue>,
    },
    Owned(Vec<u8>),
}

impl ProvidedBuf {
    /// The bytes as a vector of their own (a copy, for a lent buffer).
    pub fn into_vec(mut self) -> Vec<u8> {
        match &mut self.0 {
            Inner::Owned(v) => std::mem::take(v),
            Inner::Lent { bytes, .. } => bytes.bytes().to_vec(),
        }
    }

    /// Whether the bytes are in one of the ring's provided buffers (the native path).
    pub fn is_lent(&self) -> bool {
        matches!(self.0, Inner::Lent { .. })
    }
}

impl Deref for ProvidedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Inner::Lent { bytes, .. } => bytes.bytes(),
            Inner::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for ProvidedBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for ProvidedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedBuf")
            .field("len", &self.len())
            .field("lent", &self.is_lent())
            .finish()
    }
}

impl Drop for ProvidedBuf {
    fn drop(&mut self) {
        // The buffer goes back at the ring's next turn (a chore needs no driver borrow, so
        // this is fine wherever it runs). A dropped ring leaked the buffers' memory instead.
        if let Inner::Lent { bid, ring, .. } = &self.0
            && let Some(q) = ring.upgrade()
            && !q.is_closed()
        {
            q.push(Chore::Recycle(*bid));
        }
    }
}

/// Lends the first provided buffer of a completion's bytes; the rest of a bundle stays with
/// the socket for the next call.
struct Lend {
    got: Option<ProvidedBuf>,
    ring: Weak<ChoreQueue>,
}

impl Sink for Lend {
    fn take(&mut self, d: &mut Driver, size: u32, (bid, off, len): Run) -> io::Result<Option<Run>> {
        let Some(bytes) = d.lend(bid, off, len.min(size)) else {
            // Not ours (never, for a completion of this ring): nothing to read or give back.
            d.recycle_run(bid, len);
            return Ok(None);
        };
        // The successor is looked up while `bid` is still out (it is, until the holder drops).
        let rest = if len > size {
            match d.next_buffer(bid) {
                Some(next) => Some((next, 0, len - size)),
                None => {
                    d.recycle_buffer(bid);
                    return Err(bundle_hole());
                }
            }
        } else {
            None
        };
        self.got = Some(ProvidedBuf(Inner::Lent {
            bytes,
            bid,
            ring: self.ring.clone(),
        }));
        Ok(rest)
    }

    fn taken(&self) -> usize {
        self.got.as_ref().map_or(0, |b| b.len())
    }
}

impl RingRef {
    /// Receives the next bytes of a stream socket without a buffer of the caller's: natively
    /// ([`Feature::MultiShotRecv`](crate::Feature::MultiShotRecv) and
    /// [`Feature::BufferRings`](crate::Feature::BufferRings)) the socket's multishot recv fills
    /// one of the ring's provided buffers and this lends it (at most 16 KiB); dropping the
    /// [`ProvidedBuf`] gives it back. So a connection waiting for data holds no receive
    /// buffer, where `recv` and `recv_enhanced` hold the caller's for as long as they wait.
    /// Without multishot, one buffer-select recv; without provided buffers (the epoll
    /// backend, kernels before 5.19) or when all are lent, it receives what is queued into a
    /// buffer of its own, and when nothing is, lets that buffer go while it waits for the
    /// socket to become readable, so an idle socket holds none there either. The bytes are the same on every path; an empty `ProvidedBuf` is the end
    /// of the stream. Use one receive API per socket (see
    /// [`recv_enhanced`](crate::RingRef::recv_enhanced), with which it shares the armed
    /// multishot).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// ring.block_on(async {
    ///     let (n, _) = ring.send(&a, b"chunk".to_vec()).await;
    ///     n?;
    ///     let got = ring.recv_provided(&b).await?;
    ///     assert_eq!(&got[..], b"chunk");
    ///     drop(a);
    ///     assert!(ring.recv_provided(&b).await?.is_empty()); // end of stream
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_recv_multishot")]
    pub async fn recv_provided<S: AsIoFd>(&self, sock: &S) -> io::Result<ProvidedBuf> {
        let mut lend = Lend {
            got: None,
            ring: std::rc::Rc::downgrade(self.driver().chores()),
        };
        let fell_back = match self.recv_native(sock, &mut lend, FALLBACK_LEN).await {
            Ok(res) => {
                res?;
                return Ok(lend
                    .got
                    .take()
                    .unwrap_or(ProvidedBuf(Inner::Owned(Vec::new()))));
            }
            Err(feature) => feature,
        };
        let start = Instant::now();
        let fd = sock.shared_fd();
        self.prepare(fd)?;
        // Bytes already queued are taken at once; otherwise the buffer is let go while the
        // socket waits to become readable, so an idle one holds none.
        let got = loop {
            let mut buf = Vec::with_capacity(FALLBACK_LEN);
            match sys::recv_now(fd.raw(), &mut buf) {
                Ok(_) => break buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(buf);
                    self.readable(sock).await?;
                }
                Err(e) => return Err(e),
            }
        };
        self.record(fell_back, PathTaken::Fallback, start.elapsed());
        Ok(ProvidedBuf(Inner::Owned(got)))
    }
}
