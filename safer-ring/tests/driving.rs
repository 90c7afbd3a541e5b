//! block_on: sleeps in the kernel when idle, and wakes for wakers fired on other threads.

mod common;

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

backend_test!(idle_wait_does_not_spin, |ring| {
    let start = common::thread_cpu();
    ring.block_on(async { ring.sleep(Duration::from_millis(300)).await.unwrap() });
    let used = common::thread_cpu() - start;
    // A spinning loop would burn ~300 ms of CPU here; QEMU's emulated kernels (the matrix)
    // make each wake-up dearer.
    let bound = if std::env::var_os("SAFER_RING_IN_MATRIX").is_some() {
        Duration::from_millis(150)
    } else {
        Duration::from_millis(60)
    };
    assert!(used < bound, "block_on used {used:?} CPU while idle");
});

backend_test!(waker_from_another_thread_ends_kernel_sleep, |ring| {
    let flag = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let start_cpu = common::thread_cpu();
    let mut spawned = false;
    ring.block_on(poll_fn(|cx| {
        if flag.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let (w, f) = (cx.waker().clone(), flag.clone());
        if !std::mem::replace(&mut spawned, true) {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                f.store(true, Ordering::SeqCst);
                w.wake();
            });
        }
        Poll::Pending
    }));
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "woken only by a timeout?"
    );
    assert!(
        common::thread_cpu() - start_cpu < Duration::from_millis(50),
        "spun while waiting"
    );
});

backend_test!(
    tasks_woken_when_block_on_returns_run_in_the_next_one,
    |ring| {
        use std::cell::{Cell, RefCell};
        use std::rc::Rc;
        let parked: Rc<RefCell<Option<std::task::Waker>>> = Rc::default();
        let done = Rc::new(Cell::new(false));
        let (p, d) = (parked.clone(), done.clone());
        ring.spawn(async move {
            let mut first = true;
            poll_fn(|cx| {
                if std::mem::take(&mut first) {
                    *p.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            d.set(true);
        });
        // Main wakes itself, then the task (run queue: main, task), and finishes on its next
        // poll: block_on returns with the woken task not yet run.
        let mut step = 0;
        ring.block_on(poll_fn(|cx| {
            step += 1;
            match step {
                1 => {
                    cx.waker().wake_by_ref();
                    Poll::Pending // let the task park first
                }
                2 => {
                    cx.waker().wake_by_ref();
                    parked.borrow_mut().take().expect("task parked").wake();
                    Poll::Pending
                }
                _ => Poll::Ready(()),
            }
        }));
        assert!(!done.get(), "the task had no chance to run yet");
        ring.block_on(async {
            for _ in 0..20 {
                if done.get() {
                    break;
                }
                ring.nop().await.unwrap();
            }
        });
        assert!(done.get(), "a task woken as block_on returned was lost");
    }
);
