//! 4 KiB random reads from the page cache at queue depth 32: safer-ring's safe API vs a raw
//! `io-uring` loop with the safe ring's setup flags, on the same file, in alternating rounds.
//! Goal (issue 13): >= 0.95 x raw. The file (64 MiB) goes to `SAFER_RING_BENCH_DIR` or the
//! temp dir and is read once before timing, so every read is a page-cache hit.
//!
//! `.../file_reads-<hash> profile <variant> <rounds>` runs one variant alone (for callgrind).

mod common;

use std::os::fd::AsRawFd;

use common::Variant;
use common::nops::raw_ring;
use common::reads::{BLOCK, Offsets, QD, batched_round, make_file, raw_round, tasks_round};
use safer_ring::{BackendKind, File, Ring, SaferRingConfig};

fn main() {
    let path = make_file("file-reads");
    let std_file = std::fs::File::open(&path).expect("open the bench file");
    let mut raw = raw_ring();
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
        common::Clock::Thread,
        &mut v,
    );
    drop(v);
    let _ = std::fs::remove_file(&path);
}
