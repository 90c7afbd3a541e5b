//! Time: `timeout` around any future, `sleep_until`, `interval` and its missed-tick behaviours
//! (both backends).

use std::time::{Duration, Instant};

use safer_ring::MissedTicks;

const MS: Duration = Duration::from_millis(1);

backend_test!(timeout_returns_the_output_in_time, |ring| {
    let v = ring.block_on(ring.timeout(Duration::from_secs(5), async {
        ring.sleep(5 * MS).await.unwrap();
        7
    }));
    assert_eq!(v, Ok(7));
});

backend_test!(timeout_elapses_and_cancels_the_future, |ring| {
    let (r, _w) = ring.pipe().unwrap();
    let t = Instant::now();
    let res = ring.block_on(ring.timeout(20 * MS, async {
        // Never completes: nobody writes.
        let (n, _) = ring.read(&r, Vec::with_capacity(8)).await;
        n
    }));
    let e = res.unwrap_err();
    assert_eq!(e.to_string(), "deadline has elapsed");
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::TimedOut);
    let took = t.elapsed();
    // Upper bound: the deadline ended it, not the read (which never completes); how late is
    // the machine's, so only a hang's worth.
    assert!(
        took >= 19 * MS && took < Duration::from_secs(20),
        "{took:?}"
    );
    // The read was dropped: its cancel completes and nothing stays in flight.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        ring.poll_completions().unwrap();
        if ring.in_flight() == 0 {
            break;
        }
        std::thread::sleep(MS);
    }
    assert_eq!(ring.in_flight(), 0);
});

backend_test!(
    sleep_until_waits_for_the_deadline_and_not_for_the_past,
    |ring| {
        let deadline = Instant::now() + 30 * MS;
        ring.block_on(ring.sleep_until(deadline)).unwrap();
        let now = Instant::now();
        assert!(now >= deadline, "woke {:?} early", deadline - now);
        // An hour ago (a second on a just-booted machine): waiting for the distance instead
        // of firing at once is then unmistakable against a bound that only a hang exceeds.
        let t = Instant::now();
        let past = t
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or(t - Duration::from_secs(1));
        ring.block_on(ring.sleep_until(past)).unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "a past deadline fires at once, took {:?}",
            t.elapsed()
        );
    }
);

backend_test!(interval_ticks_on_schedule_and_rejects_zero, |ring| {
    let e = ring.interval(Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    // Instants around the interval's creation: a stall between two lines cannot fail a check.
    let before = Instant::now();
    let mut iv = ring.interval(10 * MS).unwrap();
    let created = Instant::now();
    let ticks: Vec<Instant> = ring.block_on(async {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(iv.tick().await.unwrap());
        }
        v
    });
    assert!(
        before <= ticks[0] && ticks[0] <= created,
        "the first tick is immediate (scheduled at creation)"
    );
    for w in ticks.windows(2) {
        assert_eq!(w[1] - w[0], 10 * MS, "scheduled one period apart");
    }
    assert!(before.elapsed() >= 30 * MS);
});

/// Misses ticks by blocking the thread for 35 ms (3.5 periods) after the first tick, then
/// returns the next three ticks' scheduled instants relative to the first.
fn after_missing(ring: &safer_ring::Ring, missed: MissedTicks) -> Vec<Duration> {
    let mut iv = ring.interval(10 * MS).unwrap();
    iv.set_missed_ticks(missed);
    ring.block_on(async {
        let first = iv.tick().await.unwrap();
        std::thread::sleep(35 * MS);
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(iv.tick().await.unwrap() - first);
        }
        v
    })
}

// The instants are exact where the behaviour fixes them; where they depend on how late a tick
// fired (slow machines, emulated kernels), the rule is checked instead of one value.
backend_test!(interval_missed_ticks_burst_delay_skip, |ring| {
    // Burst: the missed ticks (10, 20, 30) fire at once, on the original schedule.
    assert_eq!(
        after_missing(&ring, MissedTicks::Burst),
        vec![10 * MS, 20 * MS, 30 * MS]
    );
    // Delay: the late tick fires, then the schedule restarts a period after it (10 ms when the
    // first tick was on time; a stalled first tick delays it too, by the same rule), and after
    // the 35 ms block the next one comes a period after that late tick.
    let d = after_missing(&ring, MissedTicks::Delay);
    assert!(d[0] >= 10 * MS, "{d:?}");
    assert!(d[1] >= d[0] + 35 * MS && d[2] >= d[1] + 10 * MS, "{d:?}");
    // Skip: the late tick fires, then the next multiples of the period after "now" (40, 50
    // when it fired before 40 ms): never a burst, always on the original grid.
    let s = after_missing(&ring, MissedTicks::Skip);
    let on_grid = |d: Duration| d.as_nanos().is_multiple_of((10 * MS).as_nanos());
    assert!(s[0] >= 10 * MS && on_grid(s[0]), "{s:?}");
    assert!(s[1] >= 40 * MS && on_grid(s[1]) && on_grid(s[2]), "{s:?}");
    assert!(s[2] > s[1], "{s:?}");
});
