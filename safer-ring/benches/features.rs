//! Feature detection cost: a cached query (target <= 5 ns) and a cold detection (<= 200 us).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use safer_ring::Feature;
use safer_ring::features;

fn bench(c: &mut Criterion) {
    features::detected();
    c.bench_function("cached is_available", |b| {
        b.iter(|| features::is_available(black_box(Feature::MultiShotAccept)))
    });
    c.bench_function("cold detection", |b| {
        b.iter(|| black_box(features::detect_now()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
