//! 4 KiB random reads from the page cache at queue depth 32, per CPU-second of the whole process
//! (tokio's reads run on its blocking pool's threads, so one thread's clock would miss them):
//! a raw io-uring loop, safer-ring's io_uring `read_at`, tokio-uring's `read_at`, and tokio's
//! way (what `tokio::fs` does: `spawn_blocking` around a `pread`), each with 32 readers on the
//! same file. The file (64 MiB, as in safer-ring's file_reads bench) goes to
//! `SAFER_RING_BENCH_DIR` or the temp dir and is read once first, so every read hits the cache.
//!
//! `cargo bench --manifest-path peers/Cargo.toml --bench file_reads`; `<bench binary> profile
//! <variant> <n>` runs one variant alone (`scripts/callgrind-per-op.sh peers:file_reads ...`).

#[path = "../../safer-ring/benches/common/mod.rs"]
mod measure;

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;

use safer_ring::{BackendKind, File, Ring, SaferRingConfig};

use measure::nops::raw_ring;
use measure::reads::{BLOCK, OPS, Offsets, QD, make_file, raw_round, tasks_round};
use measure::{Clock, Variant};

/// 32 tokio-uring tasks, each looping on `read_at` with its own buffer.
fn tu_round(
    rt: &tokio_uring::Runtime,
    file: &Rc<tokio_uring::fs::File>,
    bufs: &mut Vec<Vec<u8>>,
) -> u64 {
    rt.block_on(async {
        let tasks: Vec<_> = bufs
            .drain(..)
            .enumerate()
            .map(|(i, mut buf)| {
                let file = file.clone();
                tokio_uring::spawn(async move {
                    let mut at = Offsets::reader(i);
                    for _ in 0..OPS / QD as u64 {
                        let (n, b) = file.read_at(buf, at.next()).await;
                        assert_eq!(n.expect("read_at"), BLOCK);
                        buf = b;
                    }
                    buf
                })
            })
            .collect();
        for t in tasks {
            bufs.push(t.await.expect("reader task"));
        }
    });
    OPS
}

/// tokio's way: 32 tasks on a current-thread runtime, each read a `spawn_blocking` of a
/// `pread` (`tokio::fs::File` clones its `Arc<std::fs::File>` into the closure the same way;
/// it also copies through a buffer of its own, which this leaves out).
fn tokio_round(
    rt: &tokio::runtime::Runtime,
    file: &Arc<std::fs::File>,
    bufs: &mut Vec<Vec<u8>>,
) -> u64 {
    rt.block_on(async {
        let tasks: Vec<_> = bufs
            .drain(..)
            .enumerate()
            .map(|(i, mut buf)| {
                let file = file.clone();
                tokio::spawn(async move {
                    let mut at = Offsets::reader(i);
                    for _ in 0..OPS / QD as u64 {
                        let (f, off) = (file.clone(), at.next());
                        buf = tokio::task::spawn_blocking(move || {
                            let n = f.read_at(&mut buf, off).expect("pread");
                            assert_eq!(n, BLOCK);
                            buf
                        })
                        .await
                        .expect("blocking read");
                    }
                    buf
                })
            })
            .collect();
        for t in tasks {
            bufs.push(t.await.expect("reader task"));
        }
    });
    OPS
}

fn main() {
    let path = make_file("peers-reads");
    let open = || std::fs::File::open(&path).expect("open the bench file");
    let raw_file = open();
    let mut raw = raw_ring();
    let (mut raw_bufs, mut raw_at) = (vec![[0u8; BLOCK]; QD], Offsets(0x2545_f491_4f6c_dd1d));

    let sr = Ring::with_config(
        SaferRingConfig::default()
            .entries(256)
            .backend(BackendKind::IoUring),
    )
    .expect("safer-ring's io_uring backend");
    let sr_file = Rc::new(File::from(open()));
    // Long-lived runtimes: their creation (and tokio's blocking threads, kept 10 s idle) is
    // not counted per round.
    let tu = tokio_uring::Runtime::new(&tokio_uring::builder()).expect("tokio-uring runtime");
    let tu_file = Rc::new(tokio_uring::fs::File::from_std(open()));
    let tk = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    // The default pool grows to its 512-thread cap here: a task's next `spawn_blocking` comes
    // before the thread that ran its last one is idle again. Capped at the readers' count as
    // a tuned application would.
    let tk32 = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(QD)
        .build()
        .expect("tokio runtime");
    let tk_file = Arc::new(open());
    // safer-ring and tokio-uring read into a Vec's capacity, pread into its initialised length.
    let bufs = |f: fn() -> Vec<u8>| (0..QD).map(|_| f()).collect::<Vec<_>>();
    let empty = || Vec::with_capacity(BLOCK);
    let (mut b1, mut b2) = (bufs(empty), bufs(empty));
    let (mut b3, mut b4) = (bufs(|| vec![0; BLOCK]), bufs(|| vec![0; BLOCK]));

    let mut v = vec![
        Variant::new("raw io-uring loop, QD 32", || {
            raw_round(&mut raw, raw_file.as_raw_fd(), &mut raw_bufs, &mut raw_at)
        }),
        Variant::new("safer-ring 32 tasks read_at", || {
            tasks_round(&sr, &sr_file, &mut b1)
        }),
        Variant::new("tokio-uring 32 tasks read_at", || {
            tu_round(&tu, &tu_file, &mut b2)
        }),
        Variant::new("tokio 32 tasks spawn_blocking+pread", || {
            tokio_round(&tk, &tk_file, &mut b3)
        }),
        Variant::new("same, max_blocking_threads(32)", || {
            tokio_round(&tk32, &tk_file, &mut b4)
        }),
    ];
    let ok = measure::run(
        "4 KiB random reads, page cache, QD 32, ratio to raw",
        Clock::Process,
        &mut v,
    );
    drop(v);
    let _ = std::fs::remove_file(&path);
    std::process::exit(if ok { 0 } else { 2 });
}
