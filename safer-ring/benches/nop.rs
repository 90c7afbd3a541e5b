//! NOP throughput: safer-ring's safe API vs the raw `io-uring` crate, batches of 32.
//! Target: the safe API within 5 % of raw.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use io_uring::{IoUring, opcode};
use safer_ring::{BackendKind, Ring, SaferRingConfig};

const BATCH: usize = 32;

fn raw(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let mut ring: IoUring = IoUring::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(256)
        .or_else(|_| IoUring::new(256))
        .unwrap();
    g.bench_function("raw io-uring", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                let e = opcode::Nop::new().build().user_data(i as u64);
                // SAFETY: a NOP carries no pointers.
                unsafe { ring.submission().push(&e).unwrap() };
            }
            ring.submit_and_wait(BATCH).unwrap();
            let n = ring
                .completion()
                .inspect(|c| {
                    black_box(c.result());
                })
                .count();
            assert_eq!(n, BATCH);
        })
    });
}

fn safe(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    kind: BackendKind,
    name: &str,
) {
    let Ok(ring) = Ring::with_config(SaferRingConfig::default().entries(256).backend(kind)) else {
        return;
    };
    g.bench_function(name, |b| {
        b.iter(|| {
            ring.block_on(async {
                let mut ops: [_; BATCH] = std::array::from_fn(|_| Some(ring.nop()));
                // Push all 32 (first poll), then await each: one enter for the batch.
                for op in ops.iter_mut() {
                    let f = op.as_mut().unwrap();
                    std::future::poll_fn(|cx| {
                        let _ = std::pin::Pin::new(&mut *f).poll(cx);
                        std::task::Poll::Ready(())
                    })
                    .await;
                }
                for op in ops.iter_mut() {
                    op.take().unwrap().await.unwrap();
                }
            })
        })
    });
}

use std::future::Future;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("nop x32");
    g.throughput(Throughput::Elements(BATCH as u64));
    raw(&mut g);
    safe(&mut g, BackendKind::IoUring, "safer-ring io_uring");
    safe(&mut g, BackendKind::Epoll, "safer-ring epoll");
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
