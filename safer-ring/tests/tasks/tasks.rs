//! Spawned tasks: `JoinHandle` output, abort, panics caught at the task boundary, detached
//! tasks, and a panicking main future taking its tasks with it (both backends).

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

/// Counts its wakes (a waker that is not the ring's).
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);
impl std::task::Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
fn wakes(c: &Count) -> usize {
    c.0.load(std::sync::atomic::Ordering::SeqCst)
}

// An op names the ring's task that polled it (no waker), or holds a foreign poller's waker: a
// change of poller in either direction must move the wake-up to the new one.
backend_test!(an_op_wakes_the_ring_task_that_polled_it_last, |ring| {
    use std::future::Future;
    use std::task::{Context, Waker};
    let ring = Rc::new(ring);
    let (rx, tx) = ring.pipe().unwrap();
    let foreign = std::sync::Arc::new(Count::default());
    let fw = Waker::from(foreign.clone());
    let r = ring.clone();
    let got = ring.block_on(async {
        let mut read = r.read(&rx, vec![0u8; 8]);
        // Submitted by a foreign poller: the op holds its waker.
        let first = std::pin::Pin::new(&mut read).poll(&mut Context::from_waker(&fw));
        assert!(first.is_pending());
        let w = r.clone();
        r.spawn(async move {
            w.nop().await.unwrap(); // after the main task awaits the read
            w.write(&tx, b"ab".to_vec()).await.0.unwrap();
        });
        // Awaited by the main task from now on: the data must wake it, not the foreign
        // waker (else only the 5 s timer would, and the count below says so).
        r.timeout(Duration::from_secs(5), read).await
    });
    let (n, buf) = got.expect("the read's completion never woke the task awaiting it");
    assert_eq!((n.unwrap(), &buf[..2]), (2, &b"ab"[..]));
    assert_eq!(wakes(&foreign), 0, "the replaced foreign waker was woken");
});

backend_test!(an_op_wakes_the_foreign_poller_that_polled_it_last, |ring| {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let ring = Rc::new(ring);
    let (rx, tx) = ring.pipe().unwrap();
    let foreign = std::sync::Arc::new(Count::default());
    let fw = Waker::from(foreign.clone());
    let r = ring.clone();
    ring.block_on(async {
        let mut read = r.read(&rx, vec![0u8; 8]);
        // Submitted by the main task, then polled by a foreign poller only.
        std::future::poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut read).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        let again = std::pin::Pin::new(&mut read).poll(&mut Context::from_waker(&fw));
        assert!(again.is_pending());
        r.write(&tx, b"cd".to_vec()).await.0.unwrap();
        // The completion wakes the foreign poller (within 5 s of turns).
        for _ in 0..500 {
            if wakes(&foreign) > 0 {
                break;
            }
            r.sleep(Duration::from_millis(10)).await.unwrap();
        }
        assert_eq!(wakes(&foreign), 1, "the foreign poller was never woken");
        let (n, buf) = (&mut read).await;
        assert_eq!((n.unwrap(), &buf[..2]), (2, &b"cd"[..]));
    });
});
