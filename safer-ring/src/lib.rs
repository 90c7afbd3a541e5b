//! safer-ring: safe, owned-buffer io_uring for Rust, with an epoll fallback that gives the same
//! results where io_uring is missing or blocked.
//!
//! - Operations take buffers **by value** and return them with the result,
//!   [`BufResult<T, B>`](crate::BufResult) = `(io::Result<T>, B)`, on success and on error.
//!   Buffers: `Vec<u8>`, `Box<[u8]>`, [`OwnedBuffer`],
//!   [`AlignedBuf`] for `O_DIRECT`, and with the `bytes` feature
//!   `bytes::Bytes` / `bytes::BytesMut` (see [`IoBuf`]).
//! - Dropping an operation's future mid-flight is safe: its buffer moves into the ring and is
//!   freed only when the kernel reports the operation finished (a cancel is requested).
//! - An fd is never closed while an operation naming it is queued or in flight.
//! - [`Ring::new`](crate::Ring::new) picks io_uring when `io_uring_setup` works, else epoll; the environment
//!   variable `SAFER_RING_BACKEND=auto|io_uring|epoll` overrides.
//!
//! ```
//! use safer_ring::{OpenOptions, Ring};
//! let ring = Ring::new(8)?;
//! let path = std::env::temp_dir().join(format!("safer-ring-doc-{}", std::process::id()));
//! ring.block_on(async {
//!     let opts = OpenOptions::new().read(true).write(true).create(true).truncate(true);
//!     let file = ring.open(&path, &opts).await?;
//!     let (n, buf) = ring.write_at(&file, b"hello".to_vec(), 0).await;
//!     assert_eq!(n?, 5);
//!     let (n, buf) = ring.read_at(&file, buf, 0).await; // the same Vec comes back
//!     assert_eq!((n?, &buf[..]), (5, &b"hello"[..]));
//!     ring.close(file).await
//! })?;
//! std::fs::remove_file(path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// `unsafe` is fenced: the crate denies it, and only the modules that talk to the kernel or
// implement the unsafe traits allow it (each block with a `// SAFETY:` comment).
#![deny(unsafe_code)]
// docs.rs builds with `--cfg docsrs`: feature-gated items get a badge naming their feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guides' safer-ring snippets run as doctests (the other runtimes' are `ignore`d).
#[cfg(doctest)]
pub mod guides {
    #[doc = include_str!("../../docs/MIGRATION.md")]
    pub struct MigrationGuide;
    #[doc = include_str!("../../docs/TUNING.md")]
    pub struct TuningGuide;
}

#[allow(unsafe_code)]
mod backend;
#[allow(unsafe_code)]
mod buf;
mod cluster;
// The poll-based adapter exists for its traits: with none of their features it would be inert.
#[cfg(any(feature = "tokio", feature = "futures-io", feature = "hyper"))]
mod compat;
mod config;
#[allow(unsafe_code)]
mod driver;
mod enhanced;
mod error;
pub mod features;
#[cfg(feature = "hyper")]
pub mod hyper;
mod io;
mod kernel;
#[allow(unsafe_code)]
pub mod ops;
mod ring;

#[cfg(feature = "fault-injection")]
pub use backend::fault;

pub use backend::SetupReport;
pub use buf::{AlignedBuf, BufResult, FixedBuf, FixedBufPool, IoBuf, IoBufMut, OwnedBuffer, Slice};
pub use cluster::{PerCore, Running, Shutdown};
#[cfg(any(feature = "tokio", feature = "futures-io", feature = "hyper"))]
pub use compat::{Compat, CompatIo, DEFAULT_CAPACITY as COMPAT_DEFAULT_CAPACITY, IntoInnerError};
pub use config::{BACKEND_ENV, BackendKind, MAX_ENTRIES, SaferRingConfig, SubmitPolicy};
pub use driver::op::Op;
pub use driver::task::{JoinError, JoinHandle};
pub use enhanced::{
    AcceptListener, AcceptStream, DATAGRAM_ROOM, Datagram, FEATURES_ENV, FeatureStats, Message,
    PathTaken, ProgressiveEnhancementConfig, ProvidedBuf, RecvFromStream, RingHandle,
};
pub use error::{Result, SaferRingError};
pub use features::{AvailableFeatures, Feature, KernelVersion};
pub use io::{
    AsIoFd, File, FixedFile, OpenOptions, Pipe, TcpListener, TcpStream, UdpSocket, UnixDatagram,
    UnixListener, UnixStream,
};
pub use ops::{Elapsed, Interval, MissedTicks};
pub use ring::{FeatureInfo, Ring, RingInfo, RingRef};
