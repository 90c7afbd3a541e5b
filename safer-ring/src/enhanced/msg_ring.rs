//! Ring-to-ring messages: a `Send` handle through which other threads or rings post a `u64`
//! or pass a file descriptor to a ring.
//!
//! Every message takes a place in the target's queue when it is sent, so the target reads
//! them in sending order. What differs is how they travel:
//! - data: natively, the sending ring submits IORING_OP_MSG_RING (Linux 5.18+), which posts a
//!   completion straight into the target's completion queue (waking it if it sleeps in
//!   `io_uring_enter`); as the fallback (plain threads, epoll targets, older kernels), the
//!   target's waker is woken, which writes its eventfd;
//! - fds: natively, the sender stages the fd in its registered-file table and IORING_MSG_SEND_FD
//!   (6.0+) moves the file into the target's table; the target turns it into a normal fd with
//!   OP_FIXED_FD_INSTALL (6.8+). Where either side lacks its half (6.0 to 6.7 have SEND_FD but
//!   no FIXED_FD_INSTALL), the fd number itself travels in the queue: threads share the fd table.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::mailbox::{Mailbox, Message, Next, gone};
use super::stats::PathTaken;
use crate::RingRef;
use crate::backend::OpKind;
use crate::driver::op::{Op, OpData};
use crate::driver::{Chore, Chores, budget};
use crate::features::Feature;
use crate::kernel::user_data::{MSG_FD_TAG, MSG_TOKEN};

/// A handle to a [`Ring`](crate::Ring), usable from any thread, to post messages to it.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let handle = ring.handle();
/// let workers: Vec<_> = (0..4u64)
///     .map(|i| {
///         let h = handle.clone();
///         std::thread::spawn(move || h.post(i))
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap()?;
/// }
/// ring.block_on(async {
///     for _ in 0..4 {
///         ring.next_message().await;
///     }
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    ///
    /// # Errors
    /// `BrokenPipe` when the target ring was dropped.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Message;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let handle = ring.handle(); // Send + Sync
    /// std::thread::spawn(move || handle.post(7)).join().unwrap()?;
    /// assert!(matches!(ring.block_on(ring.next_message()), Message::Data(7)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn post(&self, data: u64) -> io::Result<()> {
        self.mailbox.push(Message::Data(data))
    }

    /// Passes `fd` to the target ring from any thread; the receiver owns it.
    ///
    /// # Errors
    /// `BrokenPipe` when the target ring was dropped; `fd` is then closed.
    ///
    /// # Examples
    /// ```
    /// use std::os::fd::OwnedFd;
    /// use safer_ring::Message;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let file: OwnedFd = std::fs::File::open(std::env::temp_dir())?.into();
    /// ring.handle().send_fd(file)?;
    /// match ring.block_on(ring.next_message()) {
    ///     Message::Fd(fd) => drop(fd), // the receiver owns it now
    ///     Message::Data(_) => unreachable!(),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_fd(&self, fd: OwnedFd) -> io::Result<()> {
        self.mailbox.push(Message::Fd(fd))
    }

    /// Whether the target ring was dropped (messages to it then fail with `BrokenPipe`).
    ///
    /// # Examples
    /// ```
    /// let ring = safer_ring::Ring::new(8)?;
    /// let handle = ring.handle();
    /// drop(ring);
    /// assert!(handle.is_closed());
    /// assert_eq!(handle.post(1).unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }
}

/// Wakes a mailbox's receivers (and clears its doorbell state) when dropped: the doorbell that
/// was to wake them will not arrive. Not inside the driver: their wakers may run here.
struct WakeOnDrop<'a>(&'a Mailbox);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        for w in self.0.ring_doorbell() {
            w.wake();
        }
    }
}

/// The doorbell op on the sending ring.
pub struct MsgRing {
    mailbox: Arc<Mailbox>,
}

// SAFETY: MSG_RING carries no pointers; the target ring fd is held by `mailbox` (a dup).
unsafe impl OpData for MsgRing {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::MsgRing {
            ring_fd: self.mailbox.target_fd(),
            user_data: MSG_TOKEN,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// IORING_MSG_SEND_FD of a staged fd. Its completion decides where the fd goes even if the
/// sending future was dropped: delivered (we close our copy) or back through the queue.
pub struct SendFd {
    /// Ours until the completion says where it went.
    fd: Option<OwnedFd>,
    slot: u32,
    seq: u64,
    mailbox: Arc<Mailbox>,
    chores: Chores,
}

// SAFETY: no pointers; the staged file is referenced by this ring's file table until the
// chore that empties the slot runs (after this op's completion), and the target ring fd is
// held by `mailbox`.
unsafe impl OpData for SendFd {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::MsgRingFd {
            ring_fd: self.mailbox.target_fd(),
            slot: self.slot,
            user_data: MSG_FD_TAG | self.seq,
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        if res.is_ok() {
            // The target's table holds the file now; our fd is a spare.
            self.fd = None;
        }
        res.map(drop) // on error, drop sends the fd through the queue
    }
}

impl Drop for SendFd {
    fn drop(&mut self) {
        // Whatever happened (completed, failed, never submitted), the staging slot is done
        // with; an fd still here was not delivered natively and goes through the queue.
        self.chores.push(Chore::ReleaseFile(self.slot));
        if let Some(fd) = self.fd.take() {
            self.mailbox.resolve(self.seq, fd);
        }
    }
}

/// OP_FIXED_FD_INSTALL of an arrival on the receiving ring. The new fd goes to the front of
/// the queue, so a dropped `next_message` loses nothing.
pub struct Install {
    slot: Option<u32>,
    mailbox: Arc<Mailbox>,
    chores: Chores,
}

// SAFETY: no pointers; the registered file stays in its slot until the chore queued by
// `complete` empties it.
unsafe impl OpData for Install {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::FixedFdInstall {
            slot: self.slot.expect("install not yet completed"),
        }
    }
    fn complete(mut self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        let slot = self.slot.take().expect("completes once");
        self.chores.push(Chore::ReleaseFile(slot));
        let fd = res?;
        // SAFETY: a successful OP_FIXED_FD_INSTALL returns a new fd nothing else owns; each
        // completion is handled once.
        let fd = unsafe { crate::kernel::sys::own_fd(fd as i32) };
        self.mailbox.requeue_fd(fd);
        Ok(())
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        // Never submitted (the receiver was dropped first): the arrival waits for the next one.
        if let Some(slot) = self.slot {
            self.mailbox.requeue_slot(slot);
        }
    }
}

impl RingRef {
    /// A `Send + Sync` handle other threads and rings use to message this ring.
    ///
    /// Where this ring can receive fds natively (io_uring with IORING_MSG_SEND_FD and
    /// OP_FIXED_FD_INSTALL, Linux 6.8+, both enabled), the first call registers the
    /// registered-file table that fds arrive in.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Message, Ring};
    /// let ring = Ring::new(8)?;
    /// let to_main = ring.handle();
    /// let worker = std::thread::spawn(move || {
    ///     let ring = Ring::new(8)?;
    ///     ring.block_on(ring.msg_ring(&to_main, Message::Data(99)))
    /// });
    /// assert!(matches!(ring.block_on(ring.next_message()), Message::Data(99)));
    /// worker.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle(&self) -> RingHandle {
        let mailbox = self.mailbox();
        if self.uses_native(Feature::MsgRingSendFd)
            && self.uses_native(Feature::FixedFdInstall)
            && !mailbox.accepts_fds.load(Ordering::Relaxed)
            && self.driver().enable_fd_passing()
        {
            mailbox.accepts_fds.store(true, Ordering::Release);
        }
        RingHandle { mailbox }
    }

    /// The next message posted to this ring through a [`RingHandle`], in sending order.
    ///
    /// Cancel-safe: dropping the future loses no message.
    ///
    /// # Panics
    /// When the owning [`Ring`](crate::Ring) is dropped (also while waiting): no message can
    /// come any more, as with [`RingRef::block_on`].
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Message;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let h = ring.handle();
    /// h.post(1)?;
    /// h.post(2)?;
    /// ring.block_on(async {
    ///     assert!(matches!(ring.next_message().await, Message::Data(1))); // sending order
    ///     assert!(matches!(ring.next_message().await, Message::Data(2)));
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_message(&self) -> Message {
        let mailbox = self.mailbox();
        loop {
            let next = std::future::poll_fn(|cx| budget::counted(cx, |cx| mailbox.take(cx)));
            match next.await {
                Next::Message(m) => return m,
                Next::Closed => panic!(
                    "RingRef::next_message: the ring was dropped (its owning Ring is gone); no \
                     message will come"
                ),
                Next::Slot(slot) => {
                    let start = Instant::now();
                    let install = Install {
                        slot: Some(slot),
                        mailbox: mailbox.clone(),
                        chores: self.driver().chores().clone(),
                    };
                    let r = Op::new(self, install).await;
                    self.driver().do_chores();
                    match r {
                        Ok(()) => {
                            self.record(Feature::FixedFdInstall, PathTaken::Native, start.elapsed())
                        }
                        // Detection said FIXED_FD_INSTALL works, so this is unexpected: the
                        // file is released with the slot and the message is lost. Say so.
                        Err(e) => {
                            tracing::error!(error = %e, slot, "installing a passed fd failed; the fd is lost")
                        }
                    }
                }
            }
        }
    }

    /// Sends `msg` to the ring behind `to`, natively where this ring and the target can (see
    /// the module docs), else through the target's queue and waker. Delivery is guaranteed
    /// either way; [`Ring::enhancement_stats`](crate::RingRef::enhancement_stats) says which path ran: [`Feature::MsgRing`] for
    /// the doorbell of every queued message (data, and fds not passed natively), and
    /// [`Feature::MsgRingSendFd`] for each fd.
    ///
    /// # Errors
    /// `BrokenPipe` when the target ring was dropped (an fd in `msg` is then closed). A
    /// failing native path is not an error: the message goes through the queue instead.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Message, Ring};
    /// let (a, b) = (Ring::new(8)?, Ring::new(8)?);
    /// let to_b = b.handle();
    /// a.block_on(a.msg_ring(&to_b, Message::Data(5)))?;
    /// assert!(matches!(b.block_on(b.next_message()), Message::Data(5)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_msg_ring")]
    #[doc(alias = "io_uring_prep_msg_ring_fd")]
    pub async fn msg_ring(&self, to: &RingHandle, msg: Message) -> io::Result<()> {
        let start = Instant::now();
        let msg = match msg {
            Message::Fd(fd) => match self.send_fd_natively(to, fd, start).await? {
                None => return Ok(()),
                Some(fd) => {
                    self.record(Feature::MsgRingSendFd, PathTaken::Fallback, start.elapsed());
                    Message::Fd(fd)
                }
            },
            m => m,
        };
        let path = self.enqueue(to, msg).await?;
        self.record(Feature::MsgRing, path, start.elapsed());
        Ok(())
    }

    /// Queues `msg` in the target's inbox and makes sure the receiver notices: a coalesced
    /// OP_MSG_RING doorbell natively, else its waker (eventfd).
    async fn enqueue(&self, to: &RingHandle, msg: Message) -> io::Result<PathTaken> {
        if !(self.uses_native(Feature::MsgRing) && to.mailbox.ring_fd.is_some()) {
            to.mailbox.push(msg)?;
            return Ok(PathTaken::Fallback);
        }
        if !to.mailbox.push_native(msg)? {
            // The receiver is awake or already being woken: it finds the message itself.
            return Ok(PathTaken::Native);
        }
        // Later senders skip their doorbell while this one is on its way: if it never arrives
        // (failed, or this future dropped before it completed, maybe on a ring that stays
        // idle with the SQE unsubmitted), the receiver is woken directly instead.
        let fallback = WakeOnDrop(&to.mailbox);
        let doorbell = MsgRing {
            mailbox: to.mailbox.clone(),
        };
        match Op::new(self, doorbell).await {
            Ok(()) => {
                std::mem::forget(fallback);
                Ok(PathTaken::Native)
            }
            Err(e) => {
                tracing::debug!(error = %e, "OP_MSG_RING failed; waking the target instead");
                Ok(PathTaken::Fallback) // `fallback` wakes it
            }
        }
    }

    /// Passes `fd` with IORING_MSG_SEND_FD where this ring opted in and the target installs
    /// arrivals; `Some(fd)` hands it back for the queue (not possible, or staging failed).
    async fn send_fd_natively(
        &self,
        to: &RingHandle,
        fd: OwnedFd,
        start: Instant,
    ) -> io::Result<Option<OwnedFd>> {
        let native = self.uses_native(Feature::MsgRingSendFd)
            && to.mailbox.accepts_fds.load(Ordering::Acquire)
            && !Arc::ptr_eq(&to.mailbox, &self.mailbox()); // the kernel refuses self-sends
        if !native {
            return Ok(Some(fd));
        }
        let slot = match self.driver().stage_fd(fd.as_fd()) {
            Ok(slot) => slot,
            Err(e) => {
                tracing::debug!(error = %e, "staging an fd failed; using the queue");
                return Ok(Some(fd));
            }
        };
        // Everything that borrows the driver comes first: from `reserve` on, the place in the
        // target's queue must reach `SendFd`, whose drop fills it whatever happens.
        let chores = self.driver().chores().clone();
        let seq = match to.mailbox.reserve() {
            Ok(seq) => seq,
            Err(e) => {
                self.driver().release_file(slot);
                return Err(e); // `fd` is closed here
            }
        };
        let send = SendFd {
            fd: Some(fd),
            slot,
            seq,
            mailbox: to.mailbox.clone(),
            chores,
        };
        let r = Op::new(self, send).await;
        self.driver().do_chores();
        match r {
            Ok(()) => self.record(Feature::MsgRingSendFd, PathTaken::Native, start.elapsed()),
            Err(e) => {
                if let Some(errno) = e.raw_os_error() {
                    self.judge(Feature::MsgRingSendFd, errno, true, &e.to_string());
                }
                if to.mailbox.is_closed() {
                    return Err(gone()); // the fd was closed when the queue refused it
                }
                tracing::debug!(error = %e, "IORING_MSG_SEND_FD failed; the fd went through the queue");
                self.record(Feature::MsgRingSendFd, PathTaken::Fallback, start.elapsed());
            }
        }
        Ok(None)
    }
}
