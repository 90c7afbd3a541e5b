//! Counters of native vs fallback use per feature (`Ring::enhancement_stats`).

use std::cell::RefCell;
use std::time::Duration;

use crate::features::{Feature, table_len};

/// How often and how long a feature ran natively and through its fallback.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathTaken {
    /// The native io_uring mechanism.
    Native,
    /// The fallback.
    Fallback,
}

#[derive(Debug)]
pub(crate) struct Stats(RefCell<Vec<FeatureStats>>);

impl Default for Stats {
    fn default() -> Self {
        Stats(RefCell::new(vec![FeatureStats::default(); table_len()]))
    }
}

impl Stats {
    pub(crate) fn record(&self, f: Feature, path: PathTaken, took: Duration) {
        let mut v = self.0.borrow_mut();
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
        self.0.borrow_mut()[f as usize].demotions += 1;
    }

    pub(crate) fn get(&self, f: Feature) -> FeatureStats {
        self.0.borrow()[f as usize]
    }
}
