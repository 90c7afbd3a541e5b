//! 4 KiB random reads from the page cache at queue depth 32: safer-ring's safe API vs a raw
//! `io-uring` loop with the safe ring's setup flags, on the same file, in alternating rounds.
//! Goal (issue 13): >= 0.95 x raw. The file (64 MiB) goes to `SAFER_RING_BENCH_DIR` or the
//! temp dir and is read once before timing, so every read is a page-cache hit.
//!
//! `.../file_reads-<hash> profile <variant> <rounds>` runs one variant alone (for callgrind).

mod common;

use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::Poll;

use common::Variant;
use io_uring::{IoUring, opcode, types};
use safer_ring::{BackendKind, File, Ring, SaferRingConfig};

const FILE_SIZE: u64 = 64 << 20;
const BLOCK: usize = 4096;
const QD: usize = 32;
/// Reads per round.
const OPS: u64 = 32 * 1024;

/// A cheap deterministic sequence of block-aligned offsets (xorshift), one per reader.
struct Offsets(u64);

impl Offsets {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % (FILE_SIZE / BLOCK as u64)) * BLOCK as u64
    }
}

fn make_file() -> std::path::PathBuf {
    let dir = std::env::var_os("SAFER_RING_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("safer-ring-file-reads-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("create the bench file");
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + 3) as u8).collect();
    for _ in 0..FILE_SIZE >> 20 {
        f.write_all(&chunk).expect("write the bench file");
    }
    drop(f);
    // Into the page cache.
    std::fs::read(&path).expect("read the bench file back");
    path
}

fn raw_round(ring: &mut IoUring, fd: i32, bufs: &mut [[u8; BLOCK]], seed: &mut Offsets) -> u64 {
    let mut issued = 0u64;
    let mut done = 0u64;
    let mut push = |ring: &mut IoUring, i: usize, bufs: &mut [[u8; BLOCK]]| {
        let e = opcode::Read::new(types::Fd(fd), bufs[i].as_mut_ptr(), BLOCK as u32)
            .offset(seed.next())
            .build()
            .user_data(i as u64);
        // SAFETY: buffer `i` is not reused until its completion is reaped below.
        unsafe { ring.submission().push(&e).expect("SQ has room for QD") };
    };
    for i in 0..QD {
        push(ring, i, bufs);
        issued += 1;
    }
    while done < OPS {
        ring.submit_and_wait(1).expect("enter");
        let cqes: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect::<Vec<_>>();
        for (ud, res) in cqes {
            assert_eq!(res, BLOCK as i32);
            done += 1;
            if issued < OPS {
                push(ring, ud as usize, bufs);
                issued += 1;
            }
        }
    }
    OPS
}

/// 32 tasks, each looping on `read_at` with its own buffer.
fn tasks_round(ring: &Ring, file: &std::rc::Rc<File>, bufs: &mut Vec<Vec<u8>>) -> u64 {
    ring.block_on(async {
        let tasks: Vec<_> = bufs
            .drain(..)
            .enumerate()
            .map(|(i, mut buf)| {
                let (r, file) = (safer_ring::RingRef::clone(ring), file.clone());
                ring.spawn(async move {
                    let mut at = Offsets(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
                    for _ in 0..OPS / QD as u64 {
                        let (n, b) = r.read_at(&*file, buf, at.next()).await;
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

/// One task: 32 `read_at`s pushed by a first poll each, then awaited in order.
fn batched_round(ring: &Ring, file: &File, bufs: &mut Vec<Vec<u8>>, at: &mut Offsets) -> u64 {
    ring.block_on(async {
        for _ in 0..OPS / QD as u64 {
            let mut ops: Vec<_> = bufs
                .drain(..)
                .map(|b| Some(ring.read_at(file, b, at.next())))
                .collect();
            for op in ops.iter_mut() {
                let f = op.as_mut().unwrap();
                std::future::poll_fn(|cx| {
                    let _ = Pin::new(&mut *f).poll(cx);
                    Poll::Ready(())
                })
                .await;
            }
            for op in ops.iter_mut() {
                let (n, b) = op.take().unwrap().await;
                assert_eq!(n.expect("read_at"), BLOCK);
                bufs.push(b);
            }
        }
    });
    OPS
}

fn main() {
    let path = make_file();
    let std_file = std::fs::File::open(&path).expect("open the bench file");
    let mut raw = IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(256)
        .or_else(|_| IoUring::new(256))
        .expect("io_uring");
    let mut raw_bufs = vec![[0u8; BLOCK]; QD];
    let mut raw_at = Offsets(0x2545_f491_4f6c_dd1d);
    let fd = std_file.as_raw_fd();

    let ring = |kind| Ring::with_config(SaferRingConfig::default().entries(256).backend(kind)).ok();
    let uring = ring(BackendKind::IoUring);
    let epoll = ring(BackendKind::Epoll).expect("epoll ring");
    let open = || {
        let f = std::fs::File::open(&path).expect("open the bench file");
        std::rc::Rc::new(File::from(f))
    };
    let bufs = || {
        (0..QD)
            .map(|_| Vec::with_capacity(BLOCK))
            .collect::<Vec<_>>()
    };
    let (mut b1, mut b2, mut b3) = (bufs(), bufs(), bufs());
    let mut at = Offsets(0x1234_5678_9abc_def1);

    let u = uring.as_ref().map(|r| (r, open()));
    let ef = open();
    let mut v = vec![Variant::new("raw io-uring loop, QD 32", || {
        raw_round(&mut raw, fd, &mut raw_bufs, &mut raw_at)
    })];
    if let Some((r, f)) = &u {
        v.push(Variant::new("io_uring 32 tasks read_at", || {
            tasks_round(r, f, &mut b1)
        }));
        v.push(Variant::new("io_uring hand-batched 32", || {
            batched_round(r, f, &mut b2, &mut at)
        }));
    } else {
        eprintln!("io_uring unavailable: safe io_uring variants skipped");
    }
    v.push(Variant::new("epoll 32 tasks read_at", || {
        tasks_round(&epoll, &ef, &mut b3)
    }));
    if let Some((name, n)) = common::profile_args() {
        let ok = common::profile(&mut v, &name, n);
        drop(v);
        let _ = std::fs::remove_file(&path);
        std::process::exit(if ok { 0 } else { 2 });
    }
    common::compare(
        "4 KiB random reads, page cache, QD 32, ratio to raw",
        &mut v,
    );
    drop(v);
    let _ = std::fs::remove_file(&path);
}
