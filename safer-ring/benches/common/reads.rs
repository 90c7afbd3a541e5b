//! The 4 KiB page-cache read shapes (safer-ring's `file_reads` bench and `peers/`'): a 64 MiB
//! file read once into the cache, a raw io-uring loop keeping QD reads in flight, and safer-ring
//! with 32 tasks on `read_at` or one task hand-batching 32.

use std::io::Write;

use io_uring::{IoUring, opcode, types};
use safer_ring::{File, Ring};

const FILE_SIZE: u64 = 64 << 20;
pub const BLOCK: usize = 4096;
pub const QD: usize = 32;
/// Reads per round.
pub const OPS: u64 = 32 * 1024;

/// A cheap deterministic sequence of block-aligned offsets (xorshift), one per reader.
pub struct Offsets(pub u64);

impl Offsets {
    /// The sequence of reader `i` (the same in every bench, so the tables read alike).
    pub fn reader(i: usize) -> Self {
        Offsets(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % (FILE_SIZE / BLOCK as u64)) * BLOCK as u64
    }
}

pub fn make_file(tag: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("SAFER_RING_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("safer-ring-{tag}-{}", std::process::id()));
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

pub fn raw_round(ring: &mut IoUring, fd: i32, bufs: &mut [[u8; BLOCK]], seed: &mut Offsets) -> u64 {
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
pub fn tasks_round(ring: &Ring, file: &std::rc::Rc<File>, bufs: &mut Vec<Vec<u8>>) -> u64 {
    ring.block_on(async {
        let tasks: Vec<_> = bufs
            .drain(..)
            .enumerate()
            .map(|(i, mut buf)| {
                let (r, file) = (safer_ring::RingRef::clone(ring), file.clone());
                ring.spawn(async move {
                    let mut at = Offsets::reader(i);
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
pub fn batched_round(ring: &Ring, file: &File, bufs: &mut Vec<Vec<u8>>, at: &mut Offsets) -> u64 {
    ring.block_on(async {
        for _ in 0..OPS / QD as u64 {
            let mut ops: Vec<_> = bufs
                .drain(..)
                .map(|b| Some(ring.read_at(file, b, at.next())))
                .collect();
            super::hand_batched(&mut ops, |(n, b)| {
                assert_eq!(n.expect("read_at"), BLOCK);
                bufs.push(b);
            })
            .await;
        }
    });
    OPS
}
