//! hyper 1.x on a ring (feature `hyper`): `RingExecutor`, `RingTimer`, and an HTTP/1.1 server
//! through `ring.compat(stream)`. Without the feature this binary has no tests.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "hyper")]
mod executor;
#[cfg(feature = "hyper")]
mod server;
#[cfg(feature = "hyper")]
mod timer;
