//! block_on: sleeps in the kernel when idle, and wakes for wakers fired on other threads.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::support;

/// CPU this thread spends in `f`.
fn cpu_of(f: impl FnOnce()) -> Duration {
    let start = support::thread_cpu();
    f();
    support::thread_cpu() - start
}

/// The most CPU of three runs of `f` after a warm-up: what the same wait costs on this machine
/// (an emulated CPU makes each syscall and wake-up dearer) when it is too short to spin much.
fn baseline(mut f: impl FnMut()) -> Duration {
    f();
    (0..3).map(|_| cpu_of(&mut f)).max().unwrap()
}

/// Below the ~300 ms a wait of 300 ms spinning would burn, above what this machine needs
/// for the same wait of 1 ms (`base`) when nothing spins.
fn idle_bound(base: Duration) -> Duration {
    base * 4 + Duration::from_millis(30)
}

backend_test!(idle_wait_does_not_spin, |ring| {
    let idle = |ms| ring.block_on(async { ring.sleep(Duration::from_millis(ms)).await.unwrap() });
    let base = baseline(|| idle(1));
    let used = cpu_of(|| idle(300));
    let bound = idle_bound(base);
    assert!(
        used < bound,
        "block_on used {used:?} CPU while idle for 300 ms, over {bound:?} (1 ms idle: {base:?})"
    );
});

/// block_on a future that a thread woken `after` later completes: (wall time, CPU used here).
fn woken_from_another_thread(ring: &safer_ring::Ring, after: Duration) -> (Duration, Duration) {
    let flag = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let start_cpu = support::thread_cpu();
    let mut spawned = false;
    ring.block_on(poll_fn(|cx| {
        if flag.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let (w, f) = (cx.waker().clone(), flag.clone());
        if !std::mem::replace(&mut spawned, true) {
            std::thread::spawn(move || {
                std::thread::sleep(after);
                f.store(true, Ordering::SeqCst);
                w.wake();
            });
        }
        Poll::Pending
    }));
    (t.elapsed(), support::thread_cpu() - start_cpu)
}

backend_test!(waker_from_another_thread_ends_kernel_sleep, |ring| {
    let base = baseline(|| {
        woken_from_another_thread(&ring, Duration::from_millis(1));
    });
    let (took, used) = woken_from_another_thread(&ring, Duration::from_millis(300));
    assert!(took >= Duration::from_millis(290));
    // Nothing else ends the wait: a missed wake hangs, which any generous bound catches.
    assert!(took < Duration::from_secs(30), "woken only by a timeout?");
    let bound = idle_bound(base);
    assert!(
        used < bound,
        "spun while waiting: {used:?} CPU, over {bound:?} (woken after 1 ms: {base:?})"
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
