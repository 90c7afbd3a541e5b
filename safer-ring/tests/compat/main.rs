//! The ring next to other runtimes and I/O traits: driven from tokio (`drive_on_tokio`), the
//! `Compat` adapter through tokio's and futures-io's traits, TLS over it, its reads dropped
//! mid-flight and its memory after drop, and the review findings on `drive_on_tokio`. Each
//! module needs the feature it tests (`tokio`, `futures-io`); without it the binary runs the
//! others.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "tokio")]
mod drive_on_tokio_panics;
#[cfg(feature = "tokio")]
mod drive_on_tokio_teardown;
#[cfg(feature = "tokio")]
mod dropped_in_flight;
#[cfg(feature = "futures-io")]
mod dropped_reads;
#[cfg(feature = "tokio")]
mod eof;
#[cfg(feature = "futures-io")]
mod futures_io;
#[cfg(all(feature = "tokio", not(target_env = "musl")))]
mod tls;
#[cfg(feature = "tokio")]
mod tokio_driver;
#[cfg(feature = "tokio")]
mod tokio_io;
