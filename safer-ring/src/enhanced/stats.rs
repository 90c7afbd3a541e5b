//! Counters of native vs fallback use per feature (`Ring::enhancement_stats`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::features::{Feature, table_len};

/// How often and how long a feature ran natively and through its fallback.
///
/// # Examples
/// ```
/// use safer_ring::Feature;
/// # let ring = safer_ring::Ring::new(8)?;
/// let s = ring.enhancement_stats(Feature::SendZeroCopy);
/// println!("SEND_ZC {} times ({:?}), plain send {} times", s.native, s.native_time, s.fallback);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureStats {
    /// Operations that took the native path.
    pub native: u64,
    /// Operations that took the fallback path.
    pub fallback: u64,
    /// Total time spent in native operations.
    pub native_time: Duration,
    /// Total time spent in fallback operations.
    pub fallback_time: Duration,
    /// Native attempts the kernel rejected (EINVAL) and that were retried on the fallback.
    pub demotions: u64,
}

/// Which path an operation took.
///
/// # Examples
/// ```
/// use safer_ring::PathTaken;
/// let path = PathTaken::Native;
/// assert_ne!(path, PathTaken::Fallback);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathTaken {
    /// The native io_uring mechanism.
    Native,
    /// The fallback.
    Fallback,
}

use crate::backend::EnterCounts;

#[derive(Debug)]
pub(crate) struct Stats {
    per_feature: RefCell<Vec<FeatureStats>>,
    enters: Rc<EnterCounts>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            per_feature: RefCell::new(vec![FeatureStats::default(); table_len()]),
            enters: Rc::default(),
        }
    }
}

impl Stats {
    pub(crate) fn record(&self, f: Feature, path: PathTaken, took: Duration) {
        let mut v = self.per_feature.borrow_mut();
        let s = &mut v[f as usize];
        match path {
            PathTaken::Native => {
                s.native += 1;
                s.native_time += took;
            }
            PathTaken::Fallback => {
                s.fallback += 1;
                s.fallback_time += took;
            }
        }
    }

    pub(crate) fn demoted(&self, f: Feature) {
        self.per_feature.borrow_mut()[f as usize].demotions += 1;
    }

    /// The counters the io_uring backend bumps on each `io_uring_enter`.
    pub(crate) fn enters(&self) -> Rc<EnterCounts> {
        self.enters.clone()
    }

    pub(crate) fn get(&self, f: Feature) -> FeatureStats {
        let mut s = self.per_feature.borrow()[f as usize];
        if f == Feature::RegisteredRingFd {
            // Counted per enter call by the backend; not timed (two clock reads would cost
            // as much as the saving being measured).
            s.native += self.enters.registered.get();
            s.fallback += self.enters.plain.get();
        }
        s
    }
}
