//! Spawned tasks, time, driving (`block_on` sleeping and waking), the cooperative budget,
//! idle cost, `PerCore`, and attacks on drops inside tasks and on `op.timeout` races.
//!
//! `driving`, `fairness` and `idle` measure the CPU time of their own thread, which other tests
//! running beside them in this process do not disturb.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod driving;
mod dropped_in_tasks;
mod fairness;
mod idle;
mod per_core;
mod tasks;
mod time;
mod timeout_races;
