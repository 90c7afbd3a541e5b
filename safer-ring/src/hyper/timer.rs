//! hyper's [`Timer`](::hyper::rt::Timer) on a ring, without `unsafe impl Send`.
//!
//! hyper wants `Timer: Send + Sync` and `Sleep: Send + Sync`, but a ring's timers are `!Send`
//! (they borrow a `RingRef`). So the timer and its sleeps are plain shared state (a mutex, an
//! atomic flag and wakers, all `Send + Sync` by construction), and one task spawned on the
//! ring does the `!Send` part: it sleeps on the ring until the earliest deadline, marks every
//! due sleep fired and wakes it. A sleep registered earlier than the one the task waits for
//! wakes the task (the executor takes wakes from any thread), which re-arms.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::RingRef;

/// hyper's timer, serviced by a task on one ring (`http1::Builder::timer`,
/// `header_read_timeout`, keep-alive timeouts).
///
/// Cheap to clone; `Send + Sync` (what hyper asks for) without any `unsafe`: only the ring's
/// task touches the ring. Sleeps fire while the ring is driven (`block_on`); after the owning
/// [`Ring`](crate::Ring) is dropped, pending sleeps never fire (the connections that wait on
/// them are dropped with the ring's tasks). The servicing task ends when this timer, its
/// clones and all its sleeps are dropped.
///
/// ```
/// use std::time::{Duration, Instant};
/// use safer_ring::{Ring, hyper::RingTimer};
/// let ring = Ring::new(8)?;
/// let timer = RingTimer::new(&ring);
/// let start = Instant::now();
/// ring.block_on(timer.sleep(Duration::from_millis(20)));
/// assert!(start.elapsed() >= Duration::from_millis(20));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RingTimer {
    handle: Arc<Handle>,
}

/// A sleep of a [`RingTimer`]: completes once the ring's task has seen its deadline pass.
/// [`reset`](RingSleep::reset) moves the deadline, also after it fired.
pub struct RingSleep {
    handle: Arc<Handle>,
    slot: Arc<Slot>,
    /// Where this sleep sits in the queue; `None` once fired.
    key: Option<Key>,
    deadline: Instant,
}

/// Deadline, then registration order (unique): equal deadlines fire in registration order.
type Key = (Instant, u64);

/// Keeps the servicing task alive; the last one dropped (timers and sleeps) lets it end.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: BTreeMap<Key, Arc<Slot>>,
    next_id: u64,
    /// The deadline the task sleeps until; `None`: it waits for a registration.
    armed: Option<Instant>,
    /// The task must look at the queue again (an earlier deadline, or no handles left).
    kick: bool,
    servicer: Option<Waker>,
    /// Every timer and sleep was dropped.
    closed: bool,
}

#[derive(Default)]
struct Slot {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// Far enough to mean "never" without overflowing `Instant` (as the ring's own timers clamp).
fn deadline_in(dur: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(dur)
        .or_else(|| now.checked_add(crate::backend::MAX_TIMEOUT))
        .unwrap_or(now)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code of ours panics while holding these locks; a poisoned one holds consistent state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RingTimer {
    /// A timer serviced by a task spawned on `ring` (a [`Ring`](crate::Ring) derefs to it).
    pub fn new(ring: &RingRef) -> RingTimer {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
        });
        // Detached: it ends when every handle is gone, or with the ring.
        drop(ring.spawn(service(ring.clone(), shared.clone())));
        RingTimer {
            handle: Arc::new(Handle { shared }),
        }
    }

    /// A sleep that completes after `dur` (durations past about 136 years mean that long).
    pub fn sleep(&self, dur: Duration) -> RingSleep {
        self.sleep_until(deadline_in(dur))
    }

    /// A sleep that completes at `deadline` (on the ring's next turn if it has passed).
    pub fn sleep_until(&self, deadline: Instant) -> RingSleep {
        let slot = Arc::new(Slot::default());
        let key = self.handle.shared.insert(deadline, &slot);
        RingSleep {
            handle: self.handle.clone(),
            slot,
            key: Some(key),
            deadline,
        }
    }

    /// Sleeps registered and not yet fired (dropped ones are removed at once).
    pub fn pending(&self) -> usize {
        lock(&self.handle.shared.state).queue.len()
    }
}

impl fmt::Debug for RingTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingTimer")
            .field("pending", &self.pending())
            .finish()
    }
}

impl RingSleep {
    /// The deadline this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline, earlier or later; a sleep that already fired waits again.
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        let shared = &this.handle.shared;
        if let Some(old) = this.key.take() {
            lock(&shared.state).queue.remove(&old);
        }
        // Not in the queue now, so the task cannot set the flag between these two lines.
        this.slot.fired.store(false, Ordering::Release);
        this.key = Some(shared.insert(deadline, &this.slot));
        this.deadline = deadline;
    }
}

impl Future for RingSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.slot.fired.load(Ordering::Acquire) {
            this.key = None;
            return Poll::Ready(());
        }
        // Cloned, and the old one dropped, outside the lock: a waker's clone and drop are
        // foreign code, which must not run while the task might wait for this lock.
        let new = cx.waker().clone();
        let old = {
            let mut waker = lock(&this.slot.waker);
            // Checked again under the lock the task takes the waker with: no wake is lost.
            if this.slot.fired.load(Ordering::Acquire) {
                None
            } else {
                Some(waker.replace(new))
            }
        };
        match old {
            None => {
                this.key = None;
                Poll::Ready(())
            }
            Some(_) => Poll::Pending,
        }
    }
}

impl Drop for RingSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.handle.shared.state).queue.remove(&key);
        }
    }
}

impl fmt::Debug for RingSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingSleep")
            .field("deadline", &self.deadline)
            .field("fired", &self.slot.fired.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let waker = {
            let mut st = lock(&self.shared.state);
            st.closed = true;
            st.kick = true;
            st.servicer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Shared {
    fn insert(&self, deadline: Instant, slot: &Arc<Slot>) -> Key {
        let (key, waker) = {
            let mut st = lock(&self.state);
            let key = (deadline, st.next_id);
            st.next_id += 1;
            st.queue.insert(key, slot.clone());
            // Earlier than what the task sleeps until (or it waits without deadline): re-arm.
            let waker = if st.armed.is_none_or(|a| deadline < a) {
                st.kick = true;
                st.servicer.take()
            } else {
                None
            };
            (key, waker)
        };
        if let Some(w) = waker {
            w.wake();
        }
        key
    }

    /// Fires every due sleep; the next deadline to sleep until, or `None` when the task should
    /// end (no timer or sleep left).
    fn fire_due(&self) -> Option<Option<Instant>> {
        let now = Instant::now();
        let mut wake = Vec::new();
        let next = {
            let mut st = lock(&self.state);
            while let Some(entry) = st.queue.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let slot = entry.remove();
                slot.fired.store(true, Ordering::Release);
                if let Some(w) = lock(&slot.waker).take() {
                    wake.push(w);
                }
            }
            if st.closed {
                return None;
            }
            st.kick = false;
            st.armed = st.queue.keys().next().map(|k| k.0);
            st.armed
        };
        // In deadline order, outside the lock (a waker may run code).
        wake.into_iter().for_each(Waker::wake);
        Some(next)
    }

    /// Ready when the task must look again; else keeps its waker for `insert` and `Handle`.
    fn park(&self, cx: &Context<'_>) -> Poll<()> {
        let waker = cx.waker().clone();
        let mut st = lock(&self.state);
        if st.kick {
            st.kick = false;
            return Poll::Ready(());
        }
        st.servicer = Some(waker);
        Poll::Pending
    }
}

/// The ring's side: sleep on the ring until the earliest deadline (or a kick), fire, repeat.
async fn service(ring: RingRef, shared: Arc<Shared>) {
    while let Some(next) = shared.fire_due() {
        let mut sleep = next.map(|d| ring.sleep_until(d));
        std::future::poll_fn(|cx| {
            if let Some(Poll::Ready(r)) = sleep.as_mut().map(|s| Pin::new(s).poll(cx)) {
                if let Err(e) = r {
                    // Cannot happen short of the ring going away; counts as expired.
                    tracing::warn!(error = %e, "safer-ring hyper timer: ring sleep failed");
                }
                return Poll::Ready(());
            }
            shared.park(cx)
        })
        .await;
    }
}
