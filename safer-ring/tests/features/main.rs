//! Feature detection and progressive enhancement: detection and its trust order, mock kernels,
//! configuration, enhanced paths and their counts, fallback equivalence, the fault-injecting
//! backend, inline syscall fallbacks, and the backend each kernel-matrix row must get.
//!
//! No test here demotes a feature another relies on (demotion has its own binary,
//! tests/demotion.rs), and none fills the detection cache under injected faults
//! (tests/process/detection_faults.rs).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod config;
mod enhanced;
mod equivalence;
#[cfg(feature = "fault-injection")]
mod faults;
mod features;
mod inline_fallbacks;
mod matrix_backend;
mod mock_kernels;
mod path_counts;
mod provided_bufs;
