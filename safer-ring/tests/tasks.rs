//! Spawned tasks: `JoinHandle` output, abort, panics caught at the task boundary, detached
//! tasks, and a panicking main future taking its tasks with it (both backends).

mod common;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

backend_test!(join_handle_yields_the_output, |ring| {
    let ring = Rc::new(ring);
    let r = ring.clone();
    let h = ring.spawn(async move {
        r.sleep(Duration::from_millis(5)).await.unwrap();
        42
    });
    assert!(!h.is_finished());
    assert_eq!(ring.block_on(h).unwrap(), 42);
});

backend_test!(a_task_panic_is_reported_and_others_go_on, |ring| {
    let ring = Rc::new(ring);
    let r = ring.clone();
    let bad = ring.spawn(async move {
        r.nop().await.unwrap();
        panic!("boom in a task");
    });
    let r = ring.clone();
    let good = ring.spawn(async move {
        r.sleep(Duration::from_millis(10)).await.unwrap();
        "still here"
    });
    let (bad, good) = ring.block_on(async { (bad.await, good.await) });
    let e = bad.unwrap_err();
    assert!(e.is_panic() && !e.is_cancelled());
    assert_eq!(e.to_string(), "task panicked: boom in a task");
    assert_eq!(good.unwrap(), "still here");
});

backend_test!(abort_drops_the_task_and_cancels_its_ops, |ring| {
    let ring = Rc::new(ring);
    let (r, _w) = ring.pipe().unwrap();
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let (r2, flag) = (ring.clone(), Flag(dropped.clone()));
    let h = ring.spawn(async move {
        let _flag = flag;
        // Never completes: nobody writes to the pipe.
        let (n, _) = r2.read(&r, Vec::with_capacity(8)).await;
        n.unwrap()
    });
    ring.block_on(ring.nop()).unwrap(); // the task runs and parks in its read
    assert_eq!(ring.in_flight(), 1);
    h.abort();
    // An idle task is dropped by `abort` itself: its read's cancel is on its way now.
    assert!(dropped.get(), "the task's future was dropped by abort");
    assert!(h.is_finished());
    let r = ring.block_on(h);
    assert!(r.unwrap_err().is_cancelled());
    // Bounded by a hang's time, not by turns a slow machine may need more of.
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        ring.poll_completions().unwrap();
        if ring.in_flight() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ring.in_flight(), 0, "its read was cancelled");
});

backend_test!(a_detached_task_keeps_running, |ring| {
    let ring = Rc::new(ring);
    let done = Rc::new(Cell::new(false));
    let (r, d) = (ring.clone(), done.clone());
    drop(ring.spawn(async move {
        r.sleep(Duration::from_millis(5)).await.unwrap();
        d.set(true);
    }));
    ring.block_on(async {
        while !done.get() {
            ring.sleep(Duration::from_millis(1)).await.unwrap();
        }
    });
});

backend_test!(a_panicking_main_future_drops_its_tasks, |ring| {
    let ring = Rc::new(ring);
    let (r, _w) = ring.pipe().unwrap();
    let r2 = ring.clone();
    let h = ring.spawn(async move {
        let _ = r2.read(&r, Vec::with_capacity(8)).await;
    });
    let caught = catch_unwind(AssertUnwindSafe(|| {
        ring.block_on(async {
            ring.nop().await.unwrap(); // the task parks in its read
            panic!("main panics");
        })
    }));
    assert!(caught.is_err());
    assert!(h.is_finished(), "tasks go with a panicking main future");
    // The ring stays usable.
    ring.block_on(ring.nop()).unwrap();
    assert!(ring.block_on(h).unwrap_err().is_cancelled());
});
