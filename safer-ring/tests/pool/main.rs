//! The blocking pool (epoll's file operations; ops whose opcode an io_uring ring does not
//! push) and the attacks on it.
//!
//! Every test counts the process's pool threads (by name in /proc/self/task), and some
//! exhaust the fd limit: each takes `support::serial()` first, so no other test's pool threads
//! or fds are counted.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod epoll_pool;
mod offload_races;
mod uring_offload;
