//! Attacks on the blocking pool behind io_uring rings (`backend/offload.rs`: ops whose opcode
//! the ring does not push run on pool threads, their `.timeout` a kernel timer that cancels
//! them only while queued) and behind epoll: timeouts racing completions, futures dropped while
//! a pool thread runs their syscall (fd reuse, the statx buffer), rings dropped with pooled
//! work queued and running, more ops than threads, cancel storms, small submission queues.
//!
//! Each scenario runs on io_uring with the feature forced off (pooled) and on epoll (pooled).
//! The tests count pool threads process-wide: each takes `crate::serial()`.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use safer_ring::{BackendKind, Feature, OpenOptions, Ring, SaferRingConfig};
use support::soundness::poll_once;

use crate::serial;
use crate::support::{self, TempPath};

/// The configurations on which every op of `features` runs on the blocking pool: io_uring
/// with them forced off, and epoll; each with `f` applied.
fn pooled_configs(
    features: &[Feature],
    f: impl Fn(SaferRingConfig) -> SaferRingConfig,
) -> Vec<(&'static str, SaferRingConfig)> {
    let mut e = safer_ring::ProgressiveEnhancementConfig::default();
    for &x in features {
        e = e.feature(x, Some(false));
    }
    let uring = SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .enhancement(e);
    let epoll = SaferRingConfig::default().backend(BackendKind::Epoll);
    vec![("io_uring-off", f(uring)), ("epoll", f(epoll))]
}

/// The rings of `pooled_configs` this kernel can run, checked to pool `features`.
fn pooled_rings(
    features: &[Feature],
    f: impl Fn(SaferRingConfig) -> SaferRingConfig,
) -> Vec<(&'static str, Ring)> {
    let mut out = Vec::new();
    for (name, cfg) in pooled_configs(features, f) {
        if let Some(r) = support::ring_with(cfg) {
            for &x in features {
                assert!(!r.uses_native(x), "{name}: {x:?} must not be native");
            }
            out.push((name, r));
        }
    }
    out
}

/// Pool threads (by name) of this process in system call `nr`: blocked in it, or on a CPU
/// (where /proc shows `running` instead of the call: a thread zeroing pages for fallocate
/// is; an idle pool thread is blocked in futex).
fn pool_threads_in(nr: libc::c_long) -> usize {
    let prefix = format!("{nr} ");
    support::pool_thread_calls()
        .iter()
        .filter(|c| c.starts_with(&prefix) || c.starts_with("running"))
        .count()
}

/// How long a wait for something that must happen may take before it counts as a hang: the
/// slow fallocates zero hundreds of MiB, ~200 ms here but tens of seconds in an emulator.
const HANG: Duration = Duration::from_secs(120);

/// Waits up to `limit` for `cond`; whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A directory on tmpfs with room for the slow fallocates (`SLOW_ROOM`), where a large
/// fallocate zeroes every page: a syscall that runs for a few hundred milliseconds.
/// `$SAFER_RING_SLOW_DIR` if set, else /dev/shm. `None` (with a SKIP line) where neither
/// has the room: a container's 64 MiB /dev/shm makes fallocate fail with ENOSPC after
/// zeroing what fits, which would look like a running op that never completed.
fn slow_dir(tag: &str) -> Option<TempPath> {
    let base = std::env::var_os("SAFER_RING_SLOW_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    match free_bytes(&base) {
        Some(free) if free >= SLOW_ROOM => {}
        Some(free) => {
            support::skip(format_args!(
                "{}: {free} bytes free, the slow fallocates need {SLOW_ROOM} \
                 (set SAFER_RING_SLOW_DIR to a larger tmpfs)",
                base.display()
            ));
            return None;
        }
        None => {
            support::skip(format_args!("{}: no such filesystem", base.display()));
            return None;
        }
    }
    let p = base.join(format!("safer-ring-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir(&p).ok()?;
    Some(TempPath(p))
}

/// Bytes an unprivileged writer may still allocate on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is writable storage for one statvfs,
    // which the call fills completely when it returns 0.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: the call returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// 256 MiB: ~200 ms of page zeroing on tmpfs.
const SLOW_LEN: u64 = 256 << 20;

/// Room for the largest set of slow files one test holds at once (1 GiB).
const SLOW_ROOM: u64 = 4 * SLOW_LEN;

// 1. A deadline racing the op: each of many concurrent mkdirs on two pool threads gets a
// deadline from 0 to 40 ms, so some fire while the op is queued (cancelled: TimedOut, never
// runs), some while it runs (completes normally), some after. Whatever the order, the result
// must say what happened: Ok exactly when the directory exists, TimedOut exactly when not.
#[test]
fn timeouts_racing_pooled_ops_report_what_happened() {
    let _serial = serial();
    for (name, ring) in pooled_rings(&[Feature::MkdirAt], |c| c.blocking_threads(2)) {
        let dir = TempPath::dir("attack-offload-race");
        let paths: Vec<PathBuf> = (0..200).map(|i| dir.0.join(format!("d{i}"))).collect();
        let results = ring.block_on(join_all(paths.iter().enumerate().map(|(i, p)| {
            // 0..40 ms: 200 mkdirs take ~60-150 ms on two threads, so some run, some not.
            let d = Duration::from_micros((i as u64 * 397) % 40_000);
            ring.create_dir(p).timeout(d)
        })));
        let (mut ok, mut timed_out) = (0, 0);
        for (i, (p, r)) in paths.iter().zip(&results).enumerate() {
            match r {
                Ok(()) => {
                    ok += 1;
                    assert!(p.is_dir(), "{name}: mkdir {i} Ok but no directory");
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    timed_out += 1;
                    assert!(!p.exists(), "{name}: mkdir {i} TimedOut but it ran");
                }
                Err(e) => panic!("{name}: mkdir {i}: unexpected {e}"),
            }
        }
        eprintln!("{name}: {ok} ran, {timed_out} timed out");
        // Nothing runs later either (a cancelled job must never start).
        std::thread::sleep(Duration::from_millis(50));
        let _ = support::soundness::drive(&ring, 5);
        for (p, r) in paths.iter().zip(&results) {
            assert_eq!(
                p.exists(),
                r.is_ok(),
                "{name}: {p:?} changed after its result"
            );
        }
    }
}

// 2. fd reuse: a pooled fallocate's future is dropped while a pool thread runs the syscall and
// the file is dropped too. The fd must stay open until the syscall is over: a file opened
// meanwhile must not get its number, and nothing may be allocated in it.
#[test]
fn dropped_running_fallocate_keeps_its_fd() {
    let _serial = serial();
    for (name, ring) in pooled_rings(&[Feature::Fallocate], |c| c.blocking_threads(1)) {
        let Some(dir) = slow_dir("attack-offload-fd") else {
            return;
        };
        let (a, b) = (dir.0.join("a"), dir.0.join("b"));
        let create = OpenOptions::new().write(true).create(true);
        let file = ring.block_on(ring.open(&a, &create)).unwrap();
        let old = file.as_raw_fd();
        let mut op = ring.fallocate(&file, 0, 0, SLOW_LEN);
        assert!(poll_once(&mut op).is_pending(), "{name}: finished at once");
        // (A ring may hand ops to its backend only when it turns.)
        let running = wait_until(HANG, || {
            let _ = ring.poll_completions();
            pool_threads_in(libc::SYS_fallocate) > 0
        });
        assert!(running, "{name}: no pool thread ran the fallocate");
        // A thread just started also shows `running`: still busy 20 ms later, it is the
        // fallocate (~200 ms).
        std::thread::sleep(Duration::from_millis(20));
        let confirmed = pool_threads_in(libc::SYS_fallocate) > 0;
        drop(op);
        drop(file);
        let victim = std::fs::File::create(&b).unwrap();
        let still_running = confirmed && pool_threads_in(libc::SYS_fallocate) > 0;
        if still_running {
            assert_ne!(
                victim.as_raw_fd(),
                old,
                "{name}: the fd of a running fallocate was closed and reused"
            );
        } else {
            support::skip(format_args!("{name}: the fallocate ended before the probe"));
        }
        assert!(wait_until(HANG, || {
            let _ = ring.poll_completions();
            pool_threads_in(libc::SYS_fallocate) == 0
        }));
        let _ = support::soundness::drive(&ring, 5);
        assert_eq!(
            victim.metadata().unwrap().len(),
            0,
            "{name}: the fallocate landed in another file"
        );
        // A running syscall completes normally.
        if confirmed {
            assert_eq!(std::fs::metadata(&a).unwrap().len(), SLOW_LEN, "{name}");
        }
        // The fd is released once the result is in.
        let link = format!("/proc/self/fd/{old}");
        assert!(
            wait_until(HANG, || {
                let _ = ring.poll_completions();
                std::fs::read_link(&link).ok().as_deref() != Some(a.as_path())
            }),
            "{name}: the dropped op's fd was never closed"
        );
    }
}

// The same with set_len (ftruncate): a queued one whose future and file are dropped never
// runs, and never runs on whatever file took its fd number.
#[test]
fn dropped_queued_set_len_never_touches_a_reused_fd() {
    let _serial = serial();
    for (name, ring) in pooled_rings(&[Feature::Fallocate, Feature::Ftruncate], |c| {
        c.blocking_threads(1)
    }) {
        let Some(dir) = slow_dir("attack-offload-trunc") else {
            return;
        };
        let create = OpenOptions::new().write(true).create(true);
        let slow = ring
            .block_on(ring.open(dir.0.join("slow"), &create))
            .unwrap();
        let file = ring.block_on(ring.open(dir.0.join("a"), &create)).unwrap();
        let old = file.as_raw_fd();
        // The only pool thread runs a slow fallocate; the set_len queues behind it.
        let mut busy = ring.fallocate(&slow, 0, 0, SLOW_LEN);
        assert!(poll_once(&mut busy).is_pending());
        assert!(wait_until(HANG, || {
            let _ = ring.poll_completions();
            pool_threads_in(libc::SYS_fallocate) > 0
        }));
        let mut op = ring.set_len(&file, 12345);
        assert!(
            poll_once(&mut op).is_pending(),
            "{name}: set_len did not queue"
        );
        let _ = ring.poll_completions();
        drop(op);
        drop(file);
        let victim = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.0.join("b"))
            .unwrap();
        let reused = victim.as_raw_fd() == old;
        ring.block_on(busy).unwrap();
        let _ = support::soundness::drive(&ring, 5);
        assert_eq!(
            victim.metadata().unwrap().len(),
            0,
            "{name}: a dropped set_len ran on the file that took its fd (reused: {reused})"
        );
        assert_eq!(
            std::fs::metadata(dir.0.join("a")).unwrap().len(),
            0,
            "{name}"
        );
    }
}

// 3. A path statx whose future is dropped while (or right before) a pool thread runs it:
// statx's 256-byte result buffer must not be freed before the syscall wrote it. Refill
// probe: right after the drop, allocate fresh zeroed 256-byte chunks, let the op finish,
// and see whether anything wrote into them.
#[test]
fn dropped_path_statx_keeps_its_buffer() {
    let size = std::mem::size_of::<libc::statx>();
    let _serial = serial();
    // Only epoll pools statx (io_uring always pushes it); the io_uring ring guards the same.
    let epoll = SaferRingConfig::default()
        .backend(BackendKind::Epoll)
        .blocking_threads(1);
    let mut rings = vec![("epoll", Ring::with_config(epoll).unwrap())];
    if let Some(r) = support::ring(BackendKind::IoUring) {
        rings.push(("io_uring", r));
    }
    let dir = TempPath::dir("attack-offload-statx");
    let target = dir.0.join("target");
    std::fs::write(&target, vec![7u8; 4321]).unwrap();
    for (name, ring) in rings {
        let mut hits = 0;
        for _ in 0..300 {
            let fresh = {
                let mut op = ring.path_metadata(&target);
                if poll_once(&mut op).is_ready() {
                    continue;
                }
                // Give the pool thread a chance to pick it up (then it runs, not cancelled).
                std::hint::spin_loop();
                drop(op);
                #[allow(clippy::slow_vector_initialization)]
                // malloc, not calloc (see support::soundness)
                (0..16)
                    .map(|_| {
                        let mut v = Vec::with_capacity(size);
                        v.resize(size, 0u8);
                        v
                    })
                    .collect::<Vec<Vec<u8>>>()
            };
            std::thread::sleep(Duration::from_micros(300));
            let _ = ring.poll_completions();
            let n = support::soundness::scribbled(&fresh);
            hits += n;
            assert_eq!(n, 0, "{name}: statx wrote into freed memory");
        }
        assert_eq!(hits, 0);
        // The ring still works.
        assert_eq!(
            ring.block_on(ring.path_metadata(&target)).unwrap().len,
            4321
        );
    }
}

// 4. Ring dropped with pooled work queued and running (one pool thread, a short
// drain_timeout): the drop returns, the queued op never runs (also once the running one is
// done), and a fresh ring on the same thread works.
#[test]
fn ring_dropped_with_pooled_work_queued_and_running() {
    let _serial = serial();
    for (name, cfg) in pooled_configs(&[Feature::Fallocate, Feature::MkdirAt], |c| {
        c.blocking_threads(1)
            .drain_timeout(Duration::from_millis(20))
    }) {
        let Some(dir) = slow_dir("attack-offload-drop") else {
            return;
        };
        let Some(ring) = support::ring_with(cfg.clone()) else {
            continue;
        };
        let create = OpenOptions::new().write(true).create(true);
        let slow = ring
            .block_on(ring.open(dir.0.join("slow"), &create))
            .unwrap();
        let queued = dir.0.join("queued");
        let started = std::rc::Rc::new(std::cell::Cell::new(false));
        let r = ring.clone();
        let s = started.clone();
        let _running = ring.spawn(async move {
            s.set(true);
            let _ = r.fallocate(&slow, 0, 0, SLOW_LEN * 2).await;
        });
        let r = ring.clone();
        let q = queued.clone();
        let _queued = ring.spawn(async move {
            let _ = r.create_dir(&q).timeout(Duration::from_secs(30)).await;
        });
        // Run both tasks once: the fallocate goes to the pool thread, the mkdir queues.
        let _ = ring.block_on(ring.sleep(Duration::from_millis(5)));
        assert!(started.get());
        assert!(
            wait_until(HANG, || {
                let _ = ring.poll_completions();
                pool_threads_in(libc::SYS_fallocate) > 0
            }),
            "{name}: the fallocate never ran"
        );
        let t = Instant::now();
        drop(ring);
        let took = t.elapsed();
        // Structural, not a wall clock: the drop returned while the ~400 ms (here; longer on
        // a slow machine) fallocate still runs, so it did not wait for it.
        let still_running = pool_threads_in(libc::SYS_fallocate) > 0;
        assert!(
            still_running,
            "{name}: the drop took {took:?} and returned after the running fallocate ended"
        );
        // The running fallocate finishes by itself; the queued mkdir must never start.
        assert!(wait_until(HANG, || {
            pool_threads_in(libc::SYS_fallocate) == 0
        }));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !queued.exists(),
            "{name}: a queued op ran after its ring was dropped"
        );
        let again = support::ring_with(cfg).unwrap();
        let p = dir.0.join("again");
        again.block_on(again.create_dir(&p)).unwrap();
        assert!(p.is_dir(), "{name}");
    }
}

// 5. Cancel storm: more ops than threads, half bounded by `.timeout`, half dropped by an outer
// `ring.timeout` (the future goes, the op may still run), at random deadlines. Afterwards the
// ring drains, every op bounded by `.timeout` reports what happened, and the ring still works.
#[test]
fn cancel_storm_on_the_pool() {
    let _serial = serial();
    for (name, ring) in pooled_rings(&[Feature::MkdirAt], |c| c.blocking_threads(2)) {
        let dir = TempPath::dir("attack-offload-storm");
        let paths: Vec<PathBuf> = (0..300).map(|i| dir.0.join(format!("s{i}"))).collect();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let deadlines: Vec<Duration> = (0..paths.len())
            .map(|_| Duration::from_micros(next() % 30_000))
            .collect();
        let results = ring.block_on(join_all(paths.iter().zip(&deadlines).enumerate().map(
            |(i, (p, &d))| {
                let ring = &ring;
                async move {
                    if i % 2 == 0 {
                        Some(ring.create_dir(p).timeout(d).await)
                    } else {
                        ring.timeout(d, ring.create_dir(p)).await.ok()
                    }
                }
            },
        )));
        // Let the dropped ones that were running finish.
        std::thread::sleep(Duration::from_millis(50));
        let _ = support::soundness::drive(&ring, 10);
        for (i, (p, r)) in paths.iter().zip(&results).enumerate() {
            match r {
                Some(Ok(())) => assert!(p.is_dir(), "{name}: op {i} Ok, no directory"),
                Some(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut && i % 2 == 0 => {
                    assert!(!p.exists(), "{name}: op {i} TimedOut but ran")
                }
                Some(Err(e)) => panic!("{name}: op {i}: unexpected {e}"),
                None => {} // dropped: may or may not have run
            }
        }
        let p = dir.0.join("after");
        ring.block_on(ring.create_dir(&p)).unwrap();
        assert!(p.is_dir());
    }
}

// 6. A tiny submission queue: every pooled op with a deadline pushes a timer SQE, and every
// completion a timer removal, none of which the driver counts. Many such ops at once on a
// 2-entry ring must all complete, correctly, and the ring must drop without waiting for the
// (long) deadlines. The bounds sit between any machine's speed (~50 ms here) and the
// deadlines (10 min), which the drain timeout (longer still) cannot cut short.
#[test]
fn tiny_queue_many_pooled_ops_with_deadlines() {
    let _serial = serial();
    const DEADLINE: Duration = Duration::from_secs(600);
    let drain = |c: SaferRingConfig| c.entries(2).drain_timeout(2 * DEADLINE);
    for (name, cfg) in pooled_configs(&[Feature::MkdirAt], drain) {
        let Some(ring) = support::ring_with(cfg) else {
            continue;
        };
        let dir = TempPath::dir("attack-offload-tiny");
        let paths: Vec<PathBuf> = (0..100).map(|i| dir.0.join(format!("t{i}"))).collect();
        let t = Instant::now();
        let results = ring.block_on(join_all(
            paths.iter().map(|p| ring.create_dir(p).timeout(DEADLINE)),
        ));
        for (p, r) in paths.iter().zip(&results) {
            assert!(r.is_ok(), "{name}: {p:?}: {r:?}");
            assert!(p.is_dir());
        }
        // Sequentially too (each timer armed and removed in turn).
        for p in &paths {
            let e = ring
                .block_on(ring.create_dir(p).timeout(DEADLINE))
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{name}: {e}");
        }
        assert!(t.elapsed() < HANG, "{name}: {:?}", t.elapsed());
        let t = Instant::now();
        drop(ring);
        assert!(t.elapsed() < HANG, "{name}: drop waited {:?}", t.elapsed());
    }
}

// The results of the pooled path ops must match epoll's: the same errors for the same bad
// inputs, with deadlines attached (the timer path) and without.
#[test]
fn pooled_results_with_deadlines_match_epoll() {
    let _serial = serial();
    let outcomes = |ring: &Ring, tag: &str| -> Vec<String> {
        let dir = TempPath::dir(tag);
        let f = dir.0.join("f");
        std::fs::write(&f, b"x").unwrap();
        let sub = dir.0.join("sub");
        let d = Duration::from_secs(30);
        ring.block_on(async {
            let o = support::fds::outcome;
            vec![
                o(&ring.create_dir(&sub).timeout(d).await),
                o(&ring.create_dir(&sub).timeout(d).await),
                o(&ring.create_dir(dir.0.join("no/such")).timeout(d).await),
                o(&ring.rename(&f, &sub).timeout(d).await),
                o(&ring.remove_file(&sub).timeout(d).await),
                o(&ring.remove_dir(&f).timeout(d).await),
                o(&ring.remove_dir(&sub).timeout(d).await),
                o(&ring.remove_dir(&sub).await),
                o(&ring.hard_link(&f, dir.0.join("h")).timeout(d).await),
                o(&ring.symlink(&f, dir.0.join("h")).timeout(d).await),
                o(&ring.remove_file(dir.0.join("h")).timeout(d).await),
            ]
        })
    };
    let epoll = outcomes(
        &support::ring(BackendKind::Epoll).unwrap(),
        "attack-offload-eq-e",
    );
    let feats = [
        Feature::MkdirAt,
        Feature::RenameAt,
        Feature::UnlinkAt,
        Feature::LinkAt,
        Feature::SymlinkAt,
    ];
    for (name, ring) in pooled_rings(&feats, |c| c) {
        assert_eq!(outcomes(&ring, "attack-offload-eq"), epoll, "{name}");
    }
}

// A deadline bounds the wait in the queue: ops queued behind a slow one on the only pool
// thread time out at their deadline, not when the slow one is done, and never run.
#[test]
fn queued_pooled_ops_time_out_on_time() {
    let _serial = serial();
    for (name, ring) in pooled_rings(&[Feature::Fallocate, Feature::MkdirAt], |c| {
        c.blocking_threads(1)
    }) {
        let Some(dir) = slow_dir("attack-offload-ontime") else {
            return;
        };
        let create = OpenOptions::new().write(true).create(true);
        let slow = ring
            .block_on(ring.open(dir.0.join("slow"), &create))
            .unwrap();
        let t = Instant::now();
        let (big, small) = ring.block_on(async {
            let big = async {
                let r = ring.fallocate(&slow, 0, 0, SLOW_LEN * 2).await;
                (r, t.elapsed())
            };
            let small = join_all((0..10).map(|i| {
                let (ring, p) = (&ring, dir.0.join(format!("d{i}")));
                async move {
                    let r = ring.create_dir(&p).timeout(Duration::from_millis(5)).await;
                    (r, t.elapsed(), p)
                }
            }));
            futures_util::future::join(big, small).await
        });
        big.0.unwrap();
        for (r, at, p) in small {
            let e = r.expect_err("queued behind a ~400 ms fallocate on the only thread");
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{name}: {e}");
            assert!(
                at < big.1 / 2,
                "{name}: timed out at {at:?}, the fallocate ended at {:?}",
                big.1
            );
            assert!(!p.exists(), "{name}: a timed-out queued mkdir ran");
        }
    }
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

// Liveness: an op submitted while the pool's only busy thread is between its syscall's return
// and its next look at the queue (`returning`) must not be left to that thread when the pool
// may start another: if the thread takes an op that blocks for good first (a FIFO open), the
// other would wait with it (the defect fixed in bfec2f4). Each round completes a quick mkdir
// and at once submits a blocking FIFO open and a second mkdir: the mkdir must finish while the
// open blocks.
#[test]
fn op_behind_a_blocking_one_gets_its_own_thread() {
    let _serial = serial();
    let cfg = SaferRingConfig::default()
        .backend(BackendKind::Epoll)
        .blocking_threads(4)
        .blocking_idle_timeout(Duration::from_secs(30));
    let dir = TempPath::dir("attack-offload-live");
    let read = OpenOptions::new().read(true);
    let mut stuck = 0;
    // Before the fix, it hit within the first three rounds.
    for i in 0..60 {
        // A fresh pool each round: its first thread is the only one, so no idle thread takes
        // the open or the mkdir (once there is one, the window closes).
        let ring = Ring::with_config(cfg.clone()).unwrap();
        let fifo = dir.0.join(format!("f{i}"));
        mkfifo(&fifo);
        let (p, q) = (dir.0.join(format!("p{i}")), dir.0.join(format!("q{i}")));
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                // Opens the other end when told: then the ring's open returns.
                let _ = wait.recv();
                std::fs::OpenOptions::new().write(true).open(fifo).unwrap()
            })
        };
        ring.block_on(async {
            ring.create_dir(&p).await.unwrap();
            // Both pushed in the same poll, right after the mkdir's result came in.
            let open = ring.open(&fifo, &read);
            // The open blocks until told: a quick op stuck behind it waits for good, so the
            // bound can be generous.
            let quick = ring.timeout(Duration::from_secs(30), ring.create_dir(&q));
            let mut open = std::pin::pin!(open);
            let quick = std::pin::pin!(quick);
            match futures_util::future::select(open.as_mut(), quick).await {
                futures_util::future::Either::Left((o, _)) => {
                    panic!("a FIFO open without a writer returned: {o:?}")
                }
                futures_util::future::Either::Right((r, _)) => {
                    match r {
                        Ok(r) => r.unwrap(),
                        Err(_) => {
                            eprintln!("round {i}: the mkdir was still queued after 30 s");
                            stuck += 1
                        }
                    }
                    go.send(()).unwrap();
                    open.await.unwrap();
                }
            }
        });
        drop(writer.join().unwrap());
        if stuck > 0 {
            break;
        }
    }
    assert_eq!(
        stuck, 0,
        "a quick op waited 30 s behind a blocked one with threads to spare"
    );
}

// The same on io_uring with the ops' opcodes off (the offload shares the pool): right after a
// quick mkdir's result, a ~400 ms fallocate and a mkdir are submitted together; the mkdir must
// not wait for the fallocate.
#[test]
fn uring_offload_op_behind_a_slow_one_gets_its_own_thread() {
    let _serial = serial();
    let Some(dir) = slow_dir("attack-offload-live-u") else {
        return;
    };
    let create = OpenOptions::new().write(true).create(true);
    let mut stuck = 0;
    for i in 0..10 {
        let Some((name, ring)) = pooled_rings(&[Feature::Fallocate, Feature::MkdirAt], |c| {
            c.blocking_threads(4)
        })
        .into_iter()
        .next()
        .filter(|(n, _)| *n == "io_uring-off") else {
            return;
        };
        let slow = ring
            .block_on(ring.open(dir.0.join(format!("s{i}")), &create))
            .unwrap();
        let (p, q) = (dir.0.join(format!("p{i}")), dir.0.join(format!("q{i}")));
        ring.block_on(async {
            ring.create_dir(&p).await.unwrap();
            // Which finished first, not a deadline: a new thread may take long to start on a
            // slow machine, but the fallocate (~400 ms here) slows down with it.
            let t = Instant::now();
            let big = async {
                let r = ring.fallocate(&slow, 0, 0, SLOW_LEN * 2).await;
                (r, t.elapsed())
            };
            let quick = async {
                let r = ring.create_dir(&q).await;
                (r, t.elapsed())
            };
            let ((b, big_at), (r, quick_at)) = futures_util::future::join(big, quick).await;
            b.unwrap();
            r.unwrap();
            if quick_at >= big_at {
                eprintln!(
                    "{name} round {i}: the mkdir ({quick_at:?}) waited for the fallocate \
                     ({big_at:?})"
                );
                stuck += 1;
            }
        });
        drop(slow);
        let _ = std::fs::remove_file(dir.0.join(format!("s{i}")));
        if stuck > 0 {
            break;
        }
    }
    assert_eq!(
        stuck, 0,
        "a quick op waited behind a slow one with threads to spare"
    );
}

/// Sets the soft fd limit to `n`; returns the old limits.
fn set_nofile(n: u64) -> libc::rlimit {
    // SAFETY: getrlimit/setrlimit on live locals.
    unsafe {
        let mut old: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: n,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &new), 0);
        old
    }
}

// The pool's first job duplicates the ring's wake eventfd. With no fd left, the op must fail
// with EMFILE (not panic, not hang, not run), its deadline timer must not confuse anything,
// and the next op, once fds are free, must work.
#[test]
fn first_pooled_op_without_a_free_fd_fails_cleanly() {
    let _serial = serial();
    for (name, ring) in pooled_rings(&[Feature::MkdirAt], |c| c) {
        let dir = TempPath::dir("attack-offload-emfile");
        let (a, b, c) = (dir.0.join("a"), dir.0.join("b"), dir.0.join("c"));
        // Every fd up to a low limit taken.
        let mut filler = Vec::new();
        let old = set_nofile(support::fd_count() as u64 + 64);
        while let Ok(f) = std::fs::File::open("/dev/null") {
            filler.push(f);
        }
        let plain = ring.block_on(ring.create_dir(&a));
        let timed = ring.block_on(ring.create_dir(&b).timeout(Duration::from_secs(30)));
        drop(filler);
        // SAFETY: restores the limits read above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
        for (what, r, p) in [("plain", plain, &a), ("with deadline", timed, &b)] {
            let e = r.expect_err(what);
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{name} {what}: {e}");
            assert!(!p.exists(), "{name} {what}: failed but ran");
        }
        // Completes, not TimedOut: an op that waited for its deadline fails the unwrap (the
        // deadline is a hang bound, far beyond any machine's speed).
        ring.block_on(ring.create_dir(&c).timeout(Duration::from_secs(60)))
            .unwrap();
        assert!(c.is_dir(), "{name}");
    }
}

// An open whose future is dropped while the syscall waits (a FIFO without a writer: on epoll
// a pool thread blocks in it) gets its fd later, as an orphan's result: the ring must close
// it. Probe: once the writer's end is open and the ring has run, a write must find no reader
// (EPIPE); a leaked or kept fd would still be one.
backend_test!(dropped_fifo_open_closes_the_fd_it_gets, |ring| {
    let _serial = serial();
    use std::os::unix::fs::OpenOptionsExt;
    let dir = TempPath::dir("attack-offload-fifo");
    let fifo = dir.0.join("f");
    mkfifo(&fifo);
    let read = OpenOptions::new().read(true);
    let mut op = ring.open(&fifo, &read);
    if poll_once(&mut op).is_ready() {
        support::skip("the FIFO open finished at once");
        return;
    }
    let _ = support::soundness::drive(&ring, 5);
    drop(op);
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo);
    let mut writer = match writer {
        Ok(w) => w,
        // No reader any more: the open was cancelled before it got an fd.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            eprintln!(
                "{:?}: the open was cancelled before it got an fd",
                ring.backend()
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // The blocked open now returns an fd, which only the ring can close (by the clock, not by a
    // count of turns: the pool thread's wake-up may take long on a slow machine).
    let mut closed = false;
    let end = Instant::now() + HANG;
    while Instant::now() < end {
        let _ = ring.poll_completions();
        std::thread::sleep(Duration::from_millis(5));
        match std::io::Write::write(&mut writer, b"x") {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(closed, "the dropped open's fd stayed open (leaked)");
    eprintln!("{:?}: the orphaned open's fd was closed", ring.backend());
});

// statx by path runs on epoll's pool and natively on io_uring: the same Metadata for the
// same files (a file, a directory, a FIFO, a device, symlinks, a dangling one), the same
// errors for missing paths, and for an fd: `metadata` of an opened FIFO.
#[test]
fn path_metadata_same_on_both_backends() {
    let _serial = serial();
    let dir = TempPath::dir("attack-offload-stat");
    let f = dir.0.join("file");
    std::fs::write(&f, vec![1u8; 12345]).unwrap();
    let fifo = dir.0.join("fifo");
    mkfifo(&fifo);
    std::os::unix::fs::symlink(&f, dir.0.join("link")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("nowhere"), dir.0.join("dangling")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("loop"), dir.0.join("loop")).unwrap();
    let names = [
        "file",
        "fifo",
        "link",
        "dangling",
        "loop",
        "missing",
        "file/below",
        "",
        ".",
    ];
    let run = |ring: &Ring| -> Vec<String> {
        let mut out = Vec::new();
        ring.block_on(async {
            for n in names {
                let p = if n.is_empty() {
                    PathBuf::new()
                } else {
                    dir.0.join(n)
                };
                let m = ring.path_metadata(&p).await;
                let s = ring.symlink_metadata(&p).await;
                out.push(format!(
                    "{n:?}: {} / {}",
                    support::fds::outcome(&m),
                    support::fds::outcome(&s)
                ));
            }
            for p in ["/dev/null", "/proc/self/fd"] {
                out.push(format!(
                    "{p}: {}",
                    support::fds::outcome(&ring.path_metadata(p).await)
                ));
            }
        });
        out
    };
    let epoll_ring = support::ring(BackendKind::Epoll).unwrap();
    // Following a symlink the first time sets its atime (relatime): settle them first.
    let _ = run(&epoll_ring);
    let epoll = run(&epoll_ring);
    let Some(uring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    // /proc/self/fd differs per call only in its link count and times: drop it from the
    // comparison, keeping its outcome kind.
    let strip = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|s| {
                if s.starts_with("/proc") {
                    s[..s.find('(').unwrap_or(s.len())].to_owned()
                } else {
                    s
                }
            })
            .collect()
    };
    assert_eq!(strip(run(&uring)), strip(epoll));
}

// Extreme pool settings: threads that exit the moment they find no work (idle timeout 0:
// every job may race a thread's exit) and threads that never time out (Duration::MAX must
// not overflow a deadline). Every op completes, once, correctly.
#[test]
fn extreme_idle_timeouts() {
    let _serial = serial();
    for idle in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
        for (name, ring) in pooled_rings(&[Feature::MkdirAt], |c| {
            c.blocking_threads(3).blocking_idle_timeout(idle)
        }) {
            let dir = TempPath::dir("attack-offload-idle");
            let paths: Vec<PathBuf> = (0..150).map(|i| dir.0.join(format!("i{i}"))).collect();
            let rs = ring.block_on(join_all(paths.iter().map(|p| ring.create_dir(p))));
            for (p, r) in paths.iter().zip(rs) {
                r.unwrap_or_else(|e| panic!("{name} {idle:?}: {p:?}: {e}"));
            }
            // One at a time: each job meets a thread that is exiting or gone.
            for p in &paths[..50] {
                let r = ring.block_on(ring.remove_dir(p));
                r.unwrap_or_else(|e| panic!("{name} {idle:?}: {p:?}: {e}"));
                assert!(!p.exists());
            }
        }
    }
}

// `ring.close(file)` while a pooled fallocate on that file waits in the queue (and after its
// future is dropped): the fd must stay open until the fallocate ran, so a file opened in
// between neither gets its number while it is named nor receives the allocation.
#[test]
fn close_while_a_pooled_op_is_queued_on_the_fd() {
    let _serial = serial();
    for drop_future in [false, true] {
        for (name, ring) in pooled_rings(&[Feature::Fallocate], |c| c.blocking_threads(1)) {
            let Some(dir) = slow_dir("attack-offload-close") else {
                return;
            };
            let create = OpenOptions::new().write(true).create(true);
            let slow = ring
                .block_on(ring.open(dir.0.join("slow"), &create))
                .unwrap();
            let a = dir.0.join("a");
            let file = ring.block_on(ring.open(&a, &create)).unwrap();
            let old = file.as_raw_fd();
            let mut busy = ring.fallocate(&slow, 0, 0, SLOW_LEN);
            assert!(poll_once(&mut busy).is_pending());
            assert!(wait_until(HANG, || {
                let _ = ring.poll_completions();
                pool_threads_in(libc::SYS_fallocate) > 0
            }));
            let mut op = ring.fallocate(&file, 0, 0, 8192);
            assert!(poll_once(&mut op).is_pending(), "{name}: queued");
            let _ = ring.poll_completions();
            ring.block_on(ring.close(file)).unwrap();
            let victim = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.0.join("b"))
                .unwrap();
            assert_ne!(victim.as_raw_fd(), old, "{name}: fd reused while named");
            let res = if drop_future {
                drop(op);
                None
            } else {
                Some(ring.block_on(op))
            };
            ring.block_on(busy).unwrap();
            let _ = support::soundness::drive(&ring, 5);
            assert_eq!(
                victim.metadata().unwrap().len(),
                0,
                "{name}: landed elsewhere"
            );
            let a_len = std::fs::metadata(&a).unwrap().len();
            match res {
                Some(r) => {
                    r.unwrap();
                    assert_eq!(a_len, 8192, "{name}");
                }
                None => assert!(a_len == 0 || a_len == 8192, "{name}: {a_len}"),
            }
            // Closed once the op is over.
            let link = format!("/proc/self/fd/{old}");
            assert!(
                wait_until(HANG, || {
                    let _ = ring.poll_completions();
                    std::fs::read_link(&link).ok().as_deref() != Some(a.as_path())
                }),
                "{name}: the closed file's fd was never closed"
            );
        }
    }
}

// The pool wakes an io_uring ring through an eventfd poll the ring keeps armed. That poll is
// one more SQE: pushed when the submission queue is full of ops that do not complete (reads
// on silent pipes), it is not armed, and the ring must still notice the pool's result rather
// than sleep until one of those reads completes.
#[test]
fn pool_result_wakes_a_ring_whose_queue_is_full() {
    let _serial = serial();
    for entries in [2u32, 4] {
        for policy in [
            safer_ring::SubmitPolicy::Batch,
            safer_ring::SubmitPolicy::Eager,
        ] {
            // The reads never complete: a ring that missed the pool's wake sleeps for good.
            let r = support::soundness::within(HANG, move || {
                let cfg = support::uring_wishing(Feature::MkdirAt, Some(false))
                    .entries(entries)
                    .submit_policy(policy);
                let Some(ring) = support::ring_with(cfg) else {
                    return;
                };
                let dir = TempPath::dir("attack-offload-wake");
                let p = dir.0.join("d");
                let pipes: Vec<_> = (0..entries).map(|_| ring.pipe().unwrap()).collect();
                ring.block_on(async {
                    // The mkdir goes to the pool first; then reads that never complete fill
                    // the submission queue before the ring's first turn.
                    let mut mkdir = std::pin::pin!(ring.create_dir(&p));
                    assert!(poll_once(&mut mkdir).is_pending());
                    let mut reads: Vec<_> = pipes
                        .iter()
                        .map(|(rx, _)| Box::pin(ring.read(rx, Vec::with_capacity(8))))
                        .collect();
                    for r in &mut reads {
                        let _ = poll_once(r);
                    }
                    mkdir.await.unwrap();
                    drop(reads);
                });
                assert!(p.is_dir());
            });
            if let Err(e) = r {
                panic!("entries {entries}, {policy:?}: {e}");
            }
        }
    }
}

// The same with the queue full of deadline timers: on a 2-entry ring, two pooled ops with
// long deadlines push one timer SQE each (the queue is full), a slow pooled op has none. The
// ring must wake for the pool's results, not sleep until a 10 min timer fires (the bound,
// 2 min, leaves a slow machine its fallocate). Run first on a fresh ring, then after a pooled
// op already used (and re-armed) the wake poll.
#[test]
fn pool_results_wake_a_ring_whose_queue_is_full_of_timers() {
    let _serial = serial();
    for warm in [false, true] {
        let r = support::soundness::within(HANG, move || {
            let cfg = pooled_configs(&[Feature::MkdirAt, Feature::Fallocate], |c| {
                c.entries(2).blocking_threads(3)
            })
            .remove(0)
            .1;
            let Some(ring) = support::ring_with(cfg) else {
                return Duration::ZERO;
            };
            let Some(dir) = slow_dir("attack-offload-wake2") else {
                return Duration::ZERO;
            };
            if warm {
                ring.block_on(ring.create_dir(dir.0.join("warm"))).unwrap();
            }
            let create = OpenOptions::new().write(true).create(true);
            let slow = ring
                .block_on(ring.open(dir.0.join("slow"), &create))
                .unwrap();
            let (a, b) = (dir.0.join("a"), dir.0.join("b"));
            let t = Instant::now();
            let (s, ra, rb) = ring.block_on(async {
                futures_util::future::join3(
                    ring.fallocate(&slow, 0, 0, SLOW_LEN),
                    ring.create_dir(&a).timeout(Duration::from_secs(600)),
                    ring.create_dir(&b).timeout(Duration::from_secs(600)),
                )
                .await
            });
            s.unwrap();
            ra.unwrap();
            rb.unwrap();
            t.elapsed()
        });
        match r {
            Ok(took) => eprintln!("warm {warm}: {took:?}"),
            Err(e) => panic!("warm {warm}: {e}"),
        }
    }
}

static SIGNALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Thread ids of this process's pool threads.
fn pool_tids() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|n| n.trim_end() == "safer-ring-pool")
        })
        .filter_map(|t| t.file_name().to_str()?.parse().ok())
        .collect()
}

// A signal that lands on a pool thread (a process-directed one may go to any thread that does
// not block it) must not interrupt the pooled syscall, as it never interrupts io_uring's own
// workers: here a handler without SA_RESTART and a FIFO open on the pool, sent SIGUSR1 while
// it waits for a writer. The open must still return the fd, and pool threads must block the
// usual signals (before bfec2f4 they blocked none: SigBlk 0).
backend_test!(signals_do_not_interrupt_pooled_syscalls, |ring| {
    let _serial = serial();
    let dir = TempPath::dir("attack-offload-sig");
    let fifo = dir.0.join("f");
    mkfifo(&fifo);
    // SAFETY: installs an async-signal-safe handler (one atomic add); restored below.
    let old = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = 0; // no SA_RESTART: an interrupted wait fails with EINTR
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, &mut old), 0);
        old
    };
    let read = OpenOptions::new().read(true);
    let mut open = ring.open(&fifo, &read);
    let pending = poll_once(&mut open).is_pending();
    let _ = ring.poll_completions();
    // io_uring opens natively (never pooled): no use waiting there; on epoll it must come.
    let limit = if ring.backend() == BackendKind::Epoll {
        HANG
    } else {
        Duration::from_secs(2)
    };
    let pooled = wait_until(limit, || pool_threads_in(libc::SYS_openat) > 0);
    let mut blocked_masks = Vec::new();
    if pending && pooled {
        for tid in pool_tids() {
            // SAFETY: tgkill takes no pointers.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
            // A pool thread of an earlier test's ring may end (idle) between the listing and
            // here: only the threads still there count.
            let Ok(status) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
            else {
                continue;
            };
            let blk = status
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
            blocked_masks.push(blk);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::OpenOptions::new().write(true).open(fifo).unwrap()
    });
    let r = ring.block_on(open);
    let _w = writer.join().unwrap();
    // SAFETY: restores the previous disposition.
    unsafe { libc::sigaction(libc::SIGUSR1, &old, std::ptr::null_mut()) };
    let kind = ring.backend();
    r.unwrap_or_else(|e| panic!("{kind:?}: a signalled pooled open failed: {e}"));
    if !pooled {
        support::skip(format_args!(
            "{kind:?}: the FIFO open does not run on the pool here"
        ));
    }
    for blk in blocked_masks {
        let blk = blk.expect("SigBlk of a pool thread");
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGCHLD,
            libc::SIGALRM,
            libc::SIGPROF,
            libc::SIGPIPE,
        ] {
            assert!(
                blk & (1 << (sig - 1)) != 0,
                "{kind:?}: a pool thread takes signal {sig} (SigBlk {blk:x})"
            );
        }
    }
});
