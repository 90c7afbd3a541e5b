//! The blocking pool that runs epoll's file operations (and the same scenarios on io_uring, whose
//! kernel does that work itself): byte-exact positional I/O with the page cache dropped and with
//! O_DIRECT, a file op blocked for 500 ms while a loopback echo keeps answering, cancellation of
//! queued pool work, dropping a ring with reads in flight (no late write may land in freed
//! memory), and idle pool threads exiting.
//!
//! Pool threads are counted by name in /proc/self/task, which every test of this binary shares:
//! the tests take `crate::serial()` so that no other test's pool is counted.

use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use safer_ring::{AlignedBuf, BackendKind, OpenOptions, Ring, SaferRingConfig};

use crate::support;
use crate::{pool_threads, serial, settle_pool_threads};

/// Whether some pool thread is blocked in the kernel (state D: waiting for the disk).
fn pool_thread_in_io() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .is_ok_and(|s| s.contains("(safer-ring-pool) D"))
    })
}

/// Pool threads blocked in system call `nr` (/proc/self/task/*/syscall starts with it).
fn pool_threads_in(nr: libc::c_long) -> usize {
    let prefix = format!("{nr} ");
    support::pool_thread_calls()
        .iter()
        .filter(|c| c.starts_with(&prefix))
        .count()
}

/// Defines `mod $name { fn io_uring(); fn epoll(); }` running `$body(kind)`.
macro_rules! pool_test {
    ($name:ident, |$kind:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($kind: safer_ring::BackendKind) $body
            #[test]
            fn io_uring() {
                run(safer_ring::BackendKind::IoUring)
            }
            #[test]
            fn epoll() {
                run(safer_ring::BackendKind::Epoll)
            }
        }
    };
}

fn ring_on(kind: BackendKind, cfg: SaferRingConfig) -> Option<Ring> {
    let ring = support::ring_with(cfg.backend(kind))?;
    assert_eq!(ring.backend(), kind);
    Some(ring)
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// Opens `fifo` for writing from another thread after `delay` (the open itself waits for a
/// reader), writes `msg` and keeps the end open until the returned handle is joined.
fn open_writer_later(
    fifo: &Path,
    delay: Duration,
    msg: &'static [u8],
) -> std::thread::JoinHandle<std::fs::File> {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
        std::io::Write::write_all(&mut f, msg).unwrap();
        f
    })
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const REGIONS: usize = 64;
const REGION: usize = 64 << 10;
const SIZE: usize = REGIONS * REGION;

pool_test!(
    positional_io_is_byte_exact_with_the_page_cache_dropped,
    |kind| {
        let Some(ring) = ring_on(kind, SaferRingConfig::default()) else {
            return;
        };
        let _serial = serial();
        let path = support::TempPath::new("pool-bytes");
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut model = rng.bytes(SIZE);
        std::fs::write(&path.0, &model).unwrap();
        let ring = Rc::new(ring);
        ring.block_on(async {
            let opts = OpenOptions::new().read(true).write(true);
            let file = ring.open(&path.0, &opts).await.unwrap();
            // One write per region, all in flight together: a random range inside it, every
            // fourth one vectored (three pieces).
            let mut writes = Vec::new();
            for r in 0..REGIONS {
                let len = 1 + rng.below(REGION as u64 - 1) as usize;
                let off = r * REGION + rng.below((REGION - len) as u64 + 1) as usize;
                let data = rng.bytes(len);
                model[off..off + len].copy_from_slice(&data);
                let (file, ring) = (&file, &ring);
                writes.push(async move {
                    let n = if r % 4 == 0 {
                        let (a, b) = data.split_at(len / 3);
                        let (b, c) = b.split_at(b.len() / 2);
                        let bufs = vec![a.to_vec(), b.to_vec(), c.to_vec()];
                        ring.writev_at(file, bufs, Some(off as u64)).await.0
                    } else {
                        ring.write_at(file, data, off as u64).await.0
                    };
                    assert_eq!(n.unwrap(), len, "write at {off}");
                });
            }
            join_all(writes).await;
            ring.fsync(&file).await.unwrap();
            assert_eq!(ring.metadata(&file).await.unwrap().len, SIZE as u64);
            // Written back by the fsync, the pages can go: reads now miss the cache (epoll sends
            // them to the pool).
            // SAFETY: fadvise takes no pointers; the file is open.
            let r =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(r, 0);
            let mut reads = Vec::new();
            for i in 0..96 {
                let len = 1 + rng.below(2 * REGION as u64) as usize;
                // Some reads run past the end: short, as pread is.
                let off = rng.below((SIZE + REGION) as u64) as usize;
                let want = model[off.min(SIZE)..(off + len).min(SIZE)].to_vec();
                let (file, ring) = (&file, &ring);
                reads.push(async move {
                    let got = if i % 3 == 0 {
                        let bufs = vec![
                            Vec::with_capacity(len / 2),
                            Vec::with_capacity(len - len / 2),
                        ];
                        let (n, bufs) = ring.readv_at(file, bufs, Some(off as u64)).await;
                        let n = n.unwrap();
                        let got = bufs.concat();
                        assert_eq!(got.len(), n);
                        got
                    } else {
                        let (n, buf) = ring
                            .read_at(file, Vec::with_capacity(len), off as u64)
                            .await;
                        assert_eq!(n.unwrap(), buf.len());
                        buf
                    };
                    assert!(got == want, "read of {len} at {off}: bytes differ");
                });
            }
            join_all(reads).await;
            if kind == BackendKind::Epoll {
                assert!(pool_threads() > 0, "epoll ran no file op on its pool");
            }
        });
        assert!(std::fs::read(&path.0).unwrap() == model, "file differs");
    }
);

pool_test!(o_direct_io_is_byte_exact, |kind| {
    let Some(ring) = ring_on(kind, SaferRingConfig::default()) else {
        return;
    };
    let _serial = serial();
    let Some(path) = support::direct_path("bytes") else {
        return;
    };
    const BLOCK: usize = 4096;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model = rng.bytes(SIZE);
    std::fs::write(&path.0, &model).unwrap();
    ring.block_on(async {
        let opts = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT);
        let file = ring.open(&path.0, &opts).await.unwrap();
        let mut writes = Vec::new();
        for r in 0..REGIONS {
            let blocks = 1 + rng.below((REGION / BLOCK) as u64 - 1) as usize;
            let first = rng.below((REGION / BLOCK - blocks) as u64 + 1) as usize;
            let off = r * REGION + first * BLOCK;
            let data = rng.bytes(blocks * BLOCK);
            model[off..off + data.len()].copy_from_slice(&data);
            let mut buf = AlignedBuf::new(data.len()).unwrap();
            buf.extend_from_slice(&data).unwrap();
            let (file, ring) = (&file, &ring);
            writes.push(async move {
                let (n, _) = ring.write_at(file, buf, off as u64).await;
                assert_eq!(n.unwrap(), blocks * BLOCK);
            });
        }
        join_all(writes).await;
        let mut reads = Vec::new();
        for _ in 0..96 {
            let blocks = 1 + rng.below(16) as usize;
            let off = rng.below((SIZE / BLOCK - blocks) as u64 + 1) as usize * BLOCK;
            let want = model[off..off + blocks * BLOCK].to_vec();
            let (file, ring) = (&file, &ring);
            reads.push(async move {
                let buf = AlignedBuf::new(blocks * BLOCK).unwrap();
                let (n, buf) = ring.read_at(file, buf, off as u64).await;
                assert_eq!(n.unwrap(), blocks * BLOCK);
                assert!(buf[..] == want[..], "O_DIRECT read at {off} differs");
            });
        }
        join_all(reads).await;
        if kind == BackendKind::Epoll {
            assert!(pool_threads() > 0, "epoll ran no O_DIRECT read on its pool");
        }
    });
    assert!(std::fs::read(&path.0).unwrap() == model, "file differs");
});

/// One 4-byte echo through the server task; how long it took.
async fn echo_once(ring: &Ring, client: &safer_ring::TcpStream) -> Duration {
    let sent = Instant::now();
    let (n, _) = ring.send(client, b"ping".to_vec()).await;
    n.unwrap();
    let (n, _) = ring.recv(client, Vec::with_capacity(64)).await;
    assert_eq!(n.unwrap(), 4);
    sent.elapsed()
}

pool_test!(a_blocked_file_open_does_not_stall_sockets, |kind| {
    let Some(ring) = ring_on(kind, SaferRingConfig::default()) else {
        return;
    };
    let _serial = serial();
    let fifo = support::TempPath::new("pool-fifo");
    mkfifo(&fifo.0);
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut writer = None;
    ring.block_on(async {
        let client = ring.connect_tcp(addr).await.unwrap();
        let (server, _) = ring.accept(&listener).await.unwrap();
        let echo = ring.clone().spawn({
            let ring = ring.clone();
            async move {
                let mut buf = Vec::with_capacity(64);
                loop {
                    let (n, b) = ring.recv(&server, buf).await;
                    if n.unwrap() == 0 {
                        break;
                    }
                    let (n, b) = ring.send(&server, b).await;
                    n.unwrap();
                    buf = b;
                    buf.clear();
                }
            }
        });
        // What an echo costs on this machine, before anything blocks: the open blocks for
        // 200 times that (at least 1 s; a loaded host showed single echoes of 85 ms), so an
        // echo held by it is unmistakable anywhere.
        let mut base = Duration::ZERO;
        for _ in 0..5 {
            base = base.max(echo_once(&ring, &client).await);
        }
        let blocked = (base * 200).max(Duration::from_secs(1));
        // Opening a FIFO for reading blocks until a writer opens it: `blocked` from now (t0
        // first: the writer's sleep starts after it, so the open cannot end sooner).
        let t0 = Instant::now();
        writer = Some(open_writer_later(&fifo.0, blocked, b"x"));
        let opened = Rc::new(Cell::new(None));
        let open = ring.clone().spawn({
            let (ring, opened, path) = (ring.clone(), opened.clone(), fifo.0.clone());
            async move {
                let file = ring
                    .open(&path, &OpenOptions::new().read(true))
                    .await
                    .unwrap();
                opened.set(Some(t0.elapsed()));
                file
            }
        });
        let (mut echoes, mut worst) = (0u32, Duration::ZERO);
        while opened.get().is_none() && t0.elapsed() < blocked + Duration::from_secs(60) {
            worst = worst.max(echo_once(&ring, &client).await);
            echoes += 1;
        }
        let blocked_for = opened.get().expect("the FIFO open finished");
        eprintln!(
            "{kind}: open blocked {blocked_for:?} (writer after {blocked:?}); meanwhile \
             {echoes} echoes, slowest {worst:?} (before: {base:?})"
        );
        if kind == BackendKind::Epoll {
            // (io_uring opens a FIFO without waiting for the writer: nothing blocks there.)
            assert!(blocked_for >= blocked, "{blocked_for:?}");
        }
        // Inline, the open would have held an echo for the whole wait.
        assert!(worst < blocked / 2, "an echo took {worst:?}");
        if blocked_for >= blocked {
            assert!(
                echoes >= 10,
                "only {echoes} echoes while the open was blocked"
            );
        }
        let file = open.await.unwrap();
        let (n, buf) = ring.read(&file, Vec::with_capacity(8)).await;
        assert_eq!((n.unwrap(), &buf[..]), (1, &b"x"[..]));
        ring.shutdown(&client, std::net::Shutdown::Write)
            .await
            .unwrap();
        echo.await.unwrap();
    });
    drop(writer.unwrap().join().unwrap());
});

/// epoll only: io_uring's kernel decides itself what runs and what waits (io-wq). `a`'s
/// deadline must fire while its open runs: where the pool's threads took longer than it to
/// start (a slow machine), `a` was cancelled while queued, and the case is run again with
/// twice the deadline.
#[test]
fn queued_pool_work_is_cancelled_and_never_runs_while_running_work_completes() {
    let _serial = serial();
    // The case counts the process's pool threads: those of earlier tests' rings (here or in
    // offload_races.rs) must be gone.
    assert_eq!(
        settle_pool_threads(0, Duration::from_secs(60)),
        0,
        "pool threads of earlier tests (10 s default idle timeout)"
    );
    let mut deadline = Duration::from_millis(400);
    while !queued_pool_work_case(deadline) {
        assert!(
            deadline < Duration::from_secs(30),
            "the pool's threads never started within {deadline:?}"
        );
        deadline *= 2;
    }
}

/// The case with `a`'s deadline; false if it fired before both opens were seen running.
fn queued_pool_work_case(deadline: Duration) -> bool {
    let cfg = SaferRingConfig::default()
        .backend(BackendKind::Epoll)
        .blocking_threads(2);
    let ring = Ring::with_config(cfg).unwrap();
    let (a, b) = (
        support::TempPath::new("pool-a"),
        support::TempPath::new("pool-b"),
    );
    mkfifo(&a.0);
    mkfifo(&b.0);
    let (c, d) = (
        support::TempPath::new("pool-c"),
        support::TempPath::new("pool-d"),
    );
    let read = OpenOptions::new().read(true);
    let create = OpenOptions::new().write(true).create(true);
    let ran = ring.block_on(async {
        // Both threads of the pool block in a FIFO open; `a`'s timeout fires while it runs.
        let ha = ring.clone().spawn({
            let (ring, p, o) = (ring.clone(), a.0.clone(), read);
            async move { ring.open(&p, &o).timeout(deadline).await }
        });
        let hb = ring.clone().spawn({
            let (ring, p, o) = (ring.clone(), b.0.clone(), read);
            async move { ring.open(&p, &o).await }
        });
        let t0 = Instant::now();
        while pool_threads_in(libc::SYS_openat) < 2 {
            if ha.is_finished() {
                // `a` timed out before a thread took it: unblock `b`, try a longer deadline.
                let wb = open_writer_later(&b.0, Duration::ZERO, b"b");
                drop(hb.await.unwrap().unwrap());
                drop(wb.join().unwrap());
                return false;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the pool threads never opened"
            );
            ring.sleep(Duration::from_millis(2)).await.unwrap();
        }
        assert_eq!(pool_threads(), 2, "the pool has two threads, both busy");
        // Queued behind them: a linked timeout cancels it...
        let e = ring
            .open(&c.0, &create)
            .timeout(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        // ...and so does dropping its future.
        let elapsed = ring
            .timeout(Duration::from_millis(30), ring.open(&d.0, &create))
            .await;
        assert!(elapsed.is_err(), "the open cannot have run");
        // Past `a`'s timeout: it fired while the open ran.
        let left = (deadline + Duration::from_millis(100)).saturating_sub(t0.elapsed());
        ring.sleep(left).await.unwrap();
        let wa = open_writer_later(&a.0, Duration::ZERO, b"a");
        let wb = open_writer_later(&b.0, Duration::ZERO, b"b");
        // A running syscall is not interrupted: `a` completes normally after its timeout.
        let fa = ha
            .await
            .unwrap()
            .expect("a running open completes normally");
        let fb = hb.await.unwrap().unwrap();
        for (f, want) in [(&fa, b"a"), (&fb, b"b")] {
            let (n, buf) = ring.read(f, Vec::with_capacity(8)).await;
            assert_eq!((n.unwrap(), &buf[..]), (1, &want[..]));
        }
        drop((wa.join().unwrap(), wb.join().unwrap()));
        // Give a wrongly started open every chance to create its file.
        ring.sleep(Duration::from_millis(100)).await.unwrap();
        true
    });
    if ran {
        assert!(!c.0.exists(), "a cancelled queued open ran");
        assert!(!d.0.exists(), "a dropped queued open ran");
    }
    ran
}

/// A buffer inside memory the test owns for good: its drop is recorded ("freed"), its bytes stay
/// readable, so the test can re-allocate a freed buffer's memory itself and see any late write.
struct ArenaBuf {
    ptr: *mut u8,
    len: usize,
    init: usize,
    freed: Arc<AtomicBool>,
}

impl Drop for ArenaBuf {
    fn drop(&mut self) {
        self.freed.store(true, Ordering::SeqCst);
    }
}

// SAFETY: the arena is never deallocated; `init <= len` bytes are initialized (the arena is
// zeroed), at an address that never moves.
unsafe impl safer_ring::IoBuf for ArenaBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr
    }
    fn bytes_init(&self) -> usize {
        self.init
    }
    fn bytes_total(&self) -> usize {
        self.len
    }
}

// SAFETY: as above; the buffer's window of the arena is valid for writes of `len` bytes and
// is handed to one buffer only.
unsafe impl safer_ring::IoBufMut for ArenaBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
    unsafe fn set_init(&mut self, len: usize) {
        self.init = len;
    }
}

/// Drops a ring with 32 O_DIRECT reads of 1 MiB in flight (on epoll, once a pool thread is seen
/// waiting for the disk). Then every buffer the ring freed
/// is "re-allocated" (filled with 0xAA) and, once every read is surely over, compared: a late
/// write into freed memory would show. Buffers the ring did not free (leaked) may hold the
/// file's bytes (a read that finished after the ring was gone) or nothing, never anything else.
/// Returns (buffers leaked, leaked buffers written only after the drop).
fn drop_with_reads_in_flight(kind: BackendKind, drain: Duration) -> (usize, usize) {
    const N: usize = 32;
    const LEN: usize = 1 << 20;
    let cfg = SaferRingConfig::default().drain_timeout(drain);
    let Some(ring) = ring_on(kind, cfg) else {
        return (0, 0);
    };
    let Some(path) = support::direct_path("drop") else {
        return (0, 0);
    };
    // Non-zero bytes, a different value per buffer (a read into the wrong buffer shows). Whole
    // buffers are compared with `==` (memcmp): byte loops are slow in debug builds.
    let mut content = Vec::with_capacity(N * LEN);
    for i in 0..N {
        content.resize((i + 1) * LEN, (i * 7) as u8 | 1);
    }
    let (zeros, filled) = (vec![0u8; LEN], vec![0xAAu8; LEN]);
    std::fs::write(&path.0, &content).unwrap();
    let layout = std::alloc::Layout::from_size_align(N * LEN, 4096).unwrap();
    // SAFETY: a non-zero size; the arena is never deallocated (the ring may leak into it).
    let arena = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!arena.is_null());
    let freed: Vec<_> = (0..N).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let file = ring
        .block_on(ring.open(
            &path.0,
            &OpenOptions::new().read(true).custom_flags(libc::O_DIRECT),
        ))
        .unwrap();
    let file = Rc::new(file);
    for (i, freed) in freed.iter().enumerate() {
        let buf = ArenaBuf {
            // SAFETY: window `i` lies inside the arena.
            ptr: unsafe { arena.add(i * LEN) },
            len: LEN,
            init: 0,
            freed: freed.clone(),
        };
        let (r, file) = (ring.clone(), file.clone());
        drop(ring.spawn(async move {
            let (n, _) = r.read_at(&*file, buf, (i * LEN) as u64).await;
            n.unwrap();
        }));
    }
    // Poll the tasks once (their reads are pushed), submit, and drop the ring at once.
    ring.block_on(async {
        let mut once = false;
        std::future::poll_fn(|cx| {
            if std::mem::replace(&mut once, true) {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await
    });
    ring.poll_completions().unwrap();
    if kind == BackendKind::Epoll {
        let end = Instant::now() + Duration::from_secs(1);
        while !pool_thread_in_io() && Instant::now() < end {
            std::hint::spin_loop();
        }
    }
    drop(file);
    drop(ring);
    // Re-allocate what the ring freed; note which leaked buffers a read has not finished yet.
    let was_freed: Vec<bool> = freed.iter().map(|f| f.load(Ordering::SeqCst)).collect();
    let mut untouched = [false; N];
    for i in 0..N {
        // SAFETY: window `i` of the arena, which is never deallocated. A leaked buffer may be
        // written by a late read meanwhile: bytes are only compared, never relied on.
        let window = unsafe { std::slice::from_raw_parts_mut(arena.add(i * LEN), LEN) };
        if was_freed[i] {
            window.fill(0xAA);
        } else {
            // One byte per page: quick enough to catch reads still under way (a full scan in a
            // debug build takes longer than the reads).
            untouched[i] = window.iter().step_by(4096).any(|&b| b == 0);
        }
    }
    // Let every read finish (a cold 1 MiB read takes a few ms), then compare. A leaked buffer
    // half written is a read still under way (an emulated disk is slow): wait for it, by the
    // clock and generously, rather than call it garbage.
    std::thread::sleep(Duration::from_millis(500));
    let settled = |i: usize| {
        // SAFETY: window `i` of the live arena; only compared.
        let got = unsafe { std::slice::from_raw_parts(arena.add(i * LEN), LEN) };
        got == &zeros[..] || got == &content[i * LEN..(i + 1) * LEN]
    };
    let end = Instant::now() + Duration::from_secs(30);
    while (0..N).any(|i| !was_freed[i] && !settled(i)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut leaked, mut late) = (0, 0);
    for i in 0..N {
        // SAFETY: window `i` of the live arena; every read is over by now.
        let got = unsafe { std::slice::from_raw_parts(arena.add(i * LEN), LEN) };
        if was_freed[i] {
            assert!(
                got == &filled[..],
                "{kind}: a write landed in freed buffer {i} after the ring dropped it"
            );
            continue;
        }
        leaked += 1;
        if got == &content[i * LEN..(i + 1) * LEN] {
            late += usize::from(untouched[i]);
        } else {
            // Cancelled before it started (epoll's queued pool work): never written.
            assert!(got == &zeros[..], "{kind}: leaked buffer {i} holds garbage");
        }
    }
    eprintln!(
        "{kind}, drain {drain:?}: {} buffers freed, {leaked} leaked, {late} of them written \
         after the ring was dropped",
        N - leaked
    );
    (leaked, late)
}

pool_test!(
    a_ring_dropped_without_waiting_leaks_buffers_still_being_read,
    |kind| {
        let _serial = serial();
        let (_, late) = drop_with_reads_in_flight(kind, Duration::ZERO);
        if late == 0 {
            support::skip(
                "no read was still under way when the ring was dropped: nothing to check",
            );
        }
    }
);

pool_test!(
    a_ring_dropped_with_time_to_drain_waits_for_running_reads,
    |kind| {
        let _serial = serial();
        // Far more than the reads need anywhere (an emulated disk included): the drop
        // waits only as long as they run.
        let (leaked, _) = drop_with_reads_in_flight(kind, Duration::from_secs(120));
        assert_eq!(
            leaked, 0,
            "{kind}: {leaked} buffers leaked despite 120 s to drain"
        );
    }
);

#[test]
fn idle_pool_threads_exit_and_cost_nothing() {
    let _serial = serial();
    assert_eq!(
        settle_pool_threads(0, Duration::from_secs(60)),
        0,
        "pool threads of earlier tests (10 s default idle timeout)"
    );
    let cfg = SaferRingConfig::default()
        .backend(BackendKind::Epoll)
        .blocking_idle_timeout(Duration::from_millis(200));
    let ring = Ring::with_config(cfg).unwrap();
    let path = support::TempPath::new("pool-idle");
    std::fs::write(&path.0, b"idle").unwrap();
    ring.block_on(async {
        let file = ring
            .open(&path.0, &OpenOptions::new().read(true).write(true))
            .await
            .unwrap();
        ring.fsync(&file).await.unwrap();
        assert_eq!(ring.metadata(&file).await.unwrap().len, 4);
    });
    assert!(pool_threads() >= 1, "open, fsync and statx ran on the pool");
    // They exit after the configured 200 ms, not the default 10 s: a wait of half the default
    // tells them apart on any machine.
    let t = Instant::now();
    let left = settle_pool_threads(0, Duration::from_secs(60));
    assert_eq!(left, 0, "idle pool threads exit after their timeout");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the pool threads took {:?} to exit, not 200 ms",
        t.elapsed()
    );
    // The whole process (no pool thread, the ring asleep in epoll_wait) uses no CPU.
    let cpu = |ru: libc::rusage| {
        Duration::new(ru.ru_utime.tv_sec as u64, ru.ru_utime.tv_usec as u32 * 1000)
            + Duration::new(ru.ru_stime.tv_sec as u64, ru.ru_stime.tv_usec as u32 * 1000)
    };
    let usage = || {
        // SAFETY: getrusage fills the zeroed local it is given.
        unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
            cpu(ru)
        }
    };
    // Against what a 10 ms sleep costs this machine (an emulated CPU makes each wake-up
    // dearer): idling 1 s costs about the same, spinning ~1 s.
    let idle = |d: Duration| {
        let before = usage();
        ring.block_on(ring.sleep(d)).unwrap();
        usage() - before
    };
    idle(Duration::from_millis(10));
    let base = (0..3)
        .map(|_| idle(Duration::from_millis(10)))
        .max()
        .unwrap();
    let spent = idle(Duration::from_secs(1));
    let bound = base * 4 + Duration::from_millis(50);
    assert!(
        spent < bound,
        "{spent:?} of CPU while idle for 1 s, over {bound:?} (10 ms idle: {base:?})"
    );
}
