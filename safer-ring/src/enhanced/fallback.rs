//! `Ring::execute_with_fallback`: native first, fallback on "unsupported", demotion on EINVAL.

use std::future::Future;
use std::io;
use std::time::Instant;

use super::stats::PathTaken;
use crate::RingRef;
use crate::buf::BufResult;
use crate::features::{Detection, Feature};

/// Whether a native attempt failed because the kernel does not have the feature.
fn unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || e.raw_os_error() == Some(libc::EOPNOTSUPP)
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<crate::SaferRingError>())
            .is_some_and(|s| matches!(s, crate::SaferRingError::UnsupportedFeature { .. }))
}

impl RingRef {
    /// Runs `native(buf)` when this ring uses `feature` natively, else `fallback(buf)`.
    ///
    /// If the native attempt fails with "unsupported" (`ErrorKind::Unsupported`, EOPNOTSUPP,
    /// `UnsupportedFeature`), or with EINVAL for a feature detection could not fully see (a flag
    /// on an existing opcode), the fallback runs once with the buffer the native attempt handed
    /// back; on EINVAL the feature is also demoted for the rest of the process (logged once).
    /// Every other error is returned unchanged. The buffer always comes back.
    /// Counts and times each path in [`Ring::enhancement_stats`](crate::RingRef::enhancement_stats).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, b) = ring.unix_pair()?;
    /// let (n, buf) = ring.block_on(ring.execute_with_fallback(
    ///     Feature::SendZeroCopy,
    ///     b"either way".to_vec(),
    ///     |buf| ring.send_enhanced(&a, buf), // the native path
    ///     |buf| ring.send(&a, buf),          // the fallback
    /// ));
    /// assert_eq!((n?, &buf[..]), (10, &b"either way"[..]));
    /// # drop(b);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn execute_with_fallback<T, B, N, NF, F, FF>(
        &self,
        feature: Feature,
        buf: B,
        native: N,
        fallback: F,
    ) -> BufResult<T, B>
    where
        N: FnOnce(B) -> NF,
        NF: Future<Output = BufResult<T, B>>,
        F: FnOnce(B) -> FF,
        FF: Future<Output = BufResult<T, B>>,
    {
        let start = Instant::now();
        let mut native_error = None;
        let buf = if self.uses_native(feature) {
            let (res, buf) = native(buf).await;
            match res {
                Err(e) if unsupported(&e) => {
                    tracing::debug!(feature = feature.name(), error = %e, "native path unsupported; using the fallback");
                    native_error = Some(e.to_string());
                    buf
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::EINVAL)
                        && matches!(feature.detection(), Detection::Version(_)) =>
                {
                    // The engine's rule (a first use's EINVAL demotes). "Unsupported" above
                    // falls back for this call only: the caller's native path may say so for
                    // its own reasons, not the kernel's.
                    self.judge(feature, libc::EINVAL, true, "kernel answered EINVAL");
                    native_error = Some(e.to_string());
                    buf
                }
                other => {
                    self.record(feature, PathTaken::Native, start.elapsed());
                    return (other, buf);
                }
            }
        } else {
            buf
        };
        let start = Instant::now();
        let (res, buf) = fallback(buf).await;
        self.record(feature, PathTaken::Fallback, start.elapsed());
        let res = match (res, native_error) {
            (Err(source), Some(native)) => {
                let kind = source.kind();
                Err(io::Error::new(
                    kind,
                    crate::SaferRingError::FallbackFailed {
                        feature,
                        native,
                        source,
                    },
                ))
            }
            (res, _) => res,
        };
        (res, buf)
    }
}
