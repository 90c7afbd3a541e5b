//! Attack on "no user code runs while the driver is borrowed" from the drop side: a `tracing`
//! subscriber is user code, and the driver logs while it is borrowed (e.g. the first op a
//! ring runs as a syscall because its opcode is missing or turned off logs from inside the
//! push). A subscriber that drops an in-flight receive there makes `Op::drop` find the driver
//! busy: the op's data goes to the ring's chore queue, and the next turn cancels it (it used to
//! be leaked uncancelled, and took what arrived after its drop).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use safer_ring::{BackendKind, Feature, OpenOptions, SaferRingConfig};
use support::drops::must_arrive;
use support::soundness::poll_once;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::support;

/// Drops the parked victim at the first event it sees; counts the events.
struct DropsTheVictim(AtomicUsize);

impl Subscriber for DropsTheVictim {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {
        if self.0.fetch_add(1, Ordering::Relaxed) == 0 {
            support::soundness::drop_victim();
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn attack(cfg: SaferRingConfig, what: &str) {
    let Some(ring) = support::ring_with(cfg) else {
        return;
    };
    let ring = support::soundness::leak(ring);
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let b: &'static safer_ring::UnixStream = Box::leak(Box::new(b.into()));
    let mut a = a;
    let mut victim = ring.recv(b, vec![0u8; 64]);
    assert!(poll_once(&mut victim).is_pending(), "{what}");
    ring.poll_completions().unwrap();
    assert!(poll_once(&mut victim).is_pending(), "{what}");
    support::soundness::set_victim(victim);

    let path = support::TempPath::new("reentry-fallocate");
    let file = ring
        .block_on(ring.open(&path.0, &OpenOptions::new().write(true).create(true)))
        .unwrap();
    let sub = DropsTheVictim(AtomicUsize::new(0));
    let events = {
        let _guard = tracing::subscriber::set_default(sub);
        // Pushing the fallocate runs its syscall fallback, which logs from inside the push.
        let mut op = ring.fallocate(&file, 0, 0, 4096);
        let _ = poll_once(&mut op);
        let r = ring.block_on(op);
        assert!(r.is_ok(), "{what}: {r:?}");
        tracing::dispatcher::get_default(|d| {
            d.downcast_ref::<DropsTheVictim>()
                .map_or(0, |s| s.0.load(Ordering::Relaxed))
        })
    };
    assert!(
        events > 0,
        "{what}: the fallback logged nothing; the attack did not run"
    );
    assert!(
        !support::soundness::victim_alive(),
        "{what}: the victim was dropped"
    );
    a.write_all(b"after the drop").unwrap();
    let (n, buf) = must_arrive(ring, what, ring.recv(b, vec![0u8; 64]));
    assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
    // Later bytes, with a turn in between (any other task's work makes one): a dropped op
    // that was cancelled is gone; one that was leaked uncancelled is still armed.
    a.write_all(b"later").unwrap();
    ring.poll_completions().unwrap();
    let (n, buf) = must_arrive(ring, what, ring.recv(b, vec![0u8; 64]));
    assert_eq!(&buf[..n.unwrap()], b"later", "{what}");
}

fn fallocate_off(cfg: SaferRingConfig) -> SaferRingConfig {
    let e = safer_ring::ProgressiveEnhancementConfig::default()
        .feature(Feature::Fallocate, Some(false));
    cfg.backend(BackendKind::IoUring).entries(64).enhancement(e)
}

#[test]
/// Was a DEFECT until an op dropped while the driver is borrowed went to the chore queue
/// (cancelled at the next turn) instead of being leaked uncancelled.
fn a_recv_dropped_by_a_tracing_subscriber_inside_the_driver_loses_nothing_after() {
    attack(fallocate_off(SaferRingConfig::default()), "io_uring");
}

#[test]
/// Was a DEFECT until an op dropped while the driver is borrowed went to the chore queue
/// (cancelled at the next turn) instead of being leaked uncancelled.
fn a_recv_dropped_by_a_tracing_subscriber_inside_the_driver_loses_nothing_after_no_defer() {
    attack(
        fallocate_off(SaferRingConfig::for_tokio()),
        "io_uring-no-defer",
    );
}
