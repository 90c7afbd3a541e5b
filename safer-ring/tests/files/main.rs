//! Files and paths: positional and stream I/O, path and file-space operations, EACCES, O_DIRECT,
//! whole-buffer helpers, splice/tee/copy, `bytes` buffers, and attacks on the path operations.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod aligned_direct;
#[cfg(feature = "bytes")]
mod bytes_bufs;
mod file_ops;
mod fs_eacces;
mod fs_ops;
mod path_limits;
mod splice_ops;
mod whole_buffers;
