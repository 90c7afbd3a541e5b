//! The blocking pool (epoll's file operations; ops whose opcode an io_uring ring does not
//! push) and the attacks on it.
//!
//! Every test counts the process's pool threads (by name in /proc/self/task), and some
//! exhaust the fd limit: each takes `serial()` first, so no other test's pool threads or fds
//! are counted.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod epoll_pool;
mod offload_races;
mod uring_offload;

use std::sync::MutexGuard;
use std::time::{Duration, Instant};

/// `support::serial()`, then a wait for the pool threads of earlier tests' rings to exit: a
/// dropped ring's running syscall (a slow fallocate) runs on to its end, and would be counted,
/// or load the CPU under a test that times its echoes.
pub fn serial() -> MutexGuard<'static, ()> {
    let turn = support::serial();
    settle_pool_threads(0, Duration::from_secs(60));
    turn
}

/// Live blocking-pool threads of this process.
pub fn pool_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end() == "safer-ring-pool")
        })
        .count()
}

/// Waits (up to `limit`) until at most `n` pool threads are alive; how many are.
pub fn settle_pool_threads(n: usize, limit: Duration) -> usize {
    let end = Instant::now() + limit;
    loop {
        let now = pool_threads();
        if now <= n || Instant::now() > end {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
