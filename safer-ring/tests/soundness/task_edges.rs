//! Third adversarial review (findings failed on commit 21986f2, fixed since): spawned tasks, JoinHandle, abort, panics at the task boundary, teardown.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use safer_ring::{BackendKind, JoinHandle, Ring};
use support::soundness::*;

use crate::support;

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("attack: task destructor panics");
        }
    }
}

/// HELD UP: JoinHandle is !Send and !Sync (it holds an Rc): this compiles only if so.
#[test]
fn join_handle_is_not_send() {
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    let _ = <JoinHandle<()> as AmbiguousIfSend<_>>::some_item;
    trait AmbiguousIfSync<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
    let _ = <JoinHandle<()> as AmbiguousIfSync<_>>::some_item;
}

/// FINDING: a task's panic is caught at the task boundary only while it is polled. Aborting a
/// task whose future's destructor panics lets that panic escape `block_on` (the drop happens
/// in `Executor::poll_task`, outside the task's `catch_unwind`), and `RunGuard` then drops
/// every other task of the ring. The aborted task's handle never sees `Panicked`; an unrelated
/// task is killed.
#[test]
fn aborting_a_task_with_a_panicking_destructor_kills_the_others() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring(kind) else {
                return Ok(());
            };
            let bystander_done = Rc::new(Cell::new(false));
            let (r1, r2, done) = (ring.clone(), ring.clone(), bystander_done.clone());
            let victim = ring.spawn(async move {
                let _p = PanicOnDrop;
                std::future::pending::<()>().await;
                drop(r1);
            });
            let bystander = ring.spawn(async move {
                r2.sleep(Duration::from_millis(50)).await.unwrap();
                done.set(true);
            });
            let out = caught(|| {
                ring.block_on(async {
                    ring.nop().await.unwrap(); // both tasks run once
                    victim.abort();
                    ring.sleep(Duration::from_millis(100)).await.unwrap();
                })
            });
            match out {
                Err(p) => Err(format!(
                    "block_on unwound with a task destructor's panic ({p}); bystander finished: {}, \
                     bystander handle: {:?}",
                    bystander_done.get(),
                    ring.block_on(bystander).err()
                )),
                Ok(()) => Ok(()),
            }
        });
        assert_eq!(r, Ok(Ok(())), "{kind:?}");
    }
}

/// Same class: a detached task's output whose destructor panics (dropped in `Shared::finish`,
/// outside the catch_unwind) escapes block_on.
#[test]
fn detached_task_output_with_panicking_drop_escapes_block_on() {
    let r = within(Duration::from_secs(30), move || {
        let Some(ring) =
            support::ring(BackendKind::IoUring).or_else(|| support::ring(BackendKind::Epoll))
        else {
            return Ok(());
        };
        drop(ring.spawn(async { PanicOnDrop }));
        caught(|| ring.block_on(async { ring.nop().await.unwrap() }))
    });
    assert_eq!(r, Ok(Ok(())));
}

/// HELD UP: abort from inside the task itself, from another task, after completion, twice;
/// handles report Cancelled / the output correctly and nothing hangs.
#[test]
fn abort_variants() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring(kind) else {
                return;
            };
            // From inside itself.
            let slot: Rc<RefCell<Option<JoinHandle<u32>>>> = Rc::new(RefCell::new(None));
            let (s2, r1) = (slot.clone(), ring.clone());
            let h = ring.spawn(async move {
                // Wait until the handle is parked where we can reach it.
                r1.nop().await.unwrap();
                if let Some(h) = s2.borrow().as_ref() {
                    h.abort();
                    h.abort();
                }
                r1.nop().await.unwrap();
                1
            });
            *slot.borrow_mut() = Some(h);
            // Until the task has aborted itself (bounded: emulated kernels are slow).
            for _ in 0..2000 {
                ring.block_on(ring.sleep(Duration::from_millis(1))).unwrap();
                if slot.borrow().as_ref().is_some_and(|h| h.is_finished()) {
                    break;
                }
            }
            let h = slot.borrow_mut().take().unwrap();
            assert!(h.is_finished());
            assert!(ring.block_on(h).unwrap_err().is_cancelled());
            // From another task.
            let r2 = ring.clone();
            let target = ring.spawn(async move { r2.sleep(Duration::from_secs(60)).await });
            let target = Rc::new(target);
            let t2 = target.clone();
            let killer = ring.spawn(async move { t2.abort() });
            ring.block_on(killer).unwrap();
            let target = Rc::try_unwrap(target).ok().unwrap();
            assert!(ring.block_on(target).unwrap_err().is_cancelled());
            ring.block_on(ring.sleep(Duration::from_millis(5))).unwrap();
            assert_eq!(
                ring.in_flight(),
                0,
                "the aborted task's sleep was cancelled"
            );
            // After completion, twice.
            let h = ring.spawn(async { 7 });
            ring.block_on(ring.nop()).unwrap();
            h.abort();
            h.abort();
            assert_eq!(ring.block_on(h).unwrap(), 7);
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
}

/// HELD UP: a handle awaited from another ring's task (same thread) is woken across rings;
/// tasks spawning tasks from destructors during teardown are dropped, not leaked or run.
#[test]
fn cross_ring_join_and_spawn_during_teardown() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(30), move || {
            let Some(a) = support::ring(kind) else {
                return;
            };
            let b = support::ring(kind).unwrap();
            let (ra, a_done) = (a.clone(), Rc::new(Cell::new(false)));
            let done = a_done.clone();
            let h = a.spawn(async move {
                ra.sleep(Duration::from_millis(20)).await.unwrap();
                done.set(true);
                11
            });
            let rb = b.clone();
            let hb = b.spawn(async move { h.await.unwrap() + 1 });
            // Drive a on this thread while b waits, until a's task finished (a fixed sleep can
            // end first on a slow machine, and b's block_on does not drive a) and woke b's.
            a.block_on(async {
                while !a_done.get() {
                    a.sleep(Duration::from_millis(1)).await.unwrap();
                }
            });
            assert_eq!(b.block_on(hb).unwrap(), 12);
            drop(rb);

            // Teardown: a task whose destructor spawns a task whose destructor spawns again.
            struct SpawnOnDrop(safer_ring::RingRef, u32, Rc<Cell<u32>>);
            impl Drop for SpawnOnDrop {
                fn drop(&mut self) {
                    self.2.set(self.2.get() + 1);
                    if self.1 > 0 {
                        let next = SpawnOnDrop(self.0.clone(), self.1 - 1, self.2.clone());
                        let ran = self.2.clone();
                        drop(self.0.spawn(async move {
                            let _n = next;
                            ran.set(ran.get() + 100); // must never run
                        }));
                    }
                }
            }
            let count = Rc::new(Cell::new(0));
            let g = SpawnOnDrop(a.clone(), 3, count.clone());
            let ra = a.clone();
            drop(a.spawn(async move {
                let _g = g;
                ra.sleep(Duration::from_secs(60)).await.unwrap();
            }));
            a.block_on(a.nop()).unwrap();
            let keep: safer_ring::RingRef = a.clone();
            drop::<Ring>(a);
            assert_eq!(count.get(), 4, "every destructor ran, no spawned task ran");
            assert!(keep.is_closed());
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
}

/// HELD UP: the main future panics: tasks are dropped (their ops cancelled), the ring stays
/// usable and the handles say Cancelled.
#[test]
fn main_panic_drops_tasks_ring_stays_usable() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring(kind) else {
                return;
            };
            let r1 = ring.clone();
            let h = ring.spawn(async move { r1.sleep(Duration::from_secs(60)).await });
            let p = caught(|| {
                ring.block_on(async {
                    ring.nop().await.unwrap();
                    panic!("main panics")
                })
            });
            assert!(p.is_err());
            assert!(h.is_finished());
            assert!(ring.block_on(h).unwrap_err().is_cancelled());
            ring.block_on(ring.sleep(Duration::from_millis(5))).unwrap();
            assert_eq!(ring.in_flight(), 0);
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
}
