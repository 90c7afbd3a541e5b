//! 4 KiB random reads at queue depth 32 on one file, io_uring against epoll, in alternating
//! rounds: O_DIRECT (the device's speed; epoll runs them on its blocking pool) and page-cache
//! reads (epoll tries them inline first). Prints IOPS per backend (median [min, max]) and the
//! epoll / io_uring ratio of each round pair. Where `fio` is installed, each O_DIRECT round also
//! runs fio's io_uring engine on the same file at the same depth (issue 13: safe API >= 1.0 x
//! fio), and prints the io_uring / fio ratio of each round.
//!
//! `cargo bench -p safer-ring --bench file_qd32`; `<bench binary> direct SECS` runs one io_uring
//! O_DIRECT round alone (to profile it next to fio). The file (256 MiB, kept for later runs) goes in
//! `$SAFER_RING_BENCH_DIR`, else the current directory: O_DIRECT needs a disk filesystem
//! (ext4, xfs), not tmpfs. `SAFER_RING_BENCH_ROUNDS` (default 5) and `SAFER_RING_BENCH_SECS`
//! (seconds per round, default 2) size the run.

use std::cell::Cell;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use safer_ring::{AlignedBuf, BackendKind, OpenOptions, Ring, SaferRingConfig};

const BLOCK: usize = 4096;
const FILE_SIZE: u64 = 256 << 20;
const DEPTH: usize = 32;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The bench file, written once with non-zero bytes (a sparse file would read no disk).
fn bench_file() -> PathBuf {
    let dir = std::env::var_os("SAFER_RING_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().unwrap());
    let path = dir.join("safer-ring-bench-file-qd32.dat");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == FILE_SIZE) {
        return path;
    }
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + 1) as u8).collect();
    for _ in 0..FILE_SIZE >> 20 {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    path
}

/// CPU time (user + system) of the whole process so far, pool threads included.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the live local it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One round: `DEPTH` tasks each reading random 4 KiB blocks for `secs`; (IOPS, CPU µs per read).
fn round(kind: BackendKind, path: &Path, direct: bool, secs: u64) -> (f64, f64) {
    let threads = env_num("SAFER_RING_BENCH_THREADS", 32) as usize;
    let cfg = SaferRingConfig::default()
        .entries(256)
        .backend(kind)
        .blocking_threads(threads);
    let ring = Ring::with_config(cfg).unwrap();
    let flags = if direct { libc::O_DIRECT } else { 0 };
    let file = ring
        .block_on(ring.open(path, &OpenOptions::new().read(true).custom_flags(flags)))
        .unwrap();
    let file = Rc::new(file);
    let blocks = FILE_SIZE / BLOCK as u64;
    let done = Rc::new(Cell::new(0u64));
    let end = Instant::now() + Duration::from_secs(secs);
    let (start, cpu) = (Instant::now(), cpu_time());
    ring.block_on(async {
        let tasks: Vec<_> = (0..DEPTH as u64)
            .map(|t| {
                let (ring, file, done) = (ring.clone(), file.clone(), done.clone());
                ring.clone().spawn(async move {
                    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1).wrapping_mul(0xff51_afd7);
                    let mut buf = AlignedBuf::new(BLOCK).unwrap();
                    while Instant::now() < end {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let off = (rng % blocks) * BLOCK as u64;
                        let (n, b) = ring.read_at(&*file, buf, off).await;
                        assert_eq!(n.unwrap(), BLOCK);
                        buf = b;
                        done.set(done.get() + 1);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let n = done.get() as f64;
    let cpu = (cpu_time() - cpu).as_secs_f64() * 1e6 / n;
    (n / start.elapsed().as_secs_f64(), cpu)
}

/// A raw `io-uring` loop with the safe ring's setup flags (COOP_TASKRUN, SINGLE_ISSUER,
/// DEFER_TASKRUN): `DEPTH` O_DIRECT reads kept in flight, each resubmitted as it is reaped, for
/// `secs`; its IOPS. Splits a gap to fio into the library's share and the loop's.
fn raw_direct_round(path: &Path, secs: u64) -> f64 {
    use io_uring::{IoUring, opcode, types};
    use std::os::fd::AsRawFd;
    let mut ring: IoUring = IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(64)
        .or_else(|_| IoUring::new(64))
        .unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap();
    let mut bufs: Vec<AlignedBuf> = (0..DEPTH)
        .map(|_| AlignedBuf::new(BLOCK).unwrap())
        .collect();
    let ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr()).collect();
    let blocks = FILE_SIZE / BLOCK as u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % blocks) * BLOCK as u64
    };
    let fd = types::Fd(file.as_raw_fd());
    let push = |ring: &mut IoUring, i: usize, off: u64| {
        let e = opcode::Read::new(fd, ptrs[i], BLOCK as u32)
            .offset(off)
            .build()
            .user_data(i as u64);
        // SAFETY: buffer `i` (alive in `bufs` until the loop ends) is not reused before its
        // completion is reaped; every read is reaped before `bufs` drops.
        unsafe { ring.submission().push(&e).unwrap() };
    };
    for i in 0..DEPTH {
        push(&mut ring, i, next());
    }
    let (start, end) = (Instant::now(), Instant::now() + Duration::from_secs(secs));
    let (mut done, mut inflight) = (0u64, DEPTH);
    while inflight > 0 {
        ring.submit_and_wait(1).unwrap();
        let cqes: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, res) in cqes {
            assert_eq!(res, BLOCK as i32);
            done += 1;
            inflight -= 1;
            if Instant::now() < end {
                push(&mut ring, ud as usize, next());
                inflight += 1;
            }
        }
    }
    drop(bufs);
    done as f64 / start.elapsed().as_secs_f64()
}

/// fio's io_uring engine: 4 KiB random O_DIRECT reads at depth `DEPTH` for `secs`; its IOPS, or
/// `None` when fio is missing or fails.
fn fio_round(path: &Path, secs: u64) -> Option<f64> {
    let out = std::process::Command::new("fio")
        .args([
            "--name=qd32",
            "--ioengine=io_uring",
            "--direct=1",
            "--rw=randread",
            "--bs=4k",
            "--numjobs=1",
            "--time_based",
            "--minimal",
        ])
        .arg(format!("--iodepth={DEPTH}"))
        .arg(format!("--runtime={secs}"))
        .arg(format!("--filename={}", path.display()))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // Terse format v3: the eighth field is the read IOPS.
    String::from_utf8_lossy(&out.stdout)
        .split(';')
        .nth(7)?
        .trim()
        .parse()
        .ok()
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    let digits = if median < 100.0 { 1 } else { 0 };
    format!(
        "{median:.digits$} [{:.digits$}, {:.digits$}]",
        v[0],
        v[v.len() - 1]
    )
}

fn ratio_summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.2} [{:.2}, {:.2}]", v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes nothing: run once,
    // briefly, so the bench still compiles and runs there.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("direct") {
        // `file_qd32-<hash> direct SECS`: the io_uring O_DIRECT round alone (for perf stat
        // next to fio).
        let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
        let (iops, cpu) = round(BackendKind::IoUring, &bench_file(), true, secs);
        println!("io_uring O_DIRECT: {iops:.0} IOPS, CPU per read {cpu:.1} µs");
        println!(
            "raw loop: {:.0} IOPS",
            raw_direct_round(&bench_file(), secs)
        );
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    let rounds = if bench {
        env_num("SAFER_RING_BENCH_ROUNDS", 5)
    } else {
        1
    };
    let secs = if bench {
        env_num("SAFER_RING_BENCH_SECS", 2)
    } else {
        1
    };
    let path = bench_file();
    let uring = Ring::with_config(SaferRingConfig::default().backend(BackendKind::IoUring)).is_ok();
    let direct_ok = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .is_ok();
    for (direct, name) in [(true, "O_DIRECT"), (false, "page cache")] {
        if direct && !direct_ok {
            println!("{name}: skipped, O_DIRECT refused in {}", path.display());
            continue;
        }
        if !direct {
            // Warm the page cache so every read is a hit.
            std::hint::black_box(std::fs::read(&path).unwrap().len());
        }
        let (mut u, mut e, mut r) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ucpu, mut ecpu) = (Vec::new(), Vec::new());
        let (mut fio, mut fio_ratio) = (Vec::new(), Vec::new());
        let (mut raw, mut raw_ratio, mut raw_fio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let ue = uring.then(|| round(BackendKind::IoUring, &path, direct, secs));
            let (ee, ec) = round(BackendKind::Epoll, &path, direct, secs);
            let fe = if direct && bench {
                fio_round(&path, secs)
            } else {
                None
            };
            let re = (direct && uring).then(|| raw_direct_round(&path, secs));
            if let (Some(re), Some(fe)) = (re, fe) {
                raw_fio.push(re / fe);
            }
            raw.extend(re);
            if let Some((ue, uc)) = ue {
                u.push(ue);
                ucpu.push(uc);
                r.push(ee / ue);
                if let Some(fe) = fe {
                    fio_ratio.push(ue / fe);
                }
                if let Some(re) = re {
                    raw_ratio.push(ue / re);
                }
            }
            fio.extend(fe);
            e.push(ee);
            ecpu.push(ec);
        }
        println!("4 KiB random reads, QD {DEPTH}, {name}, {rounds} rounds of {secs} s:");
        if !u.is_empty() {
            println!(
                "  io_uring       {} IOPS, CPU per read {} µs",
                summary(u),
                summary(ucpu)
            );
        }
        println!(
            "  epoll          {} IOPS, CPU per read {} µs",
            summary(e),
            summary(ecpu)
        );
        if !raw.is_empty() {
            println!("  raw io-uring   {} IOPS", summary(raw));
        }
        if !fio.is_empty() {
            println!("  fio io_uring   {} IOPS", summary(fio));
        }
        if !r.is_empty() {
            println!("  epoll/io_uring {}", ratio_summary(r));
        }
        if !raw_ratio.is_empty() {
            println!("  io_uring/raw   {}", ratio_summary(raw_ratio));
        }
        if !fio_ratio.is_empty() {
            println!("  io_uring/fio   {}", ratio_summary(fio_ratio));
            println!("  raw/fio        {}", ratio_summary(raw_fio));
        }
    }
}
