//! The one rule by which an enhanced API reads a native path's error, and the only place that
//! demotes: every enhanced API asks [`RingRef::judge`] what an errno means for it.

use crate::RingRef;
use crate::features::Feature;

/// What a native path's error means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The kernel refused the feature: this ring has stopped using it (see [`RingRef::judge`]);
    /// the call takes the fallback.
    Refused,
    /// The kernel's provided buffers ran dry: the fallback for this call only.
    ThisCall,
    /// The operation's own error (the feature is fine): the caller returns it.
    Failed,
}

impl RingRef {
    /// Reads `errno` from `feature`'s native path: ENOBUFS falls back for this call only;
    /// EOPNOTSUPP stops this ring using the feature (a backend that cannot, not a kernel
    /// verdict); EINVAL on a `first` use (the first completion of an armed op, a one-shot
    /// call) demotes it: for the process where only the version vouched for the feature, for
    /// this ring where detection confirmed it (logged once). Anything else, or EINVAL past a
    /// first use, is the operation's own error.
    pub(crate) fn judge(&self, feature: Feature, errno: i32, first: bool, why: &str) -> Verdict {
        match errno {
            libc::ENOBUFS => Verdict::ThisCall,
            libc::EOPNOTSUPP if first => {
                self.disable_native(feature);
                Verdict::Refused
            }
            libc::EINVAL if first => {
                self.demote(feature, why);
                Verdict::Refused
            }
            _ => Verdict::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict;
    use crate::features::{self, Feature};
    use crate::{BackendKind, Ring, SaferRingConfig};

    fn uring() -> Option<Ring> {
        Ring::with_config(SaferRingConfig::default().backend(BackendKind::IoUring)).ok()
    }

    /// Each errno's verdict, and what it does to the ring: ENOBUFS and errors past a first
    /// use leave the feature on; EOPNOTSUPP and EINVAL on a first use turn it off for this
    /// ring only (BufferRings: confirmed by a real call, so no process-wide demotion).
    #[test]
    #[cfg_attr(miri, ignore = "io_uring syscalls")]
    fn one_rule_for_every_native_error() {
        let (Some(a), Some(b)) = (uring(), uring()) else {
            return; // no io_uring here: the enhanced paths never run natively
        };
        let f = Feature::BufferRings;
        if !a.uses_native(f) || features::detected().status(f).by_detection != Some(true) {
            return;
        }
        assert_eq!(a.judge(f, libc::ENOBUFS, true, "t"), Verdict::ThisCall);
        assert_eq!(a.judge(f, libc::EINVAL, false, "t"), Verdict::Failed);
        assert_eq!(a.judge(f, libc::EOPNOTSUPP, false, "t"), Verdict::Failed);
        assert_eq!(a.judge(f, libc::EBADF, true, "t"), Verdict::Failed);
        assert!(a.uses_native(f), "no refusal yet");
        assert_eq!(a.judge(f, libc::EINVAL, true, "t"), Verdict::Refused);
        assert!(!a.uses_native(f) && b.uses_native(f), "this ring only");
        assert!(
            !features::is_demoted(f),
            "confirmed by detection: not for the process"
        );
        assert_eq!(b.judge(f, libc::EOPNOTSUPP, true, "t"), Verdict::Refused);
        assert!(!b.uses_native(f) && !features::is_demoted(f));
        assert_eq!(a.enhancement_stats(f).demotions, 1);
    }
}
