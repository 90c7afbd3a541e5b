//! Registered buffers and files, and attacks on both through the public API.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod fixed_bufs;
mod fixed_bufs_misuse;
mod fixed_files;
mod fixed_files_misuse;
