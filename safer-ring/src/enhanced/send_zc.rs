//! `Ring::send_enhanced`: zero-copy send above a size threshold where the kernel has it.

use std::time::Instant;

use super::stats::PathTaken;
use crate::RingRef;
use crate::buf::{BufResult, IoBuf};
use crate::features::Feature;
use crate::io::AsIoFd;

impl RingRef {
    /// Sends like [`Ring::send`](crate::RingRef::send); buffers of at least the configured threshold go out with
    /// IORING_OP_SEND_ZC (Linux 6.0+) where this ring uses it natively, falling back to a plain
    /// send when the kernel or socket refuses (e.g. EOPNOTSUPP on Unix sockets). The bytes
    /// delivered are identical on every path.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?; // Unix sockets refuse SEND_ZC: the plain send runs
    /// ring.block_on(async {
    ///     let (n, _) = ring.send_enhanced(&a, vec![3u8; 100_000]).await;
    ///     let n = n?;
    ///     let (res, buf) = ring.read_exact(&b, Vec::with_capacity(n)).await;
    ///     res?;
    ///     assert!(buf.iter().all(|&x| x == 3));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_send_zc")]
    pub async fn send_enhanced<S: AsIoFd, B: IoBuf>(
        &self,
        sock: &S,
        buf: B,
    ) -> BufResult<usize, B> {
        if buf.bytes_init() < self.zero_copy_threshold() {
            let start = Instant::now();
            let out = self.send(sock, buf).await;
            self.record(Feature::SendZeroCopy, PathTaken::Fallback, start.elapsed());
            return out;
        }
        self.execute_with_fallback(
            Feature::SendZeroCopy,
            buf,
            |b| self.send_zc(sock, b),
            |b| self.send(sock, b),
        )
        .await
    }
}
