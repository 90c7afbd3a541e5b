//! Tests that change or measure state of the whole process: its fd count (dropped ops, 1 000
//! rings, stress), RLIMIT_NOFILE (`accept_emfile`), its memory (`stress`), the detection cache
//! under injected faults, and tracing's process-wide callsite interest (`shutdown_panic`).
//! Each test takes `support::serial()` first: tests of one binary run on parallel threads of
//! one process, and any of these would disturb, or be disturbed by, another running beside
//! it.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod accept_emfile;
#[cfg(feature = "fault-injection")]
mod detection_faults;
mod dropped_op_fds;
mod ring_fds;
mod shutdown_panic;
mod stress;
