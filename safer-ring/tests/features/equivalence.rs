//! Fallback equivalence: random sequences of operations give the same bytes on io_uring
//! (native) and epoll (fallback).

use proptest::prelude::*;
use safer_ring::{BackendKind, OpenOptions, Ring};

use crate::support;

#[derive(Debug, Clone)]
enum Step {
    WriteAt(u64, Vec<u8>),
    ReadAt(u64, usize),
    StreamWrite(Vec<u8>),
    StreamRead(usize),
    Writev(Vec<Vec<u8>>),
    PipeRoundTrip(Vec<u8>),
    Metadata,
}

fn step() -> impl Strategy<Value = Step> {
    let bytes = prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (0u64..2000, bytes.clone()).prop_map(|(o, b)| Step::WriteAt(o, b)),
        (0u64..2500, 0usize..400).prop_map(|(o, n)| Step::ReadAt(o, n)),
        bytes.clone().prop_map(Step::StreamWrite),
        (0usize..400).prop_map(Step::StreamRead),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..5)
            .prop_map(Step::Writev),
        prop::collection::vec(any::<u8>(), 1..300).prop_map(Step::PipeRoundTrip),
        Just(Step::Metadata),
    ]
}

/// Runs the steps and returns everything observable: each result and each byte read.
fn trace(kind: BackendKind, steps: &[Step]) -> Option<Vec<String>> {
    let ring: Ring = support::ring(kind)?;
    let path = support::TempPath::new("equiv");
    let opts = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true);
    let (r, w) = ring.pipe().unwrap();
    Some(ring.block_on(async {
        let f = ring.open(&path.0, &opts).await.unwrap();
        let mut out = Vec::new();
        for s in steps {
            let line = match s {
                Step::WriteAt(o, b) => {
                    format!("{:?}", ring.write_at(&f, b.clone(), *o).await.0.ok())
                }
                Step::ReadAt(o, n) => {
                    let (res, buf) = ring.read_at(&f, Vec::with_capacity(*n), *o).await;
                    format!("{:?} {:?}", res.ok(), buf)
                }
                Step::StreamWrite(b) => format!("{:?}", ring.write(&f, b.clone()).await.0.ok()),
                Step::StreamRead(n) => {
                    let (res, buf) = ring.read(&f, Vec::with_capacity(*n)).await;
                    format!("{:?} {:?}", res.ok(), buf)
                }
                Step::Writev(bs) => {
                    format!("{:?}", ring.writev_at(&f, bs.clone(), None).await.0.ok())
                }
                Step::PipeRoundTrip(b) => {
                    let (n, _) = ring.write(&w, b.clone()).await;
                    let (m, got) = ring.read(&r, Vec::with_capacity(512)).await;
                    format!("{:?} {:?} {:?}", n.ok(), m.ok(), got)
                }
                Step::Metadata => format!("{:?}", ring.metadata(&f).await.map(|m| m.len).ok()),
            };
            out.push(line);
        }
        out
    }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn native_and_fallback_give_the_same_bytes(steps in prop::collection::vec(step(), 1..25)) {
        let fallback = trace(BackendKind::Epoll, &steps).unwrap();
        if let Some(native) = trace(BackendKind::IoUring, &steps) {
            prop_assert_eq!(native, fallback);
        }
    }
}
