//! Third adversarial review (findings failed on commit 21986f2, fixed since): time helpers with extreme durations and instants.

use std::time::{Duration, Instant};

use safer_ring::{BackendKind, MissedTicks};
use support::soundness::*;

use crate::support;

fn kinds() -> [BackendKind; 2] {
    [BackendKind::IoUring, BackendKind::Epoll]
}

/// FINDING: `interval(Duration::MAX)` is accepted, its first tick fires, and the first `tick`
/// then panics with "overflow when adding duration to instant" (time.rs: `scheduled +
/// self.period`), an unclear panic from safe code; `sleep(Duration::MAX)` is clamped instead.
#[test]
fn interval_with_huge_period_does_not_panic() {
    for kind in kinds() {
        for missed in [MissedTicks::Burst, MissedTicks::Delay, MissedTicks::Skip] {
            let r = within(Duration::from_secs(30), move || {
                let Some(ring) = support::ring(kind) else {
                    return;
                };
                ring.block_on(async {
                    let mut iv = ring.interval(Duration::MAX).unwrap();
                    iv.set_missed_ticks(missed);
                    let first = iv.tick().await.unwrap(); // at once
                    // The second tick is "never": bound it.
                    let second = ring.timeout(Duration::from_millis(20), iv.tick()).await;
                    assert!(second.is_err(), "{first:?}");
                });
            });
            assert_eq!(r, Ok(()), "{kind:?} {missed:?}");
        }
    }
}

/// Same with a period that merely does not fit in an `Instant` (2^63 s).
#[test]
fn interval_with_period_beyond_instant_range_does_not_panic() {
    let r = within(Duration::from_secs(30), move || {
        let Some(ring) =
            support::ring(BackendKind::IoUring).or_else(|| support::ring(BackendKind::Epoll))
        else {
            return;
        };
        ring.block_on(async {
            let mut iv = ring.interval(Duration::from_secs(1 << 63)).unwrap();
            iv.tick().await.unwrap();
        });
    });
    assert_eq!(r, Ok(()));
}

/// HELD UP: sleep_until far in the future / far in the past, timeout(MAX), sleep(MAX).
#[test]
fn extreme_deadlines_are_clamped() {
    for kind in kinds() {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring(kind) else {
                return;
            };
            ring.block_on(async {
                let far = Instant::now()
                    .checked_add(Duration::from_secs(1 << 40))
                    .unwrap();
                let e = ring
                    .timeout(Duration::from_millis(10), ring.sleep_until(far))
                    .await;
                assert!(e.is_err());
                // In the past: at once.
                let past = Instant::now()
                    .checked_sub(Duration::from_secs(3600))
                    .unwrap_or_else(Instant::now);
                ring.sleep_until(past).await.unwrap();
                let v = ring.timeout(Duration::MAX, async { 7 }).await.unwrap();
                assert_eq!(v, 7);
                let e = ring
                    .timeout(Duration::from_millis(10), ring.sleep(Duration::MAX))
                    .await;
                assert!(e.is_err());
                // Zero everything.
                ring.sleep(Duration::ZERO).await.unwrap();
                let z = ring
                    .timeout(Duration::ZERO, std::future::pending::<()>())
                    .await;
                assert!(z.is_err());
                assert!(ring.interval(Duration::ZERO).is_err());
                let mut iv = ring.interval(Duration::from_nanos(1)).unwrap();
                iv.set_missed_ticks(MissedTicks::Skip);
                for _ in 0..50 {
                    iv.tick().await.unwrap();
                }
            });
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
}
