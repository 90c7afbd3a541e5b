//! Driver core: the slab of in-flight operations, orphans, multishot queues and the submission
//! policy. Its fields are private: the rest of the crate reaches the backend through the typed
//! methods below, always through a [`DriverRef`] (see `cell.rs`), so the rule "no user code
//! runs while the driver is borrowed" can be checked by reading this module: nothing here wakes
//! or drops a `Waker` or runs an op's completion — that is pushed to `later`.

pub(crate) mod budget;
pub(crate) mod cell;
pub(crate) mod executor;
pub(crate) mod op;
mod slots;
pub(crate) mod task;
mod wakers;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::rc::{Rc, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use slots::Slots;

use crate::backend::{AnyBackend, Backend, OpKind, TimeoutSpec};
use crate::config::SubmitPolicy;
use crate::io::SharedFd;
use crate::kernel::user_data;
pub(crate) use cell::{DriverCell, DriverRef, Later};
pub(crate) use wakers::Waiter;

/// State of one in-flight operation.
pub(crate) enum Slot {
    /// Pushed; the future (if still alive) waits for the completion.
    Waiting(Waiter),
    /// First of two completions (zero-copy send: result, then buffer-release notification):
    /// the result is kept, the buffer stays with the kernel until the second arrives.
    Partial { res: i32, waiter: Waiter },
    /// The completion arrived and waits for the future's next poll.
    Done { res: i32, flags: u32 },
    /// The future was dropped; the slot owns its data until the kernel is done with it.
    Orphan(Box<dyn Orphan>),
    /// A multishot op: completions queue up until its reader takes them.
    Multi(Box<MultiState>),
    /// A multishot op nobody reads any more: what each completion still produces is released
    /// (see [`MultiKind`]); the slot, and its fd, go with the final completion.
    MultiOrphan(MultiKind, #[allow(dead_code)] Held), // held for the kernel, never read
}

/// Which multishot op, so an abandoned one can release what its completions hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MultiKind {
    /// Accepted fds: closed.
    Accept,
    /// Chunks in provided buffers of group `bgid`: recycled unread. With `bundle`
    /// (IORING_RECVSEND_BUNDLE), one chunk may fill several buffers in ring order.
    Recv { bgid: u16, bundle: bool },
    /// Datagrams (with their sender) in provided buffers of group `bgid`: recycled unread.
    RecvMsg { bgid: u16 },
}

/// What a multishot op's slot keeps alive for the kernel until its final completion: the fd
/// it names and, for recvmsg, the header it names.
pub(crate) struct Held {
    _fd: SharedFd,
    _hdr: Option<Box<crate::kernel::msghdr::MultiHdr>>,
}

/// Whether a completion says more will follow for the same multishot op.
/// A turn error that clears by itself once completions are reaped (CQ overflow, EAGAIN).
fn transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EAGAIN))
}

fn more(flags: u32) -> bool {
    io_uring::cqueue::more(flags)
}

/// The provided buffer a completion consumed, if any.
pub(crate) fn buffer_id(flags: u32) -> Option<u16> {
    crate::kernel::cqe_flags::buffer_id(flags)
}

/// Releases what one completion of an abandoned multishot op of `kind` holds.
fn release(kind: MultiKind, res: i32, flags: u32, recycle: &mut Vec<(u16, u32)>) {
    match kind {
        // SAFETY: a successful multishot accept completion carries a new fd that nothing else
        // owns; each completion is handled exactly once.
        MultiKind::Accept if res >= 0 => drop(unsafe { crate::kernel::sys::own_fd(res) }),
        // Every buffer the completion's bytes fill (several for a bundle).
        MultiKind::Recv { .. } => recycle.extend(buffer_id(flags).map(|b| (b, res.max(0) as u32))),
        MultiKind::RecvMsg { .. } => recycle.extend(buffer_id(flags).map(|b| (b, 0))),
        _ => {}
    }
}

/// Queue of a live multishot op, and the fd it names (held until its final completion).
pub(crate) struct MultiState {
    kind: MultiKind,
    held: Option<Held>,
    queue: VecDeque<(i32, u32)>,
    /// Every reader waiting; concurrent readers are all woken (none loses its wakeup).
    wakers: Vec<Waker>,
    finished: bool,
}

/// What the reader of a multishot op gets next; see [`Driver::next_multishot`].
pub(crate) enum MultiNext {
    /// A completion; `last`: the op ended with it and its slot is freed (re-arm for more).
    Item { res: i32, flags: u32, last: bool },
    /// The op ended with nothing left to read, or is not this ring's; re-arm for more.
    Ended,
    /// Nothing yet; the waker is registered.
    Pending,
}

/// Owner of a dropped operation's memory; told the result so it can release what the kernel
/// produced (e.g. close an accepted fd).
pub(crate) trait Orphan {
    fn complete(self: Box<Self>, res: i32, flags: u32);
}

/// Work left for the driver by code that cannot borrow it (drop hooks, orphaned completions).
pub(crate) enum Chore {
    /// An I/O object with a multishot op on this ring went away: cancel the op (if armed)
    /// and recycle the provided buffers it was partly read from: `(bid, len)`, the completion's
    /// bytes from the start of `bid` on (a bundle's rest spans the buffers after it).
    Abandon {
        ud: Option<u64>,
        leftover: Option<(u16, u32)>,
    },
    /// A registered-file slot to empty: a sent fd's staging slot, an installed arrival, or a
    /// `FixedFile`'s slot once the handle and every op naming the slot are gone.
    ReleaseFile(u32),
    /// A lent provided buffer's holder was dropped: give the buffer back to the kernel.
    Recycle(u16),
    /// Op `ud` was dropped while the driver was borrowed (by user code the driver ran while
    /// borrowed: a `tracing` subscriber): its data waits here, alive, for the cancel and drain
    /// a drop does, which the next turn runs before it enters the kernel.
    Dropped(u64, Box<dyn Orphan>),
}

/// Where messages from other rings land (the ring's MSG_RING mailbox, `enhanced::Mailbox`):
/// the driver hands it the passed fds' arrivals its reap saw and the doorbells the backend
/// counted, and wakes the receivers it names. Kept abstract so the driver stands below the
/// enhanced APIs.
pub(crate) trait Inbox: Send + Sync {
    /// Files the arrivals (`(seq, result)` of each passed fd's completion); the wakers of
    /// receivers to wake.
    fn land(&self, arrivals: &mut Vec<(u64, i32)>) -> Vec<Waker>;
    /// A doorbell rang (a sender's MSG_RING): the wakers of receivers to wake.
    fn ring_doorbell(&self) -> Vec<Waker>;
}

/// A ring's chore queue. Its address identifies the ring to I/O objects that armed a
/// multishot op on it (they hold a `Weak`, so a dropped ring is noticed too).
#[derive(Default)]
pub(crate) struct ChoreQueue {
    queue: RefCell<Vec<Chore>>,
    /// The ring was dropped (its state may live on behind `RingRef`s): armed state naming it
    /// is stale.
    closed: std::cell::Cell<bool>,
}

pub(crate) type Chores = Rc<ChoreQueue>;

impl ChoreQueue {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn is_empty(&self) -> bool {
        self.queue.try_borrow().is_ok_and(|q| q.is_empty())
    }

    /// Queues a chore; if the queue is busy (never, in practice) the chore is dropped, which
    /// leaks a registration or keeps an op armed until the ring drops, never frees (a dropped
    /// op's data is leaked).
    pub(crate) fn push(&self, chore: Chore) {
        match self.queue.try_borrow_mut() {
            Ok(mut q) => q.push(chore),
            Err(_) => std::mem::forget(chore),
        }
    }
}

impl Drop for ChoreQueue {
    fn drop(&mut self) {
        // A dropped op never cancelled (its ring went first): the kernel may still use its
        // memory, so leak it. The other chores hold nothing the kernel uses.
        for chore in self.queue.get_mut().drain(..) {
            if let Chore::Dropped(..) = chore {
                std::mem::forget(chore);
            }
        }
    }
}

/// What the driver tracks per op besides its slot.
#[derive(Default)]
struct Books {
    /// Ops whose linked timeout fired without finding them (ENOENT race): cancel again.
    recancel: Vec<u64>,
    /// Provided buffers of dropped receives, to hand back after the reap: `(bid, len)`, every
    /// buffer of a completion's `len` bytes from `bid` on (at least `bid`).
    recycle: Vec<(u16, u32)>,
    /// Tasks of the ring's own executor woken by completions, for it to collect.
    woken: wakers::Woken,
    /// The vtable of safer-ring executors' wakers (woken and dropped inline: no user code).
    own: Option<&'static std::task::RawWakerVTable>,
    /// Fds passed to this ring with MSG_RING: (message sequence, file-table slot or -errno).
    arrivals: Vec<(u64, i32)>,
}

pub(crate) struct Driver {
    backend: AnyBackend,
    /// Each op's slot under its key, with the generation its `user_data` carries, so a
    /// completion, a cancel or a reader naming a finished op never reaches the op that reused
    /// its key.
    slots: Slots,
    generation: u32,
    policy: SubmitPolicy,
    drain_timeout: Duration,
    /// Set while an external event loop (tokio) drives the ring: woken when work is queued.
    submit_waker: Option<Waker>,
    books: Books,
    /// Filled by drop hooks and orphaned completions, drained every turn.
    chores: Chores,
    /// Messages posted to this ring (MSG_RING doorbells wake its receiver).
    mailbox: std::sync::Arc<dyn Inbox>,
    /// User code found while borrowed; run by `DriverRef` once the borrow is released.
    later: Vec<Later>,
    shut_down: bool,
    /// The owning `Ring` was dropped: the backend is gone, pushes fail.
    closed: bool,
}

/// The error for an operation on a ring whose owner was dropped.
pub(crate) fn ring_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the ring was dropped (its owning Ring is gone); operations through a RingRef fail",
    )
}

fn too_many_ops() -> io::Error {
    io::Error::other("more than 2^32 operations in flight")
}

/// A completion whose `user_data` carries a tag (see `kernel::user_data`): not an op's own.
#[cold]
fn complete_tagged(slots: &Slots, books: &mut Books, ud: u64, res: i32) {
    if let Some(seq) = user_data::parse_msg_fd(ud) {
        books.arrivals.push((seq, res));
    } else if let Some(op) = user_data::parse_link(ud) {
        // The timer fired but the kernel could not find the op to cancel (it was between
        // issue and arming: -ENOENT), or found it running (-EALREADY): cancel it again. The
        // generation in `op` makes sure it is still the same op.
        let pending = matches!(
            slot_of(slots, op),
            Some(Slot::Waiting(_) | Slot::Partial { .. })
        );
        if pending && (res == -libc::ENOENT || res == -libc::EALREADY) {
            books.recancel.push(op);
        }
    } else if let Some(op) = user_data::parse_recancel(ud) {
        // The repeat missed too: the op was again between states (seen on 6.1 in a slow guest:
        // an io-wq worker had taken the read off its queue but not yet started it, so neither
        // the timer nor one repeat found it, and the read then blocked on an empty pipe for
        // good). Again, until a cancel finds it or it completes. Not on -EALREADY: that op is
        // running and was interrupted, it ends by itself. Not for a zero-copy send that has its
        // result (`Partial`): no cancel finds it while the kernel holds its buffer, for as long
        // as the network keeps the data, and repeating would spin.
        if matches!(slot_of(slots, op), Some(Slot::Waiting(_))) && res == -libc::ENOENT {
            books.recancel.push(op);
        }
    }
}

/// The slot of `op` (key and generation), if it still holds that op.
fn slot_of(slots: &Slots, op: u64) -> Option<&Slot> {
    let (key, generation) = user_data::split_op(op);
    slots.get(key, generation)
}

#[inline]
fn complete(
    slots: &mut Slots,
    books: &mut Books,
    later: &mut Vec<Later>,
    ud: u64,
    res: i32,
    flags: u32,
) {
    if ud & user_data::TAGS != 0 {
        return complete_tagged(slots, books, ud, res);
    }
    let (key, generation) = user_data::split_op(ud);
    let Some(slot) = slots.get_mut(key, generation) else {
        tracing::error!(user_data = ud, "completion for an unknown operation");
        return;
    };
    match slot {
        Slot::Waiting(_) if more(flags) => {
            if let Slot::Waiting(waiter) = std::mem::replace(slot, Slot::Done { res, flags }) {
                *slot = Slot::Partial { res, waiter };
            }
        }
        Slot::Waiting(_) => {
            if let Slot::Waiting(w) = std::mem::replace(slot, Slot::Done { res, flags }) {
                wakers::wake_waiter(books.own, w, &mut books.woken, later);
            }
        }
        Slot::Partial { res: first, .. } => {
            let res = *first;
            if let Slot::Partial { waiter, .. } = std::mem::replace(slot, Slot::Done { res, flags })
            {
                wakers::wake_waiter(books.own, waiter, &mut books.woken, later);
            }
        }
        // Not the last completion of a dropped two-completion op: keep its memory.
        Slot::Orphan(_) if more(flags) => {}
        Slot::Orphan(_) => {
            // A dropped receive may still have been given a provided buffer: recycle it.
            books.recycle.extend(buffer_id(flags).map(|b| (b, 0)));
            if let Some(Slot::Orphan(o)) = slots.remove(key) {
                later.push(Later::Complete(o, res, flags));
            }
        }
        Slot::Done { .. } => tracing::error!(user_data = ud, "second completion for a one-shot op"),
        Slot::Multi(m) => {
            m.queue.push_back((res, flags));
            m.finished |= !more(flags);
            for w in m.wakers.drain(..) {
                wakers::wake(books.own, w, later);
            }
        }
        Slot::MultiOrphan(kind, _) => {
            release(*kind, res, flags, &mut books.recycle);
            if !more(flags) {
                slots.remove(key); // its fd clone goes now: the kernel is done with it
            }
        }
    }
}

/// An op whose ring was dropped before the kernel finished it (the drain timed out): its
/// memory is leaked and can never be handed back.
#[derive(Debug)]
pub(crate) struct Lost;

/// What [`Driver::poll_op`] found.
pub(crate) enum Polled {
    /// Still in flight; it will wake this poller.
    Pending,
    /// Still in flight, and it holds another waker: hand it this poll's.
    NeedsWaker,
    /// Completed (the slot is freed).
    Ready(i32, u32),
}

/// What [`Driver::drop_op`] did with a dropped op's data.
pub(crate) enum Dropped {
    /// Kept until the kernel finishes (a cancel was queued).
    Orphaned,
    /// The op had already finished: here is its data to complete and drop.
    Finished(Box<dyn Orphan>, i32, u32),
}

impl Driver {
    pub(crate) fn new(
        backend: AnyBackend,
        policy: SubmitPolicy,
        drain_timeout: Duration,
        mailbox: std::sync::Arc<dyn Inbox>,
    ) -> Driver {
        Driver {
            mailbox,
            backend,
            slots: Slots::with_capacity(256),
            generation: 0,
            policy,
            drain_timeout,
            submit_waker: None,
            books: Books::default(),
            chores: Default::default(),
            later: Vec::new(),
            shut_down: false,
            closed: false,
        }
    }

    /// Queues user code to run once the borrow is released.
    pub(crate) fn defer(&mut self, work: Later) {
        self.later.push(work);
    }

    /// Wakers of the ring's own executor (like `own`) are woken and dropped inline.
    pub(crate) fn set_own_waker(&mut self, own: &Waker) {
        self.books.own = Some(own.vtable());
    }

    /// Moves the tasks of the ring's executor that completions woke into its run batch.
    #[inline]
    pub(crate) fn take_woken(&mut self, batch: &mut VecDeque<usize>) {
        if !self.books.woken.is_empty() {
            self.books.woken.take_into(batch);
        }
    }

    /// Gives up a waiter (its waker's drop, user code, runs after the borrow).
    fn discard(&mut self, w: Waiter) {
        wakers::discard(self.books.own, w, &mut self.later);
    }

    #[inline]
    pub(crate) fn has_later(&self) -> bool {
        !self.later.is_empty()
    }

    pub(crate) fn take_later(&mut self) -> Vec<Later> {
        std::mem::take(&mut self.later)
    }

    pub(crate) fn reuse_later(&mut self, empty: Vec<Later>) {
        if self.later.is_empty() && self.later.capacity() < empty.capacity() {
            self.later = empty;
        }
    }

    /// Inserts a slot; its `user_data`, or the slot back if the key space is full (its
    /// wakers are the caller's to give up outside the borrow).
    #[inline]
    fn insert(&mut self, slot: Slot) -> Result<u64, Slot> {
        if self.slots.vacant_key() >> user_data::KEY_BITS != 0 {
            return Err(slot);
        }
        self.generation = self.generation.wrapping_add(1) & user_data::GEN_MASK;
        let generation = self.generation;
        let key = self.slots.insert(generation, slot);
        Ok(user_data::for_op(key, generation))
    }

    #[inline]
    fn slot_mut(&mut self, ud: u64) -> Option<&mut Slot> {
        let (key, generation) = user_data::split_op(ud);
        self.slots.get_mut(key, generation)
    }

    #[inline]
    fn remove(&mut self, ud: u64) -> Option<Slot> {
        let (key, generation) = user_data::split_op(ud);
        self.slots.get(key, generation)?;
        self.slots.remove(key)
    }

    /// Pushes `op` under `ud`, making room in the SQ by submitting if needed. `Err` means the
    /// op never reached the SQ.
    ///
    /// # Safety
    /// As [`Backend::push`]: `op`'s and `timeout`'s pointers stay valid until `ud` completes.
    #[inline]
    unsafe fn push_raw(
        &mut self,
        ud: u64,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
    ) -> io::Result<()> {
        for tries in 1..=16 {
            // SAFETY: forwarded from the caller.
            if unsafe { self.backend.push(ud, op, timeout) }.is_ok() {
                return Ok(());
            }
            // No room in the SQ: hand what is queued to the kernel, then retry. A busy kernel
            // (CQ overflow it cannot flush yet) is waited out a little before the op fails.
            match self.turn(false, None) {
                Ok(()) => {}
                Err(e) if transient(&e) => std::thread::sleep(executor::turn_backoff(tries)),
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the submission queue stayed full after submitting",
        ))
    }

    /// After a push reached the SQ: submit now (Eager) or tell an external loop (tokio).
    #[inline]
    fn submitted(&mut self) {
        if self.policy == SubmitPolicy::Eager {
            // The op is in the SQ whatever this reports: it stays in flight until its
            // completion, and the next turn submits it again (and reports a lasting error).
            if let Err(e) = self.turn(false, None) {
                tracing::warn!(error = %e, "eager submit failed; the operation stays queued");
            }
        } else if let Some(w) = self.submit_waker.take() {
            self.later.push(Later::Wake(w));
        }
    }

    /// Takes a slot and queues `op` under it; returns its `user_data`. On `Err` nothing was
    /// queued and the caller still owns everything `op` points to.
    ///
    /// # Safety
    /// Every pointer in `op` and `timeout` stays valid until this op's slot is `Done` (taken by
    /// [`Driver::poll_op`]) or, if the caller gives its data up with [`Driver::drop_op`],
    /// until the orphan completes — in practice: the op's data lives in heap memory the op
    /// owns and hands to the driver on drop.
    #[inline]
    pub(crate) unsafe fn push(
        &mut self,
        op: OpKind,
        timeout: Option<&TimeoutSpec>,
        waiter: Waiter,
    ) -> io::Result<u64> {
        if self.closed {
            self.discard(waiter);
            return Err(ring_gone());
        }
        let ud = match self.insert(Slot::Waiting(waiter)) {
            Ok(ud) => ud,
            Err(slot) => {
                if let Slot::Waiting(w) = slot {
                    self.discard(w);
                }
                return Err(too_many_ops());
            }
        };
        // SAFETY: forwarded from the caller.
        if let Err(e) = unsafe { self.push_raw(ud, op, timeout) } {
            if let Some(Slot::Waiting(w)) = self.remove(ud) {
                self.discard(w);
            }
            return Err(e);
        }
        self.submitted();
        Ok(ud)
    }

    /// The result of op `ud` if it has completed (its slot is freed), else whether the op
    /// waits for this poller (`task`, a task of this ring's executor, or else `waker`).
    /// A waiting op polled by a task of this ring now names it; one polled by anyone else
    /// whose waker it does not hold asks for it ([`Polled::NeedsWaker`]: cloning a waker is
    /// user code, done after the borrow). `Err` when the ring was dropped while the kernel
    /// still had the op: it is leaked.
    #[inline]
    pub(crate) fn poll_op(
        &mut self,
        ud: u64,
        task: Option<usize>,
        waker: &Waker,
    ) -> Result<Polled, Lost> {
        let closed = self.closed;
        let Driver {
            slots,
            books,
            later,
            ..
        } = self;
        let (key, generation) = user_data::split_op(ud);
        match slots.get_mut(key, generation) {
            Some(Slot::Waiting(w) | Slot::Partial { waiter: w, .. }) => {
                if w.matches(task, waker) {
                    return Ok(Polled::Pending);
                }
                let Some(t) = task else {
                    return Ok(Polled::NeedsWaker);
                };
                let old = std::mem::replace(w, Waiter::Task(t));
                wakers::discard(books.own, old, later);
                Ok(Polled::Pending)
            }
            Some(&mut Slot::Done { res, flags }) => {
                // A `Done` slot owns nothing: forgetting it skips `Slot`'s drop glue.
                std::mem::forget(slots.remove(key));
                Ok(Polled::Ready(res, flags))
            }
            // A live op's slot is never anything else (only its own drop orphans it), unless
            // the ring was dropped and its drain timed out: the op is then leaked, never
            // handed back (the kernel may still use its memory).
            _ if closed => Err(Lost),
            _ => Ok(Polled::Pending),
        }
    }

    /// Op `ud`, still waiting, is to wake `waker` (cloned by [`Polled::NeedsWaker`]'s caller);
    /// its previous waiter is given up. `Err` hands `waker` back if the op no longer waits
    /// (it completed meanwhile): the caller drops it after the borrow and polls again.
    pub(crate) fn set_waker(&mut self, ud: u64, waker: Waker) -> Result<(), Waker> {
        match self.slot_mut(ud) {
            Some(Slot::Waiting(w) | Slot::Partial { waiter: w, .. }) => {
                let old = std::mem::replace(w, Waiter::Waker(waker));
                self.discard(old);
                Ok(())
            }
            _ => Err(waker),
        }
    }

    /// The future of op `ud` was dropped. Its data moves into the slot (and a cancel is
    /// queued) while the kernel may still use it; if it had finished, it is handed back.
    pub(crate) fn drop_op(&mut self, ud: u64, data: Box<dyn Orphan>) -> Dropped {
        match self.slot_mut(ud) {
            Some(&mut Slot::Done { res, flags }) => {
                self.remove(ud);
                // A provided buffer nobody will read: give it back.
                if let Some(bid) = buffer_id(flags) {
                    self.recycle_buffer(bid);
                }
                Dropped::Finished(data, res, flags)
            }
            Some(slot @ (Slot::Waiting(_) | Slot::Partial { .. })) => {
                if let Slot::Waiting(w) | Slot::Partial { waiter: w, .. } =
                    std::mem::replace(slot, Slot::Orphan(data))
                {
                    self.discard(w);
                }
                self.cancel(ud);
                Dropped::Orphaned
            }
            // Unreachable for a live op; keeping the data is the safe answer.
            _ => {
                std::mem::forget(data);
                Dropped::Orphaned
            }
        }
    }

    /// Queues a multishot op on `fd` (accept, or recv over provided-buffer group `bgid`);
    /// the slot holds a clone of `fd` until the op's final completion.
    pub(crate) fn push_multishot(
        &mut self,
        kind: MultiKind,
        fd: &SharedFd,
        waker: &Waker,
    ) -> io::Result<u64> {
        if self.closed {
            return Err(ring_gone());
        }
        let hdr =
            matches!(kind, MultiKind::RecvMsg { .. }).then(crate::kernel::msghdr::MultiHdr::new);
        let op = match kind {
            MultiKind::Accept => OpKind::AcceptMulti { fd: fd.raw() },
            MultiKind::Recv { bgid, bundle } => OpKind::RecvMulti {
                fd: fd.raw(),
                bgid,
                bundle,
            },
            MultiKind::RecvMsg { bgid } => OpKind::RecvMsgMulti {
                fd: fd.raw(),
                msg: hdr.as_ref().map_or(std::ptr::null(), |h| h.ptr()),
                bgid,
            },
        };
        let state = MultiState {
            kind,
            held: Some(Held {
                _fd: fd.clone(),
                _hdr: hdr,
            }),
            queue: VecDeque::new(),
            wakers: vec![waker.clone()],
            finished: false,
        };
        let ud = match self.insert(Slot::Multi(Box::new(state))) {
            Ok(ud) => ud,
            Err(slot) => {
                if let Slot::Multi(m) = slot {
                    self.later.extend(m.wakers.into_iter().map(Later::Drop));
                }
                return Err(too_many_ops());
            }
        };
        // SAFETY: multishot accept and recv carry no pointers; recvmsg's header is boxed (its
        // address does not move) and, like the fd they name, held by the slot until the final
        // completion (`Held`, moved into the orphan slot if the reader goes first).
        if let Err(e) = unsafe { self.push_raw(ud, op, None) } {
            if let Some(Slot::Multi(m)) = self.remove(ud) {
                self.later.extend(m.wakers.into_iter().map(Later::Drop));
            }
            return Err(e);
        }
        self.submitted();
        Ok(ud)
    }

    /// The next completion of live multishot op `ud`, freeing its slot once it has ended and
    /// been read to the end.
    pub(crate) fn next_multishot(&mut self, ud: u64, waker: &Waker) -> MultiNext {
        let Some(Slot::Multi(m)) = self.slot_mut(ud) else {
            return MultiNext::Ended; // not ours (never, for a reader that checked its ring)
        };
        match m.queue.pop_front() {
            Some((res, flags)) => {
                let last = m.finished && m.queue.is_empty();
                if last {
                    self.remove(ud);
                }
                MultiNext::Item { res, flags, last }
            }
            None if m.finished => {
                self.remove(ud);
                MultiNext::Ended
            }
            None => {
                if !m.wakers.iter().any(|w| w.will_wake(waker)) {
                    m.wakers.push(waker.clone());
                }
                MultiNext::Pending
            }
        }
    }

    /// The kind of live multishot op `ud` (`None`: not a live multishot op of this ring).
    pub(crate) fn multishot_kind(&mut self, ud: u64) -> Option<MultiKind> {
        match self.slot_mut(ud) {
            Some(Slot::Multi(m)) => Some(m.kind),
            _ => None,
        }
    }

    /// Nobody will read multishot op `ud` any more: release what its queued completions hold,
    /// then free the slot if the op has ended, else cancel it and release the rest as it comes.
    pub(crate) fn abandon_multi(&mut self, ud: u64) {
        let Some(Slot::Multi(m)) = self.slot_mut(ud) else {
            return;
        };
        let (kind, finished, held) = (m.kind, m.finished, m.held.take());
        let queue = std::mem::take(&mut m.queue);
        let wakers = std::mem::take(&mut m.wakers);
        for (res, flags) in queue {
            release(kind, res, flags, &mut self.books.recycle);
        }
        self.later.extend(wakers.into_iter().map(Later::Drop));
        if finished {
            self.remove(ud);
        } else if let Some(slot) = self.slot_mut(ud) {
            // `held` is taken only here, once per live slot; no panic on the drop path.
            if let Some(held) = held {
                *slot = Slot::MultiOrphan(kind, held);
            }
            self.cancel(ud);
        }
        self.recycle_pending();
    }

    fn recycle_pending(&mut self) {
        let bids = self.books.recycle.drain(..);
        if let Some(u) = self.backend.as_uring_mut() {
            bids.for_each(|(bid, len)| u.recycle_run(bid, len));
        }
    }

    /// Asks the backend to cancel `ud`; the op still completes once.
    pub(crate) fn cancel(&mut self, ud: u64) {
        for _ in 0..4 {
            if self.backend.cancel(ud).is_ok() {
                // A cancel that had to reach the kernel now, but whose enter failed (a CQ
                // overflow, EAGAIN): a turn reaps, then submits it.
                if self
                    .backend
                    .as_uring_mut()
                    .is_some_and(|u| u.take_unsent_cancel())
                {
                    let _ = self.turn(false, None);
                }
                break;
            }
            if self.turn(false, None).is_err() {
                break;
            }
        }
        if let Some(w) = self.submit_waker.take() {
            self.later.push(Later::Wake(w));
        }
    }

    /// Does the work drop hooks and orphaned completions left (see [`Chore`]).
    #[inline]
    pub(crate) fn do_chores(&mut self) {
        if !self.chores.is_empty() {
            self.do_chores_now();
        }
    }

    #[cold]
    fn do_chores_now(&mut self) {
        let chores = match self.chores.queue.try_borrow_mut() {
            Ok(mut q) if !q.is_empty() => std::mem::take(&mut *q),
            _ => return,
        };
        for chore in chores {
            match chore {
                Chore::Abandon { ud, leftover } => {
                    if let Some((bid, len)) = leftover {
                        self.recycle_run(bid, len);
                    }
                    if let Some(ud) = ud {
                        self.abandon_multi(ud);
                    }
                }
                Chore::ReleaseFile(slot) => self.release_file(slot),
                Chore::Recycle(bid) => self.recycle_buffer(bid),
                Chore::Dropped(ud, orphan) => {
                    if let Dropped::Finished(o, res, flags) = self.drop_op(ud, orphan) {
                        self.later.push(Later::Complete(o, res, flags));
                    }
                }
            }
        }
    }

    /// One driver turn: submit, optionally block until something completes, and deliver every
    /// available completion to its slot. EBUSY (CQ overflow) is resolved by reaping first.
    /// Never blocks while user code waits to run (`later`).
    pub(crate) fn turn(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        self.do_chores();
        let wait = wait && self.later.is_empty() && self.books.woken.is_empty();
        let Driver {
            backend,
            slots,
            books,
            mailbox,
            later,
            ..
        } = self;
        let mut sink = |ud, res, flags| complete(slots, books, later, ud, res, flags);
        let mut tries = 0;
        loop {
            match backend.turn(wait, timeout) {
                Ok(()) => break,
                Err(e) if transient(&e) && tries < 64 => {
                    backend.reap(&mut sink);
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
        backend.reap(&mut sink);
        let own = books.own;
        if !books.arrivals.is_empty() {
            for w in mailbox.land(&mut books.arrivals) {
                wakers::wake(own, w, later);
            }
        }
        if backend
            .as_uring_mut()
            .is_some_and(|u| u.take_doorbells() > 0)
        {
            for w in mailbox.ring_doorbell() {
                wakers::wake(own, w, later);
            }
        }
        self.recycle_pending();
        // Cancel again what a linked timeout missed; if the SQ is full, the next turn retries.
        while let Some(ud) = self.books.recancel.pop() {
            if self.backend.recancel(ud).is_err() {
                self.books.recancel.push(ud);
                break;
            }
        }
        Ok(())
    }

    /// Number of operations the kernel may still be working on.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, _, slot)| match slot {
                Slot::Done { .. } => false,
                Slot::Multi(m) => !m.finished,
                _ => true,
            })
            .count()
    }

    /// Cancels everything and waits (bounded) for the kernel to finish with it. Whatever is still
    /// in flight afterwards is leaked, never freed: the kernel may still write into it. The
    /// completed orphans' user code is left in `later` for the caller to run.
    pub(crate) fn shutdown(&mut self) {
        if std::mem::replace(&mut self.shut_down, true) {
            return;
        }
        self.do_chores();
        let uds: Vec<(u64, bool)> = self
            .slots
            .iter()
            .map(|(k, generation, slot)| {
                (
                    user_data::for_op(k, generation),
                    matches!(slot, Slot::Multi(_)),
                )
            })
            .collect();
        for (ud, multi) in uds {
            match self.slot_mut(ud) {
                // Queued accepts are closed, later ones as they come.
                _ if multi => self.abandon_multi(ud),
                Some(Slot::Waiting(_) | Slot::Partial { .. } | Slot::Orphan(_)) => self.cancel(ud),
                _ => {}
            }
        }
        let deadline = Instant::now().checked_add(self.drain_timeout);
        while self.in_flight() > 0 {
            let left = deadline.map_or(Duration::from_millis(50), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                break;
            }
            if self
                .turn(true, Some(left.min(Duration::from_millis(50))))
                .is_err()
            {
                break;
            }
        }
        // Waiters of ops still in flight stay in their slots: leaked with them, or dropped
        // with the driver (no borrow is held then).
        let left = self.leak_in_flight();
        if left > 0 {
            tracing::warn!(
                operations = left,
                "ring dropped with operations the kernel did not finish; leaking their buffers"
            );
        }
    }

    /// The owning `Ring` is being dropped: cancel and drain (or leak) everything, then drop the
    /// backend, which closes the ring's fds. Later pushes fail with `BrokenPipe`.
    pub(crate) fn close(&mut self) {
        self.shutdown();
        self.leak_in_flight();
        let kind = self.backend.kind();
        self.backend = AnyBackend::Closed(crate::backend::Closed(kind));
        self.closed = true;
        self.chores.closed.set(true);
        // An external loop (tokio) parked on the ring's fd must notice.
        if let Some(w) = self.submit_waker.take() {
            self.later.push(Later::Wake(w));
        }
    }

    /// If the kernel may still use any op's memory, leaks every slot and the backend's
    /// kernel-visible memory (never frees it); the number of such ops.
    fn leak_in_flight(&mut self) -> usize {
        let left = self.in_flight();
        if left > 0 {
            self.backend.leak_on_drop();
            for slot in self.slots.drain() {
                std::mem::forget(slot);
            }
        }
        left
    }

    // Typed access to the backend for the enhanced APIs (none of these runs user code).

    pub(crate) fn chores(&self) -> &Chores {
        &self.chores
    }

    pub(crate) fn offers(&self, feature: crate::Feature) -> bool {
        self.backend.offers(feature)
    }

    pub(crate) fn wants_nonblocking(&self) -> bool {
        self.backend.wants_nonblocking()
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn pollable_fd(&self) -> std::os::fd::RawFd {
        self.backend.pollable_fd()
    }

    pub(crate) fn register_ring_fd(&mut self) -> io::Result<u32> {
        self.uring(crate::Feature::RegisteredRingFd)?
            .register_ring_fd()
    }

    /// The io_uring backend for a call only it makes; else why not (the feature unsupported on
    /// this backend, or `BrokenPipe` for a dropped ring).
    fn uring(&mut self, f: crate::Feature) -> io::Result<&mut crate::backend::IoUringBackend> {
        let kind = self.backend.kind();
        let closed = self.backend.is_closed();
        self.backend.as_uring_mut().ok_or_else(|| match closed {
            true => io::ErrorKind::BrokenPipe.into(),
            false => crate::SaferRingError::unsupported(f, kind).into(),
        })
    }

    /// Sets the waker of an external event loop driving the ring (tokio).
    #[cfg(feature = "tokio")]
    pub(crate) fn set_submit_waker(&mut self, waker: &Waker) {
        if let Some(old) = self.submit_waker.replace(waker.clone()) {
            self.later.push(Later::Drop(old));
        }
    }

    /// The provided-buffer group for receives, created on first use (incrementally consumed
    /// if `incremental` and the kernel agrees).
    pub(crate) fn buffer_group(&mut self, incremental: bool) -> Option<crate::backend::BufGroup> {
        self.backend.as_uring_mut()?.buffer_group(incremental)
    }

    /// Bytes `from..to` of provided buffer `bid`; empty for a buffer the kernel has not
    /// handed to this ring (or that was recycled since).
    pub(crate) fn chunk(&self, bid: u16, from: u32, to: u32) -> &[u8] {
        self.backend
            .as_uring()
            .map_or(&[], |u| u.chunk(bid, from as usize, to as usize))
    }

    /// Lends bytes `from..to` of provided buffer `bid` to a holder outside the driver, which
    /// gives it back with [`Chore::Recycle`]; `None` for a buffer not out to this ring.
    pub(crate) fn lend(&self, bid: u16, from: u32, to: u32) -> Option<crate::backend::Lent> {
        self.backend
            .as_uring()?
            .lend(bid, from as usize, to as usize)
    }

    /// Hands provided buffer `bid` back to the kernel.
    pub(crate) fn recycle_buffer(&mut self, bid: u16) {
        if let Some(u) = self.backend.as_uring_mut() {
            u.recycle_buffer(bid);
        }
    }

    /// Hands back every buffer of a completion's `len` bytes from the start of `bid` on.
    pub(crate) fn recycle_run(&mut self, bid: u16, len: u32) {
        if let Some(u) = self.backend.as_uring_mut() {
            u.recycle_run(bid, len);
        }
    }

    /// The buffer after `bid` in the bundle completion that handed both to this ring.
    pub(crate) fn next_buffer(&self, bid: u16) -> Option<u16> {
        self.backend.as_uring().and_then(|u| u.next_buffer(bid))
    }

    /// Provided buffers handed to this ring and not yet given back.
    pub(crate) fn buffers_out(&self) -> usize {
        self.backend.as_uring().map_or(0, |u| u.buffers_out())
    }

    /// Registers this ring's file table for native fd passing (once); whether it has one.
    pub(crate) fn enable_fd_passing(&mut self) -> bool {
        self.backend
            .as_uring_mut()
            .is_some_and(|u| u.enable_fd_passing())
    }

    /// Registers `pool`'s buffers with the kernel.
    pub(crate) fn register_buffers(
        &mut self,
        pool: &std::rc::Rc<crate::buf::FixedShared>,
    ) -> io::Result<()> {
        self.uring(crate::Feature::RegisteredBuffers)?
            .register_buffers(pool)
    }

    /// Whether this ring registered `pool`.
    pub(crate) fn has_buffers(&self, pool: &std::rc::Rc<crate::buf::FixedShared>) -> bool {
        self.backend.as_uring().is_some_and(|u| u.has_buffers(pool))
    }

    /// Stages `fd` in the file table for IORING_MSG_SEND_FD.
    pub(crate) fn stage_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<u32> {
        self.uring(crate::Feature::MsgRingSendFd)?.stage_fd(fd)
    }

    /// Puts `fd` into a user slot of this ring's file table (`Ring::register_file`).
    pub(crate) fn register_file(&mut self, fd: BorrowedFd<'_>) -> io::Result<u32> {
        use std::os::fd::AsRawFd;
        self.uring(crate::Feature::RegisteredFiles)?
            .register_user_file(fd.as_raw_fd())
    }

    /// Whether this ring registered its file table (a refusal is remembered as none).
    pub(crate) fn has_file_table(&self) -> bool {
        self.backend.as_uring().is_some_and(|u| u.has_file_table())
    }

    pub(crate) fn release_file(&mut self, slot: u32) {
        if let Some(u) = self.backend.as_uring_mut() {
            u.release_file(slot);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Normally done by `Ring::drop`; here when that was cut short by a panic (maybe inside
        // `shutdown` itself, from a tracing subscriber). The kernel must be finished with every
        // op before the slab's memory goes, else it is leaked.
        self.shutdown();
        self.leak_in_flight();
        if std::thread::panicking() {
            // User code must not run while unwinding: leak what it would have dropped.
            std::mem::forget(std::mem::take(&mut self.later));
        }
    }
}

/// Whether the ring an I/O object's multishot state names is gone (dropped, or closed while
/// `RingRef`s keep its state alive): the state is stale.
pub(crate) fn ring_gone_for(w: &Weak<ChoreQueue>) -> bool {
    w.upgrade().is_none_or(|q| q.is_closed())
}

/// Identifies the ring behind `chores` for I/O objects holding a `Weak` to it.
pub(crate) fn same_ring(a: &Weak<ChoreQueue>, b: &Chores) -> bool {
    std::ptr::eq(a.as_ptr(), Rc::as_ptr(b))
}

#[cfg(test)]
mod tests {
    use super::{Books, Slot, Slots, Waiter, complete_tagged};
    use crate::kernel::user_data::{self, LINK_TAG, RECANCEL_TAG};

    /// The common op carries its rare parts (deadline, input error) behind one pointer: four
    /// words (was five with them inline), moved by every caller that stores or awaits it.
    #[test]
    fn an_op_is_four_words() {
        let size = std::mem::size_of::<super::op::Op<'static, crate::ops::Nop>>();
        assert_eq!(size, 4 * std::mem::size_of::<usize>());
    }

    /// One waiting op in slot 0, generation 3; its `user_data`.
    fn one_op() -> (Slots, u64) {
        let mut slots = Slots::with_capacity(1);
        let key = slots.insert(3, Slot::Waiting(Waiter::Task(0)));
        (slots, user_data::for_op(key, 3))
    }

    #[test]
    fn a_missed_cancel_is_repeated_until_found_while_the_op_waits() {
        let (mut slots, op) = one_op();
        let mut books = Books::default();
        // The timer missed the op (not there, or running): cancel again.
        for res in [-libc::ENOENT, -libc::EALREADY] {
            complete_tagged(&slots, &mut books, LINK_TAG | op, res);
            assert_eq!(books.recancel.drain(..).collect::<Vec<_>>(), [op]);
        }
        // A timer that cancelled it, or a stale op's timer (another generation): nothing.
        complete_tagged(&slots, &mut books, LINK_TAG | op, -libc::ETIME);
        complete_tagged(
            &slots,
            &mut books,
            LINK_TAG | user_data::for_op(0, 4),
            -libc::ENOENT,
        );
        assert!(books.recancel.is_empty());
        // The repeat missed again: and again, until it finds the op; a running op (EALREADY)
        // was interrupted and ends by itself.
        complete_tagged(&slots, &mut books, RECANCEL_TAG | op, -libc::ENOENT);
        assert_eq!(books.recancel.drain(..).collect::<Vec<_>>(), [op]);
        for res in [0, -libc::EALREADY] {
            complete_tagged(&slots, &mut books, RECANCEL_TAG | op, res);
            assert!(books.recancel.is_empty(), "{res}");
        }
        // A zero-copy send with its result, waiting for the buffer: no cancel finds it, and
        // repeating would spin until the network lets go of the data.
        *slots.get_mut(0, 3).unwrap() = Slot::Partial {
            res: 8,
            waiter: Waiter::Task(0),
        };
        complete_tagged(&slots, &mut books, RECANCEL_TAG | op, -libc::ENOENT);
        assert!(books.recancel.is_empty());
        // Once the op has completed, a late miss repeats nothing.
        *slots.get_mut(0, 3).unwrap() = Slot::Done { res: 0, flags: 0 };
        complete_tagged(&slots, &mut books, RECANCEL_TAG | op, -libc::ENOENT);
        assert!(books.recancel.is_empty());
    }
}
