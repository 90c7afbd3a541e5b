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
