//! What the integration test binaries share: rings per backend (`ring`, `ring_with`, the
//! `backend_test!` / `three_rings_test!` macros), `skip`, temp paths, fd counts, and the
//! submodules for attacks (`soundness`: polling by hand, panics, hangs, the use-after-free
//! probe; `fds`: pipes and fd identity; `drops`: dropping ops on each ring setup) and tracing
//! (`capture`). Each binary's `main.rs` declares it with `#[macro_use]` before its other modules.
// Every binary includes all of it and uses only part.
#![allow(dead_code)]

pub mod capture;
pub mod drops;
pub mod fds;
pub mod soundness;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};

/// A ring on `kind`, or `None` (with the reason printed) when this kernel cannot run it.
pub fn ring(kind: BackendKind) -> Option<Ring> {
    ring_with(SaferRingConfig::default().entries(64).backend(kind))
}

/// An io_uring configuration with one feature wish (`Some(false)`: forced off; `Some(true)`:
/// asked for, which opt-in features need).
pub fn uring_wishing(feature: Feature, wish: Option<bool>) -> SaferRingConfig {
    SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .enhancement(ProgressiveEnhancementConfig::default().feature(feature, wish))
}

/// The rings on which `feature` takes its fallback: io_uring with it forced off (where
/// io_uring runs at all), and epoll.
pub fn fallback_rings(feature: Feature) -> Vec<Ring> {
    let off = ring_with(uring_wishing(feature, Some(false)));
    off.into_iter().chain(ring(BackendKind::Epoll)).collect()
}

pub fn ring_with(cfg: SaferRingConfig) -> Option<Ring> {
    match Ring::with_config(cfg) {
        Ok(r) => Some(r),
        Err(e) => {
            // Skipping is only right when the kernel really has no io_uring (old kernel, seccomp,
            // io_uring_disabled); anywhere else a failed setup is a bug to report.
            let why = match safer_ring::features::detected().io_uring_available() {
                Ok(()) => panic!("io_uring is available on this kernel but the ring failed: {e}"),
                Err(why) => why.to_string(),
            };
            if std::env::var_os("SAFER_RING_REQUIRE_IO_URING").is_some() {
                panic!("io_uring required but unavailable: {e} ({why})");
            }
            skip(format_args!(
                "io_uring backend unavailable on this kernel: {why}"
            ));
            None
        }
    }
}

/// Reports that the calling test skips its check, with `reason`; the caller then returns.
///
/// The `SKIP: ` line is what the kernel matrix counts in its SKIPPED column, so it must reach
/// the console: it goes straight to fd 2 (libtest captures `eprintln!` of passing tests), in a
/// single write, after a newline so that libtest's unfinished `test x ... ` on the same
/// console cannot put it mid-line.
pub fn skip(reason: impl std::fmt::Display) {
    let reason = reason.to_string();
    let one_line: Vec<&str> = reason.lines().map(str::trim).collect();
    let line = format!("\nSKIP: {}\n", one_line.join(" / "));
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A unique path in the temp dir, removed on drop.
pub struct TempPath(pub std::path::PathBuf);

impl TempPath {
    /// A fresh empty directory, removed with its contents on drop.
    pub fn dir(tag: &str) -> TempPath {
        let p = TempPath::new(tag);
        std::fs::create_dir(&p.0).unwrap();
        p
    }

    pub fn new(tag: &str) -> TempPath {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("safer-ring-{tag}-{}-{n}", std::process::id()));
        // A leftover of an earlier process with the same pid (pids are reused across a run of
        // the test binaries) would make a test's create fail with EEXIST.
        remove(&p);
        TempPath(p)
    }
}

/// Removes `p`, a file or a directory tree, if it exists.
fn remove(p: &std::path::Path) {
    if std::fs::remove_file(p).is_err() {
        let _ = std::fs::remove_dir_all(p);
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// Serializes the tests of a binary that change or count process-wide state (fds, rlimits,
/// pool threads, the detection cache): each takes this first. Tests in one binary run on
/// parallel threads of one process; a test that panicked while holding it does not block the
/// others.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `fut` on a one-thread tokio runtime inside a `LocalSet` (what `Ring::drive_on_tokio`
/// needs: it is spawned with `spawn_local`).
#[cfg(feature = "tokio")]
pub fn on_local_tokio<F: std::future::Future>(fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, fut)
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Defines `mod $name { fn io_uring(); fn epoll(); }` running `$body(ring)` on each backend.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$ring:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($ring: safer_ring::Ring) $body
            #[test]
            fn io_uring() {
                if let Some(r) = $crate::support::ring(safer_ring::BackendKind::IoUring) {
                    assert_eq!(r.backend(), safer_ring::BackendKind::IoUring);
                    run(r)
                }
            }
            #[test]
            fn epoll() {
                let r = $crate::support::ring(safer_ring::BackendKind::Epoll).expect("epoll always works");
                assert_eq!(r.backend(), safer_ring::BackendKind::Epoll);
                run(r)
            }
        }
    };
}

/// Defines `mod $name { fn io_uring(); fn io_uring_fallback(); fn epoll(); }` running
/// `$body(ring)` on io_uring, on io_uring with `$feature` forced off (its fallback runs there)
/// and on epoll. `paths` form: the body borrows the ring, and afterwards `$feature` must have
/// taken the path each ring promises (native only where the ring uses it, else the fallback).
#[macro_export]
macro_rules! three_rings_test {
    ($name:ident, $feature:expr, |$ring:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($ring: safer_ring::Ring) $body
            $crate::three_rings_test!(@rings $feature, run);
        }
    };
    (paths $name:ident, $feature:expr, |$ring:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($ring: &safer_ring::Ring) $body
            fn run(ring: safer_ring::Ring) {
                let f: safer_ring::Feature = $feature;
                body(&ring);
                let s = ring.enhancement_stats(f);
                if ring.uses_native(f) {
                    assert!(s.native > 0 && s.fallback == 0, "{f}: {s:?}");
                } else {
                    assert!(s.fallback > 0 && s.native == 0, "{f}: {s:?}");
                }
            }
            $crate::three_rings_test!(@rings $feature, run);
        }
    };
    (@rings $feature:expr, $run:ident) => {
        #[test]
        fn io_uring() {
            if let Some(r) = $crate::support::ring(safer_ring::BackendKind::IoUring) {
                $run(r)
            }
        }
        #[test]
        fn io_uring_fallback() {
            let cfg = $crate::support::uring_wishing($feature, Some(false)).entries(64);
            if let Some(r) = $crate::support::ring_with(cfg) {
                assert_eq!(r.backend(), safer_ring::BackendKind::IoUring);
                assert!(!r.uses_native($feature));
                $run(r)
            }
        }
        #[test]
        fn epoll() {
            $run($crate::support::ring(safer_ring::BackendKind::Epoll).expect("epoll always works"))
        }
    };
}

/// Spawned tasks of a test: a task's panic (caught at the task boundary by the executor) is
/// re-raised by `check`, so a test waiting on a counter fails instead of hanging.
#[derive(Default)]
pub struct Tasks(std::cell::RefCell<Vec<safer_ring::JoinHandle<()>>>);

impl Tasks {
    pub fn spawn(&self, ring: &Ring, fut: impl std::future::Future<Output = ()> + 'static) {
        self.0.borrow_mut().push(ring.spawn(fut));
    }

    /// Re-raises the panic of any finished task.
    pub fn check(&self) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for h in self.0.borrow_mut().iter_mut().filter(|h| h.is_finished()) {
            if let std::task::Poll::Ready(Err(e)) = std::pin::Pin::new(h).poll(&mut cx) {
                match e.try_into_panic() {
                    Ok(p) => std::panic::resume_unwind(p),
                    Err(e) => panic!("task failed: {e}"),
                }
            }
        }
    }
}

/// CPU time (user + system) of the calling thread so far.
pub fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the live local timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A fresh file path in a directory whose filesystem takes `O_DIRECT` (tmpfs answers EINVAL):
/// the temp dir, else the current directory, else the test binary's; `None`, with a `SKIP:`
/// line, if none does.
pub fn direct_path(tag: &str) -> Option<TempPath> {
    use std::os::unix::fs::OpenOptionsExt;
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(std::path::PathBuf::from));
    let dirs = [
        Some(std::env::temp_dir()),
        std::env::current_dir().ok(),
        exe_dir,
    ];
    for dir in dirs.into_iter().flatten() {
        let path = TempPath(dir.join(format!("safer-ring-direct-{tag}-{}", std::process::id())));
        let ok = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path.0)
            .is_ok();
        if ok {
            return Some(path);
        }
    }
    skip("no O_DIRECT-capable filesystem among the temp, current and binary dirs");
    None
}

/// The `/proc/self/task/*/syscall` line of each blocking-pool thread of this process (the
/// system call it is blocked in, or `running`).
pub fn pool_thread_calls() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|n| n.trim_end() == "safer-ring-pool")
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("syscall")).ok())
        .collect()
}

/// `len` bytes that do not repeat with any short period, different per `seed`: a misplaced,
/// repeated or missing chunk (a 16 KiB buffer, a splice's page) shows in a comparison.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
