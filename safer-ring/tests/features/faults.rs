//! The fault-injecting backend (`FaultPlan`) over both real backends: short transfers, errors
//! before the kernel, EBUSY/EAGAIN turn storms, a capped completion queue, held and reordered
//! completions, a refused ring-fd registration; and a property test that random schedules of
//! those lose no completion, hand back no buffer the kernel may still touch, and move the same
//! bytes as a fault-free run.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use safer_ring::fault::{self, FaultPlan, OpClass};
use safer_ring::{BackendKind, Feature, OpenOptions, ProgressiveEnhancementConfig, Ring};
use safer_ring::{RingRef, SaferRingConfig, features};
use support::TempPath;

use crate::support;

/// Rings on both backends (io_uring where it runs) under `plan`.
fn rings(plan: &FaultPlan) -> Vec<Ring> {
    [BackendKind::IoUring, BackendKind::Epoll]
        .into_iter()
        .filter_map(|kind| {
            support::ring_with(
                SaferRingConfig::default()
                    .entries(64)
                    .backend(kind)
                    .fault_plan(plan.clone()),
            )
        })
        .collect()
}

fn rw() -> OpenOptions {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Asserts that no in-flight op of this thread may touch `buf` (its whole capacity).
fn handed_back(buf: &Vec<u8>) {
    assert!(
        !fault::kernel_may_access(buf.as_ptr(), buf.capacity()),
        "a buffer came back while an op in flight may still touch it"
    );
}

#[test]
fn short_transfers_still_move_every_byte() {
    let plan = FaultPlan::new()
        .short(OpClass::Write, 7, u32::MAX)
        .short(OpClass::Read, 5, u32::MAX)
        .short(OpClass::Send, 1000, u32::MAX)
        .short(OpClass::Recv, 333, u32::MAX);
    for ring in rings(&plan) {
        let p = TempPath::new("short");
        let file_data = data(100_000, 1);
        let sock_data = data(1 << 20, 2);
        ring.block_on(async {
            let f = ring.open(&p.0, &rw()).await.unwrap();
            // The plan applies: one write moves 7 bytes.
            let (n, _) = ring.write_at(&f, vec![9u8; 100], 0).await;
            assert_eq!(n.unwrap(), 7, "{}", ring.backend());
            let (res, _) = ring.write_all_at(&f, file_data.clone(), 0).await;
            res.unwrap();
            let (res, back) = ring
                .read_exact_at(&f, Vec::with_capacity(file_data.len()), 0)
                .await;
            res.unwrap();
            assert!(back == file_data, "file bytes differ on {}", ring.backend());

            let (a, b) = ring.unix_pair().unwrap();
            let r: RingRef = ring.clone();
            let sent = sock_data.clone();
            let sender = ring.spawn(async move {
                let (res, _) = r.send_all(&a, sent).await;
                res.unwrap();
            });
            let (res, got) = ring
                .read_exact(&b, Vec::with_capacity(sock_data.len()))
                .await;
            res.unwrap();
            sender.await.unwrap();
            assert!(
                got == sock_data,
                "socket bytes differ on {}",
                ring.backend()
            );
        });
    }
}

#[test]
fn an_error_before_the_kernel_fails_exactly_the_planned_ops() {
    let plan = FaultPlan::new()
        .fail(OpClass::Nop, libc::EINVAL, 2)
        .fail_nth(OpClass::Nop, 5, libc::ENOMEM);
    for ring in rings(&plan) {
        let errs: Vec<Option<i32>> = ring.block_on(async {
            let mut v = Vec::new();
            for _ in 0..8 {
                v.push(ring.nop().await.err().and_then(|e| e.raw_os_error()));
            }
            v
        });
        let (e, m) = (Some(libc::EINVAL), Some(libc::ENOMEM));
        assert_eq!(
            errs,
            [e, e, None, None, None, m, None, None],
            "{}",
            ring.backend()
        );
    }
}

#[test]
fn busy_and_again_storms_lose_no_completion() {
    // More EBUSYs in a row than the driver retries within one turn (64): the turn fails, the
    // executor backs off and retries, and every op still completes once.
    let plan = FaultPlan::new()
        .fail_turns(libc::EBUSY, 150)
        .fail_turns(libc::EAGAIN, 40);
    for ring in rings(&plan) {
        let done = Rc::new(Cell::new(0));
        for _ in 0..64 {
            let (r, d) = (ring.clone(), done.clone());
            ring.spawn(async move {
                r.nop().await.unwrap();
                d.set(d.get() + 1);
            });
        }
        ring.block_on(ring.sleep(Duration::from_millis(5))).unwrap();
        ring.block_on(async {
            while done.get() < 64 {
                ring.nop().await.unwrap();
            }
        });
        assert_eq!(done.get(), 64, "{}", ring.backend());
    }
}

#[test]
fn a_capped_completion_queue_overflows_and_loses_nothing() {
    let plan = FaultPlan::new().cq_capacity(3);
    for ring in rings(&plan) {
        let done = Rc::new(Cell::new(0u32));
        let p = TempPath::new("cq");
        std::fs::write(&p.0, data(4096, 3)).unwrap();
        let f = Rc::new(
            ring.block_on(ring.open(&p.0, &rw().truncate(false)))
                .unwrap(),
        );
        for i in 0..200u64 {
            let (r, d, f) = (ring.clone(), done.clone(), f.clone());
            ring.spawn(async move {
                let (n, buf) = r.read_at(&*f, Vec::with_capacity(1), i % 4096).await;
                assert_eq!(n.unwrap(), 1);
                assert_eq!(buf[0], data(4096, 3)[(i % 4096) as usize], "read {i}");
                d.set(d.get() + 1);
            });
        }
        ring.block_on(async {
            while done.get() < 200 {
                ring.sleep(Duration::from_millis(1)).await.unwrap();
            }
        });
        assert_eq!(done.get(), 200, "{}", ring.backend());
    }
}

#[test]
fn held_and_reordered_completions_reach_their_own_ops() {
    let plan = FaultPlan::new().delay_and_reorder(6, 0x5eed);
    for ring in rings(&plan) {
        let p = TempPath::new("reorder");
        let content = data(64 * 1024, 4);
        std::fs::write(&p.0, &content).unwrap();
        let f = Rc::new(
            ring.block_on(ring.open(&p.0, &rw().truncate(false)))
                .unwrap(),
        );
        let ok = Rc::new(Cell::new(0));
        for i in 0..64usize {
            let (r, f, ok, want) = (
                ring.clone(),
                f.clone(),
                ok.clone(),
                content[i * 1024..(i + 1) * 1024].to_vec(),
            );
            ring.spawn(async move {
                let (n, buf) = r
                    .read_at(&*f, Vec::with_capacity(1024), (i * 1024) as u64)
                    .await;
                assert_eq!(n.unwrap(), 1024);
                assert!(buf == want, "read {i} got another op's bytes");
                handed_back(&buf);
                ok.set(ok.get() + 1);
            });
        }
        ring.block_on(async {
            while ok.get() < 64 {
                ring.sleep(Duration::from_millis(1)).await.unwrap();
            }
        });
        assert_eq!(fault::in_flight_ops(), 0);
    }
}

#[test]
fn a_refused_ring_fd_registration_outside_strict_mode_keeps_the_plain_fd() {
    if !features::is_available(Feature::RegisteredRingFd) {
        support::skip("registered ring fds need Linux 5.18");
        return;
    }
    let plan = FaultPlan::new().fail_ring_fd_registration(libc::EBUSY);
    let cfg = SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .fault_plan(plan.clone());
    let ring = Ring::with_config(cfg).unwrap();
    assert_eq!(ring.registered_ring_fd(), None);
    assert!(!ring.uses_native(Feature::RegisteredRingFd));
    ring.block_on(ring.nop()).unwrap();
    assert!(
        features::is_available(Feature::RegisteredRingFd),
        "one ring's refusal is not a kernel verdict"
    );
    assert!(
        Ring::with_config(SaferRingConfig::default().backend(BackendKind::IoUring))
            .unwrap()
            .registered_ring_fd()
            .is_some()
    );
    // Wanted and strict: the refusal is an error that says what failed.
    let strict = SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .enhancement(
            ProgressiveEnhancementConfig::default()
                .feature(Feature::RegisteredRingFd, Some(true))
                .strict(true),
        )
        .fault_plan(plan);
    match Ring::with_config(strict) {
        Err(e @ safer_ring::SaferRingError::RegistrationFailed { .. }) => {
            assert!(e.to_string().contains("ring fd"), "{e}");
        }
        other => panic!("expected RegistrationFailed, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn bad_fault_plans_are_refused_with_the_value() {
    let plan = FaultPlan::new().fail(OpClass::Nop, 0, 1);
    let Err(e) = Ring::with_config(SaferRingConfig::default().fault_plan(plan)) else {
        panic!("errno 0 is not a failure");
    };
    assert!(e.to_string().contains("errno 0"), "{e}");
}

/// One random schedule of faults a ring must absorb without the user noticing (other than the
/// planned errors of NOPs).
#[derive(Debug, Clone)]
struct Schedule {
    shorts: Vec<(OpClass, u32)>,
    busy: u32,
    again: u32,
    delay: Option<(u32, u64)>,
    cq: Option<usize>,
    failed_nops: u32,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    let class = prop_oneof![
        Just(OpClass::Read),
        Just(OpClass::Write),
        Just(OpClass::Send),
        Just(OpClass::Recv)
    ];
    (
        proptest::collection::vec((class, 1u32..5000), 0..4),
        0u32..100,
        0u32..30,
        proptest::option::of((1u32..8, any::<u64>())),
        proptest::option::of(1usize..8),
        0u32..5,
    )
        .prop_map(|(shorts, busy, again, delay, cq, failed_nops)| Schedule {
            shorts,
            busy,
            again,
            delay,
            cq,
            failed_nops,
        })
}

impl Schedule {
    fn plan(&self) -> FaultPlan {
        let mut p = FaultPlan::new()
            .fail_turns(libc::EBUSY, self.busy)
            .fail_turns(libc::EAGAIN, self.again)
            .fail(OpClass::Nop, libc::ENOMEM, self.failed_nops);
        for &(class, max) in &self.shorts {
            p = p.short(class, max, u32::MAX);
        }
        if let Some((turns, seed)) = self.delay {
            p = p.delay_and_reorder(turns, seed);
        }
        if let Some(cq) = self.cq {
            p = p.cq_capacity(cq);
        }
        p
    }
}

/// Files, a socket pair, NOPs and timeouts that cancel receives mid-flight, all at once; returns
/// what was read back and the number of failed NOPs.
fn workload(ring: &Ring, file_data: &[u8], sock_data: &[u8]) -> (Vec<u8>, Vec<u8>, u32) {
    let p = TempPath::new("prop");
    let out = ring.block_on(async {
        let f = ring.open(&p.0, &rw()).await.unwrap();
        let (a, b) = ring.unix_pair().unwrap();
        let (idle, _idle_peer) = ring.unix_pair().unwrap();
        let r = RingRef::clone(ring);
        let sent = sock_data.to_vec();
        let sender = ring.spawn(async move {
            let (res, buf) = r.send_all(&a, sent).await;
            res.unwrap();
            handed_back(&buf);
        });
        let r = RingRef::clone(ring);
        let nops = ring.spawn(async move {
            let mut failed = 0;
            for _ in 0..40 {
                match r.nop().await {
                    Ok(()) => {}
                    Err(e) => {
                        assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
                        failed += 1;
                    }
                }
            }
            failed
        });
        let r = RingRef::clone(ring);
        let cancels = ring.spawn(async move {
            for i in 0..10u64 {
                // Nothing arrives on `idle`: the recv is cancelled (its buffer orphaned).
                let res = r
                    .timeout(
                        Duration::from_micros(50 * i),
                        r.recv(&idle, Vec::with_capacity(64)),
                    )
                    .await;
                assert!(res.is_err(), "idle socket produced data");
            }
        });
        let (res, buf) = ring.write_all_at(&f, file_data.to_vec(), 0).await;
        res.unwrap();
        handed_back(&buf);
        let (res, file_back) = ring
            .read_exact_at(&f, Vec::with_capacity(file_data.len()), 0)
            .await;
        res.unwrap();
        handed_back(&file_back);
        let (res, sock_back) = ring
            .read_exact(&b, Vec::with_capacity(sock_data.len()))
            .await;
        res.unwrap();
        handed_back(&sock_back);
        sender.await.unwrap();
        cancels.await.unwrap();
        let failed = nops.await.unwrap();
        (file_back, sock_back, failed)
    });
    // Cancelled receives finish after their futures are gone: give the ring turns to reap them.
    ring.block_on(async {
        for _ in 0..1000 {
            if fault::in_flight_ops() == 0 {
                break;
            }
            ring.sleep(Duration::from_millis(1)).await.unwrap();
        }
    });
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_fault_schedules_change_nothing_the_user_sees(s in schedule(), seed in any::<u8>()) {
        let file_data = data(48 * 1024, seed);
        let sock_data = data(200 * 1024, seed.wrapping_add(1));
        let plan = s.plan();
        // A lost completion shows up as a hang: a case gets 60 s on its own thread.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            for ring in rings(&plan) {
                let (file_back, sock_back, failed) = workload(&ring, &file_data, &sock_data);
                let same = (file_back == file_data, sock_back == sock_data);
                out.push((ring.backend(), failed, fault::in_flight_ops(), same));
            }
            let _ = tx.send(out);
        });
        let runs = rx.recv_timeout(Duration::from_secs(60)).expect("a case hung: a completion was lost");
        for (backend, failed, in_flight, (file_ok, sock_ok)) in runs {
            prop_assert!(file_ok, "file bytes on {}", backend);
            prop_assert!(sock_ok, "socket bytes on {}", backend);
            prop_assert_eq!(failed, s.failed_nops);
            prop_assert_eq!(in_flight, 0, "ops that never completed on {}", backend);
        }
    }
}
