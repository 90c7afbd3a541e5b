//! Third adversarial review (findings failed on commit 21986f2, fixed since): the cooperative budget (thread-local, 128 per task poll).

use std::time::{Duration, Instant};

use safer_ring::BackendKind;
use support::soundness::*;

use crate::support;

/// FINDING (livelock): the budget is a thread-local that stays at 0 for the rest of the task's
/// poll, and every op polled there, by anyone and with any waker, answers Pending (after
/// waking *that* waker). Code that finishes an op synchronously inside a task (a `Drop` that
/// closes a resource, a helper polling with `poll_completions` as the tests in this crate do)
/// spins forever once the task completed 128 ops in that poll; the same code terminates
/// outside the executor, or earlier in the poll. There is no opt-out (tokio has
/// `unconstrained`).
#[test]
fn synchronous_completion_inside_an_exhausted_task_spins_forever() {
    let mut all = Vec::new();
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(60), move || {
            let Some(ring) = support::ring(kind) else {
                return Ok(());
            };
            ring.block_on(async {
                // Spend the budget: 128 ops that complete without waiting.
                let mut ops: Vec<_> = (0..129).map(|_| ring.nop()).collect();
                for op in &mut ops {
                    assert!(poll_once(op).is_pending());
                }
                ring.poll_completions().unwrap();
                let mut last = ops.pop().unwrap();
                for op in ops {
                    // Completed; awaiting spends one unit each.
                    op.await.unwrap();
                }
                // A synchronous "finish this op now" helper, as a Drop impl would do.
                let t = Instant::now();
                loop {
                    if poll_once(&mut last).is_ready() {
                        return Ok(());
                    }
                    if t.elapsed() > Duration::from_secs(20) {
                        return Err("an already-completed op stayed Pending for 20 s");
                    }
                    ring.poll_completions().unwrap();
                }
            })
        });
        all.push(format!("{kind:?}: {r:?}"));
    }
    assert!(all.iter().all(|x| x.ends_with("Ok(Ok(()))")), "{all:?}");
}

/// HELD UP: a task that always has a completion ready yields to the others (the budget's
/// purpose), and an op that returned Pending because of the budget is polled again (no lost
/// wakeup) with nothing else to run and nothing in flight.
#[test]
fn budget_yield_is_not_a_lost_wakeup() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(60), move || {
            let Some(ring) = support::ring(kind) else {
                return;
            };
            ring.block_on(async {
                let mut ops: Vec<_> = (0..300).map(|_| ring.nop()).collect();
                for op in &mut ops {
                    let _ = poll_once(op);
                }
                ring.poll_completions().unwrap();
                for op in ops {
                    op.await.unwrap();
                }
            });
            // Same from a task with the main future waiting on its handle.
            let r2 = ring.clone();
            let h = ring.spawn(async move {
                let mut ops: Vec<_> = (0..300).map(|_| r2.nop()).collect();
                for op in &mut ops {
                    let _ = poll_once(op);
                }
                r2.poll_completions().unwrap();
                for op in ops {
                    op.await.unwrap();
                }
                5
            });
            assert_eq!(ring.block_on(h).unwrap(), 5);
        });
        assert_eq!(r, Ok(()), "{kind:?}");
    }
}
