//! hyper's [`Executor`](::hyper::rt::Executor): futures hyper spawns run as tasks of the ring.

use std::future::Future;

use crate::RingRef;

/// Spawns hyper's background futures (HTTP/1 upgrades, HTTP/2 streams) on a ring.
///
/// `!Send`, like the ring, and it needs no `Send` future: hyper's HTTP/1 server takes no
/// executor at all, and its HTTP/2 builders accept a `!Send` one (their futures are then
/// `!Send` too). Spawned futures are detached; they run while the ring is driven and are
/// dropped with it.
#[derive(Clone)]
pub struct RingExecutor {
    ring: RingRef,
}

impl RingExecutor {
    /// An executor spawning on `ring` (a [`Ring`](crate::Ring) derefs to it).
    pub fn new(ring: &RingRef) -> RingExecutor {
        RingExecutor { ring: ring.clone() }
    }
}

impl std::fmt::Debug for RingExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingExecutor")
            .field("backend", &self.ring.backend())
            .finish()
    }
}

impl<F: Future + 'static> ::hyper::rt::Executor<F> for RingExecutor {
    fn execute(&self, fut: F) {
        // Detached: hyper keeps no handle (a panic is caught at the task boundary).
        drop(self.ring.spawn(fut));
    }
}
