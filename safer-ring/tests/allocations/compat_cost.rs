//! What the adapter costs, measured, not asserted (ignored by default; run in release):
//!
//! ```sh
//! cargo test --release -p safer-ring --features tokio --test allocations -- --ignored --nocapture --test-threads 1 compat_cost
//! ```
//!
//! Allocations per operation (counted by this binary's global allocator, on the test's thread,
//! which runs all of the adapter's work) and the throughput of a 64 MiB loopback TCP transfer
//! through the adapter against the same transfer with raw operations.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use safer_ring::{BackendKind, Ring, RingRef, TcpStream};

thread_local! {
    static CPU: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

const ROUNDS: usize = 2000;
const TOTAL: usize = 64 << 20;
const CHUNK: usize = 16 * 1024;

async fn tcp_pair(ring: &RingRef) -> (TcpStream, TcpStream) {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = ring.connect_tcp(addr).await.unwrap();
    let (server, _) = ring.accept(&listener).await.unwrap();
    (client, server)
}

/// Allocations per (write + flush + read) round trip of 100 bytes, adapter and raw.
fn allocs(ring: &Ring) {
    ring.block_on(async {
        let (a, b) = tcp_pair(ring).await;
        let (mut a, mut b) = (ring.compat(a), ring.compat(b));
        let mut buf = [0u8; 100];
        // Warm up: the adapter's buffers are allocated on first use.
        a.write_all(&buf).await.unwrap();
        b.read_exact(&mut buf).await.unwrap();
        let before = crate::thread_allocs();
        for _ in 0..ROUNDS {
            a.write_all(&buf).await.unwrap();
            a.flush().await.unwrap();
            b.read_exact(&mut buf).await.unwrap();
        }
        let compat = crate::thread_allocs() - before;
        let (a, b) = (a.into_inner().unwrap(), b.into_inner().unwrap());
        let (mut wbuf, mut rbuf) = (vec![0u8; 100], Vec::with_capacity(CHUNK));
        let before = crate::thread_allocs();
        for _ in 0..ROUNDS {
            let (res, w) = ring.send_all(&a, wbuf).await;
            res.unwrap();
            wbuf = w;
            let (res, r) = ring.recv(&b, rbuf).await;
            assert_eq!(res.unwrap(), 100);
            rbuf = r;
        }
        let raw = crate::thread_allocs() - before;
        println!(
            "{:?}: allocations per round trip (one write, one read): adapter {:.2}, raw ops {:.2}",
            ring.backend(),
            compat as f64 / ROUNDS as f64,
            raw as f64 / ROUNDS as f64
        );
    });
}

/// MiB/s of a 64 MiB transfer over loopback TCP in 16 KiB writes, with the adapter on both
/// sides, on one side, and raw ops on both; best of three, with that run's CPU time (user +
/// system, this thread: less disturbed by other load on the machine than wall time).
fn throughput(ring: &Ring) {
    for (w, r) in [(true, true), (true, false), (false, true), (false, false)] {
        let (mut best, mut cpu) = (0f64, 0f64);
        for _ in 0..3 {
            let mbps = (TOTAL >> 20) as f64 / ring.block_on(transfer(ring, w, r));
            if mbps > best {
                (best, cpu) = (mbps, CPU.get());
            }
        }
        let side = |c| if c { "adapter" } else { "raw" };
        println!(
            "{:?}: 64 MiB, writer {}, reader {}: {best:.0} MiB/s, {cpu:.3} s CPU",
            ring.backend(),
            side(w),
            side(r)
        );
    }
}

/// CPU seconds (user + system) this thread has used.
fn cpu_secs() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage to write into.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) }, 0);
    let t = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

async fn transfer(ring: &RingRef, compat_w: bool, compat_r: bool) -> f64 {
    let (a, b) = tcp_pair(ring).await;
    let start = Instant::now();
    let cpu = cpu_secs();
    let reader = {
        let ring = ring.clone();
        ring.clone().spawn(async move {
            let mut got = 0;
            if compat_r {
                let mut b = ring.compat(b);
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = b.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
            } else {
                let mut buf = Vec::with_capacity(CHUNK);
                loop {
                    let (res, r) = ring.recv(&b, buf).await;
                    let n = res.unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n;
                    buf = r;
                }
            }
            got
        })
    };
    let chunk = vec![7u8; CHUNK];
    if compat_w {
        let mut a = ring.compat(a);
        for _ in 0..TOTAL / CHUNK {
            a.write_all(&chunk).await.unwrap();
        }
        a.shutdown().await.unwrap();
    } else {
        let mut chunk = chunk;
        for _ in 0..TOTAL / CHUNK {
            let (res, c) = ring.send_all(&a, chunk).await;
            res.unwrap();
            chunk = c;
        }
        ring.shutdown(&a, std::net::Shutdown::Write).await.unwrap();
    }
    assert_eq!(reader.await.unwrap(), TOTAL);
    CPU.set(cpu_secs() - cpu);
    start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "a measurement: run by hand in release (see the file's docs)"]
fn adapter_cost() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        if let Some(ring) = crate::support::ring(kind) {
            allocs(&ring);
            throughput(&ring);
        }
    }
}
