//! Soundness: attacks on user code running while the driver is borrowed, fd lifetime, hangs,
//! kept panics, ring-level state, submit errors, cancel safety, dropped receives, ring
//! ownership, and the findings of the adversarial reviews (docs/SOUNDNESS.md).

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod budget;
mod callback_panics;
mod cancel_safety;
mod dropped_device_reads;
mod dropped_from_subscriber;
mod dropped_pipe_reads;
mod dropped_receives;
#[cfg(feature = "fault-injection")]
mod dropped_with_failing_enter;
mod extreme_times;
mod fd_reuse;
mod hangs;
mod kept_panics;
mod lifecycle;
mod reentrancy;
mod reraise;
mod ring_state;
mod slices;
#[cfg(feature = "fault-injection")]
mod submit_errors;
mod task_edges;
mod teardown;
