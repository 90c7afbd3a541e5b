//! Ring-to-ring messages: a `Send` handle through which other threads or rings post a `u64`
//! or pass a file descriptor to a ring.
//!
//! Messages travel through a shared queue. What differs is how the target learns of them:
//! natively, the sending ring submits IORING_OP_MSG_RING (Linux 5.18+), which posts a
//! completion straight into the target's completion queue (waking it if it sleeps in
//! `io_uring_enter`); as the fallback (plain threads, epoll targets, older kernels), the
//! target's waker is woken, which writes its eventfd. Native fd passing
//! (IORING_MSG_SEND_FD) needs registered file tables and is not used: fds always travel in
//! the queue, which is correct because threads share the fd table.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use super::stats::Path;
use crate::Ring;
use crate::backend::{MSG_TOKEN, OpKind};
use crate::driver::op::{Op, OpData};
use crate::features::Feature;

/// What a [`RingHandle`] carries.
#[derive(Debug)]
pub enum Message {
    /// A plain value.
    Data(u64),
    /// A file descriptor, now owned by the receiver.
    Fd(OwnedFd),
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Message>,
    waker: Option<Waker>,
}

pub(crate) struct Mailbox {
    inbox: Mutex<Inbox>,
    /// A duplicate of the target's io_uring fd: keeps the ring alive for OP_MSG_RING even if
    /// the target is dropped first (its completions then land in a ring nobody reads).
    ring_fd: Option<OwnedFd>,
}

impl Mailbox {
    pub(crate) fn new(ring_fd: Option<OwnedFd>) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            inbox: Mutex::new(Inbox::default()),
            ring_fd,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg`; wakes the receiver unless a native doorbell will.
    fn push(&self, msg: Message, wake: bool) {
        let waker = {
            let mut inbox = self.lock();
            inbox.queue.push_back(msg);
            if wake { inbox.waker.take() } else { None }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// A doorbell completion arrived on the target ring: wake the receiver (same thread).
    pub(crate) fn ring_doorbell(&self) {
        let waker = self.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A handle to a [`Ring`], usable from any thread, to post messages to it.
#[derive(Clone)]
pub struct RingHandle {
    mailbox: Arc<Mailbox>,
}

impl std::fmt::Debug for RingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingHandle")
            .field("native_target", &self.mailbox.ring_fd.is_some())
            .finish()
    }
}

impl RingHandle {
    /// Posts `data` from any thread (fallback path: the target's waker / eventfd).
    pub fn post(&self, data: u64) {
        self.mailbox.push(Message::Data(data), true);
    }

    /// Passes `fd` to the target ring from any thread; the receiver owns it.
    pub fn send_fd(&self, fd: OwnedFd) {
        self.mailbox.push(Message::Fd(fd), true);
    }
}

/// The doorbell op on the sending ring.
pub struct MsgRing {
    mailbox: Arc<Mailbox>,
}

impl OpData for MsgRing {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        let fd = self.mailbox.ring_fd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        OpKind::MsgRing {
            ring_fd: fd,
            user_data: MSG_TOKEN,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

impl Ring {
    /// A `Send + Sync` handle other threads and rings use to message this ring.
    pub fn handle(&self) -> RingHandle {
        RingHandle {
            mailbox: self.mailbox(),
        }
    }

    /// The next message posted to this ring through a [`RingHandle`].
    pub async fn next_message(&self) -> Message {
        let mailbox = self.mailbox();
        std::future::poll_fn(|cx| {
            let mut inbox = mailbox.lock();
            match inbox.queue.pop_front() {
                Some(m) => Poll::Ready(m),
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Sends `msg` to the ring behind `to`: natively with IORING_OP_MSG_RING (Linux 5.18+)
    /// when this ring uses it and the target is an io_uring ring, else through the target's
    /// waker. Delivery is guaranteed either way; [`Ring::enhancement_stats`] for
    /// [`Feature::MsgRing`] says which path ran.
    ///
    /// # Errors
    /// None today: a failing native doorbell falls back to waking the target.
    #[doc(alias = "io_uring_prep_msg_ring")]
    pub async fn msg_ring(&self, to: &RingHandle, msg: Message) -> io::Result<()> {
        let start = Instant::now();
        if self.uses_native(Feature::MsgRing) && to.mailbox.ring_fd.is_some() {
            to.mailbox.push(msg, false);
            match Op::new(
                self,
                MsgRing {
                    mailbox: to.mailbox.clone(),
                },
            )
            .await
            {
                Ok(()) => {
                    self.record(Feature::MsgRing, Path::Native, start.elapsed());
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "OP_MSG_RING failed; waking the target instead");
                    to.mailbox.ring_doorbell();
                }
            }
        } else {
            to.mailbox.push(msg, true);
        }
        self.record(Feature::MsgRing, Path::Fallback, start.elapsed());
        Ok(())
    }
}
