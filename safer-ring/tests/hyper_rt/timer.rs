//! `safer_ring::hyper::RingTimer` without hyper's protocol: fires on time, reset earlier and
//! later (also after firing), dropped sleeps leave the queue, many sleeps fire in deadline
//! order, a sleep polled on another thread is woken from the ring, and hyper's trait methods.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::{Duration, Instant};

use safer_ring::hyper::{RingSleep, RingTimer};

/// A timer must not fire early. How late it fires is the machine's (a loaded host or an
/// emulated guest is late by seconds), so the upper bounds only catch a timer that does not
/// fire by itself: far deadlines it must not wait for are an hour away, and this is the bound.
const LATE: Duration = Duration::from_secs(20);
/// A deadline that a correct timer never waits for (the bound fails long before it).
const FAR: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn timer_and_sleep_are_send_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<RingTimer>();
    check::<RingSleep>();
}

backend_test!(fires_on_time, |ring| {
    let timer = RingTimer::new(&ring);
    for d in [0, 1, 30, 120] {
        let start = Instant::now();
        let s = timer.sleep(ms(d));
        let deadline = s.deadline();
        ring.block_on(s);
        let now = Instant::now();
        assert!(now >= deadline, "{d} ms sleep fired early");
        assert!(
            now - start < ms(d) + LATE,
            "{d} ms sleep took {:?}",
            now - start
        );
    }
    assert_eq!(timer.pending(), 0);
});

backend_test!(reset_earlier_and_later, |ring| {
    let timer = RingTimer::new(&ring);
    // Earlier: an hour's sleep moved to 40 ms.
    let start = Instant::now();
    let mut s = Box::pin(timer.sleep(FAR));
    let r = ring.block_on(ring.timeout(LATE, async {
        let _ = ring.sleep(ms(5)).await; // the task is armed for an hour by now
        s.as_mut().reset(start + ms(40));
        s.as_mut().await;
    }));
    let took = start.elapsed();
    assert!(r.is_ok(), "reset earlier: still waiting after {took:?}");
    assert!(
        took >= ms(40) && took < ms(40) + LATE,
        "reset earlier: {took:?}"
    );
    // After it fired: it waits again.
    let again = Instant::now();
    s.as_mut().reset(again + ms(30));
    ring.block_on(s.as_mut());
    assert!(
        again.elapsed() >= ms(30),
        "a fired sleep reset must wait again"
    );
    // Later: a 20 ms sleep moved to 200 ms, also while the task waits for the 20 ms.
    let start = Instant::now();
    let mut s = Box::pin(timer.sleep(ms(20)));
    let r = ring.block_on(ring.timeout(LATE, async {
        let _ = ring.sleep(ms(5)).await;
        s.as_mut().reset(start + ms(200));
        s.as_mut().await;
    }));
    assert!(r.is_ok(), "reset later: never fired");
    let took = start.elapsed();
    assert!(
        took >= ms(200) && took < ms(200) + LATE,
        "reset later: {took:?}"
    );
    assert_eq!(timer.pending(), 0);
});

backend_test!(dropped_sleeps_leave_the_queue, |ring| {
    let timer = RingTimer::new(&ring);
    let sleeps: Vec<RingSleep> = (1..=10).map(|i| timer.sleep(ms(10 * i))).collect();
    assert_eq!(timer.pending(), 10);
    let mut sleeps = sleeps.into_iter();
    let first = sleeps.next().unwrap();
    drop(sleeps); // the other nine, before any fired
    assert_eq!(timer.pending(), 1);
    ring.block_on(first);
    assert_eq!(timer.pending(), 0);
    // A sleep dropped while the task is armed for it: the next one still fires on time.
    let dropped = timer.sleep(ms(20));
    let kept = timer.sleep(ms(60));
    let deadline = kept.deadline();
    ring.block_on(async {
        let _ = ring.sleep(ms(5)).await;
        drop(dropped);
        kept.await;
    });
    assert!(Instant::now() >= deadline);
    assert_eq!(timer.pending(), 0);
});

backend_test!(many_sleeps_fire_in_deadline_order, |ring| {
    // The timer's order shows among sleeps whose task was waiting before the deadline; one
    // already due when its task first ran (a stalled machine) completes at that first poll.
    // So the first deadline is `lead` away, doubled until most tasks were waiting in time.
    let mut lead = ms(50);
    let (fired, waited) = loop {
        let fired = sleeps_in_deadline_order(&ring, lead);
        let waited: Vec<_> = fired.iter().filter(|f| f.2 < f.1).copied().collect();
        if waited.len() >= 30 {
            break (fired, waited);
        }
        assert!(
            lead < Duration::from_secs(5),
            "only {} of 40 tasks ran before their deadline {lead:?} away",
            waited.len()
        );
        lead *= 2;
    };
    for w in waited.windows(2) {
        assert!(
            w[0].1 <= w[1].1,
            "fired out of deadline order: {:?}",
            &fired[..]
        );
    }
    for (i, deadline, _, at) in fired.iter() {
        assert!(at >= deadline, "sleep {i} fired early");
        assert!(
            *at < *deadline + LATE,
            "sleep {i} fired {:?} late",
            *at - *deadline
        );
    }
});

/// 40 sleeps registered out of order (a fixed permutation), 3 ms apart from `lead` on, two
/// sharing a deadline, each awaited by a task: (index, deadline, task waiting from, fired at)
/// in the order they fired.
fn sleeps_in_deadline_order(
    ring: &safer_ring::Ring,
    lead: Duration,
) -> Vec<(u64, Instant, Instant, Instant)> {
    let timer = RingTimer::new(ring);
    let base = Instant::now() + lead;
    let order: Vec<u64> = (0..40).map(|i| (i * 17) % 40).collect();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let mut tasks = Vec::new();
    for &i in &order {
        let deadline = base + ms(3 * (i / 2 * 2)); // pairs share a deadline
        let s = timer.sleep_until(deadline);
        let fired = fired.clone();
        tasks.push(ring.spawn(async move {
            let waiting_from = Instant::now();
            s.await;
            fired
                .borrow_mut()
                .push((i, deadline, waiting_from, Instant::now()));
        }));
    }
    ring.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(timer.pending(), 0);
    let fired = fired.borrow().clone();
    assert_eq!(fired.len(), 40);
    fired
}

/// Wakes a parked thread.
struct Unpark(std::thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

backend_test!(sleep_polled_on_another_thread, |ring| {
    let timer = RingTimer::new(&ring);
    let t = timer.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let mut s = Box::pin(t.sleep(ms(50)));
        let deadline = s.deadline();
        tx.send(()).unwrap();
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        while s.as_mut().poll(&mut cx).is_pending() {
            std::thread::park_timeout(Duration::from_secs(5));
            assert!(
                Instant::now() < deadline + Duration::from_secs(5),
                "never woken"
            );
        }
        Instant::now() >= deadline
    });
    rx.recv().unwrap();
    // Drive the ring until the other thread is done (its sleep is fired by this ring's task).
    ring.block_on(async {
        while !other.is_finished() {
            let _ = ring.sleep(ms(5)).await;
        }
    });
    assert!(other.join().unwrap(), "fired before its deadline");
});

backend_test!(dropping_the_ring_leaves_sleeps_pending, |ring| {
    let timer = RingTimer::new(&ring);
    let mut s = Box::pin(timer.sleep(ms(10)));
    drop(ring);
    std::thread::sleep(ms(40));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(
        s.as_mut().poll(&mut cx).is_pending(),
        "documented: never fires"
    );
    assert_eq!(timer.pending(), 1);
});

backend_test!(huge_durations_do_not_panic, |ring| {
    let timer = RingTimer::new(&ring);
    let s = timer.sleep(Duration::MAX);
    assert!(s.deadline() > Instant::now() + Duration::from_secs(86400 * 365 * 100));
    // A near one still fires: the far one does not hold it up.
    ring.block_on(timer.sleep(ms(5)));
    assert_eq!(timer.pending(), 1);
});

backend_test!(through_hyper_traits, |ring| {
    use hyper::rt::{Sleep, Timer};
    let timer = RingTimer::new(&ring);
    // `reset` on our own sleep keeps it (same allocation), moved to the new deadline.
    let mut s: Pin<Box<dyn Sleep>> = Timer::sleep(&timer, FAR);
    let before = &*s as *const dyn Sleep as *const u8;
    let start = Instant::now();
    Timer::reset(&timer, &mut s, start + ms(30));
    assert_eq!(before, &*s as *const dyn Sleep as *const u8);
    assert!(s.as_mut().downcast_mut_pin::<RingSleep>().is_some());
    let fired = ring.block_on(ring.timeout(LATE, s.as_mut()));
    let took = start.elapsed();
    assert!(fired.is_ok() && took >= ms(30), "{took:?}");
    // A sleep from another timer is replaced by one of ours.
    struct Foreign;
    impl Future for Foreign {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }
    impl Sleep for Foreign {}
    let mut f: Pin<Box<dyn Sleep>> = Box::pin(Foreign);
    Timer::reset(&timer, &mut f, Instant::now() + ms(10));
    assert!(f.as_mut().downcast_mut_pin::<RingSleep>().is_some());
    ring.block_on(f);
    assert_eq!(timer.pending(), 0);
});

backend_test!(servicing_task_ends_with_the_last_handle, |ring| {
    let timer = RingTimer::new(&ring);
    let s = timer.sleep(ms(10));
    drop(timer);
    ring.block_on(s); // the sleep's handle kept the task
    let timer = RingTimer::new(&ring);
    let far = timer.sleep(Duration::from_secs(60));
    ring.block_on(async {
        let _ = ring.sleep(ms(5)).await;
    });
    assert_eq!(
        ring.in_flight(),
        1,
        "the task sleeps on the ring for the 60 s deadline"
    );
    drop(far);
    drop(timer);
    // The last handle is gone: the task ends, its ring sleep is cancelled.
    ring.block_on(async {
        let _ = ring.sleep(ms(20)).await;
    });
    assert_eq!(ring.in_flight(), 0, "the servicing task outlived its timer");
});
