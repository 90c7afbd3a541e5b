//! A ring's inbox for [`RingHandle`](super::RingHandle) messages, shared with every thread
//! that holds a handle: the queue in sending order, the receivers' wakers, and the doorbell
//! state (see `msg_ring` for how messages travel).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::kernel::user_data::MSG_FD_TAG;

/// What a [`RingHandle`](super::RingHandle) carries.
///
/// # Examples
/// ```
/// use safer_ring::Message;
/// # let ring = safer_ring::Ring::new(8)?;
/// ring.handle().post(3)?;
/// match ring.block_on(ring.next_message()) {
///     Message::Data(n) => assert_eq!(n, 3),
///     Message::Fd(_fd) => unreachable!(),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum Message {
    /// A plain value.
    Data(u64),
    /// A file descriptor, now owned by the receiver.
    Fd(OwnedFd),
}

enum Entry {
    Ready(Message),
    /// An fd passed natively: `slot` in the target's file table once its completion arrived.
    Passing {
        seq: u64,
        slot: Option<u32>,
    },
}

/// What the receiver takes next.
pub(super) enum Next {
    Message(Message),
    /// A natively passed fd, still a registered file: install it first.
    Slot(u32),
    /// The ring was dropped: no message will come.
    Closed,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Entry>,
    /// Every task waiting in `next_message` (each is woken: none loses its wakeup).
    wakers: Vec<Waker>,
    /// The target ring was dropped: messages are refused (and what was queued is closed).
    closed: bool,
    /// A native doorbell is on its way: later senders need not ring again.
    rung: bool,
}

impl Inbox {
    fn passing(&mut self, seq: u64) -> Option<&mut Entry> {
        self.queue
            .iter_mut()
            .find(|e| matches!(e, Entry::Passing { seq: s, .. } if *s == seq))
    }
}

/// The error for a message to a ring that no longer exists.
pub(super) fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the target ring was dropped; the message was discarded (an fd in it is closed)",
    )
}

pub(crate) struct Mailbox {
    inbox: Mutex<Inbox>,
    /// A duplicate of the target's io_uring fd: keeps the ring alive for OP_MSG_RING even if
    /// the target is dropped first (its completions then land in a ring nobody reads).
    pub(super) ring_fd: Option<OwnedFd>,
    /// The target has a file table and installs arrivals (see `msg_ring`).
    pub(super) accepts_fds: AtomicBool,
    next_seq: AtomicU64,
}

impl Mailbox {
    pub(crate) fn new(ring_fd: Option<OwnedFd>) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            inbox: Mutex::new(Inbox::default()),
            ring_fd,
            accepts_fds: AtomicBool::new(false),
            next_seq: AtomicU64::new(0),
        })
    }

    pub(super) fn target_fd(&self) -> RawFd {
        self.ring_fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on an open inbox, then wakes the receiver if `wake`; `Err` on a closed one,
    /// where `f` does not run. What `f` owns (a refused message, its fd) is then dropped as
    /// this returns, after the guard: parameters outlive a function's locals.
    fn update<R>(&self, wake: bool, f: impl FnOnce(&mut Inbox) -> R) -> io::Result<R> {
        let (r, waker) = {
            let mut inbox = self.lock();
            if inbox.closed {
                return Err(gone());
            }
            let r = f(&mut inbox);
            (
                r,
                if wake {
                    std::mem::take(&mut inbox.wakers)
                } else {
                    Vec::new()
                },
            )
        };
        for w in waker {
            w.wake();
        }
        Ok(r)
    }

    /// Queues `msg` and wakes the receiver (its eventfd, if it sleeps).
    pub(super) fn push(&self, msg: Message) -> io::Result<()> {
        self.update(true, |i| i.queue.push_back(Entry::Ready(msg)))
    }

    /// Queues `msg` for a native doorbell; whether the sender must ring it (the receiver waits
    /// and no doorbell is already on its way). Bursts thus cost one doorbell, not one each.
    pub(super) fn push_native(&self, msg: Message) -> io::Result<bool> {
        self.update(false, |i| {
            i.queue.push_back(Entry::Ready(msg));
            let ring = !i.wakers.is_empty() && !i.rung;
            i.rung |= ring;
            ring
        })
    }

    /// A doorbell completion arrived on the target ring: the receiver's waker, to wake once
    /// the driver is released (same thread).
    #[must_use]
    pub(crate) fn ring_doorbell(&self) -> Vec<Waker> {
        let mut inbox = self.lock();
        inbox.rung = false;
        std::mem::take(&mut inbox.wakers)
    }

    /// Takes the place of an fd about to be passed natively.
    pub(super) fn reserve(&self) -> io::Result<u64> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed) & !MSG_FD_TAG;
        self.update(false, |i| {
            i.queue.push_back(Entry::Passing { seq, slot: None })
        })?;
        Ok(seq)
    }

    /// Fills the place of `seq` (the native pass failed: the fd itself goes instead).
    pub(super) fn resolve(&self, seq: u64, fd: OwnedFd) {
        let _ = self.update(true, |i| {
            let msg = Entry::Ready(Message::Fd(fd));
            match i.passing(seq) {
                Some(e) => *e = msg,
                None => i.queue.push_back(msg),
            }
        });
    }

    /// Arrival completions reaped on the target ring: `(seq, slot)`; returns the receiver's
    /// waker, to wake once the driver is released. On a closed inbox the slots go with the
    /// ring's file table.
    #[must_use]
    pub(crate) fn land(&self, arrivals: &mut Vec<(u64, i32)>) -> Vec<Waker> {
        let mut inbox = self.lock();
        if !inbox.closed {
            let i = &mut *inbox;
            for &(seq, res) in arrivals.iter() {
                let Ok(slot) = u32::try_from(res) else {
                    tracing::error!(seq, res, "an fd arrival completion carries an error");
                    continue;
                };
                match i.passing(seq) {
                    Some(Entry::Passing { slot: s, .. }) => *s = Some(slot),
                    _ => i.queue.push_back(Entry::Passing {
                        seq,
                        slot: Some(slot),
                    }),
                }
            }
        }
        arrivals.clear();
        std::mem::take(&mut inbox.wakers)
    }

    /// Puts an installed fd first (its place was taken by `take`).
    pub(super) fn requeue_fd(&self, fd: OwnedFd) {
        let _ = self.update(true, |i| i.queue.push_front(Entry::Ready(Message::Fd(fd))));
    }

    /// Puts an arrival whose install never ran back first.
    pub(super) fn requeue_slot(&self, slot: u32) {
        let _ = self.update(true, |i| {
            i.queue.push_front(Entry::Passing {
                seq: u64::MAX,
                slot: Some(slot),
            })
        });
    }

    /// The ring is going: refuse further messages and close the fds still queued.
    pub(crate) fn close(&self) {
        let (queue, waiters) = {
            let mut inbox = self.lock();
            inbox.closed = true;
            (
                std::mem::take(&mut inbox.queue),
                std::mem::take(&mut inbox.wakers),
            )
        };
        drop(queue);
        // Receivers waiting elsewhere (another ring, tokio) learn that nothing will come.
        for w in waiters {
            w.wake();
        }
    }

    /// Whether the ring behind this mailbox was dropped.
    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next message in sending order; pending while the first is an fd still on its way.
    pub(super) fn take(&self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut inbox = self.lock();
        if inbox.closed {
            return Poll::Ready(Next::Closed);
        }
        match inbox.queue.front() {
            Some(Entry::Ready(_)) => {
                let Some(Entry::Ready(m)) = inbox.queue.pop_front() else {
                    unreachable!()
                };
                Poll::Ready(Next::Message(m))
            }
            Some(&Entry::Passing {
                slot: Some(slot), ..
            }) => {
                inbox.queue.pop_front();
                Poll::Ready(Next::Slot(slot))
            }
            Some(Entry::Passing { slot: None, .. }) | None => {
                if !inbox.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    inbox.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl crate::driver::Inbox for Mailbox {
    fn land(&self, arrivals: &mut Vec<(u64, i32)>) -> Vec<Waker> {
        Mailbox::land(self, arrivals)
    }
    fn ring_doorbell(&self) -> Vec<Waker> {
        Mailbox::ring_doorbell(self)
    }
}
