//! `safer_ring::hyper::RingExecutor` through hyper's `Executor` trait: `!Send` futures run as
//! tasks of the ring, detached; a panicking one leaves the ring and the others running.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use hyper::rt::Executor;
use safer_ring::hyper::RingExecutor;

backend_test!(executes_non_send_futures_on_the_ring, |ring| {
    let exec = RingExecutor::new(&ring);
    let done = Rc::new(Cell::new(0)); // !Send: the futures stay on the ring's thread
    for i in 0..10u64 {
        let (r, done) = (safer_ring::RingRef::clone(&ring), done.clone());
        exec.execute(async move {
            r.sleep(Duration::from_millis(i)).await.unwrap();
            done.set(done.get() + 1);
        });
    }
    exec.execute(async { panic!("a spawned future panics") });
    let finished = ring.block_on(ring.timeout(Duration::from_secs(10), async {
        while done.get() < 10 {
            let _ = ring.sleep(Duration::from_millis(2)).await;
        }
    }));
    assert!(finished.is_ok(), "only {} of 10 futures ran", done.get());
});

backend_test!(futures_are_dropped_with_the_ring, |ring| {
    let exec = RingExecutor::new(&ring);
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let flag = Flag(dropped.clone());
    let r = safer_ring::RingRef::clone(&ring);
    exec.execute(async move {
        let _flag = flag;
        let _ = r.sleep(Duration::from_secs(60)).await;
    });
    ring.block_on(async {
        let _ = ring.sleep(Duration::from_millis(5)).await;
    });
    assert!(!dropped.get());
    drop(ring);
    assert!(dropped.get(), "the detached future outlived its ring");
    // Executing on a dropped ring drops the future at once (no panic).
    let flag = Flag(Rc::new(Cell::new(false)));
    let seen = flag.0.clone();
    exec.execute(async move {
        let _flag = flag;
    });
    assert!(seen.get());
});
