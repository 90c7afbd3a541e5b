//! An idle ring costs nothing: blocked in the kernel, it wakes only when its timer is due —
//! counted in context switches and CPU time of the ring's thread (not in wall time).

use std::time::Duration;

use crate::support;

/// (context switches, CPU time) of the calling thread so far.
fn thread_usage() -> (u64, Duration) {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let switches = status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches")
        })
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum();
    (switches, support::thread_cpu())
}

backend_test!(an_idle_ring_sleeps_in_the_kernel, |ring| {
    // Warm up (detection, first enter), then ten seconds with one timer and, as an idle
    // server has, a read waiting for data that never comes.
    ring.block_on(ring.sleep(Duration::from_millis(1))).unwrap();
    let (rx, _tx) = ring.pipe().unwrap();
    let r = safer_ring::RingRef::clone(&ring);
    let pending = ring.spawn(async move {
        let _ = r.read(&rx, Vec::with_capacity(16)).await;
    });
    let (s0, c0) = thread_usage();
    ring.block_on(ring.sleep(Duration::from_secs(10))).unwrap();
    let (s1, c1) = thread_usage();
    pending.abort();
    let (switches, cpu) = (s1 - s0, c1 - c0);
    eprintln!(
        "{}: 10 s idle: {switches} context switches, {cpu:?} CPU",
        ring.backend()
    );
    // A polling loop would switch thousands of times (or never, spinning: then CPU ~10 s).
    assert!(
        switches <= 10,
        "{switches} wake-ups while idle on {}",
        ring.backend()
    );
    assert!(
        cpu < Duration::from_millis(100),
        "{cpu:?} of CPU while idle on {}",
        ring.backend()
    );
});
