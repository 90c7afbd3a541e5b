//! Driver core: the slab of in-flight operations, orphans, and the submission policy.

pub(crate) mod executor;
pub(crate) mod op;
mod wakers;

use std::io;
use std::task::Waker;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use slab::Slab;

use crate::backend::{AnyBackend, Backend, LinkTimeout, OpKind};
use crate::config::SubmitPolicy;

/// State of one in-flight operation, indexed by its `user_data`.
pub(crate) enum Slot {
    /// Pushed; the future (if still alive) waits for the completion.
    Waiting(usize),
    /// First of two completions (zero-copy send: result, then buffer-release notification):
    /// the result is kept, the buffer stays with the kernel until the second arrives.
    Partial { res: i32, waker: usize },
    /// The completion arrived and waits for the future's next poll.
    Done { res: i32, flags: u32 },
    /// The future was dropped; the slot owns its data until the kernel is done with it.
    Orphan(Box<dyn Orphan>),
    /// A multishot op: completions queue up until its stream takes them; `finished` once a
    /// completion came without IORING_CQE_F_MORE.
    Multi(Box<MultiState>),
    /// A multishot op nobody reads any more: what each completion still produces is released
    /// (see [`MultiKind`]); the slot goes with the final completion.
    MultiOrphan(MultiKind),
}

/// What a multishot op's completions hold, so an abandoned one can release it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum MultiKind {
    /// Accepted fds: closed.
    Accept,
    /// Provided buffers: recycled unread.
    Recv,
}

/// Releases what one completion of an abandoned multishot op of `kind` holds.
fn release(kind: MultiKind, res: i32, flags: u32, recycle: &mut Vec<u16>) {
    match kind {
        MultiKind::Accept if res >= 0 => drop(crate::backend::sys::own_fd(res)),
        MultiKind::Recv if flags & CQE_F_BUFFER != 0 => recycle.push((flags >> 16) as u16),
        _ => {}
    }
}

/// Queue of a live multishot op.
#[derive(Default)]
pub(crate) struct MultiState {
    pub(crate) queue: std::collections::VecDeque<(i32, u32)>,
    pub(crate) waker: Option<Waker>,
    pub(crate) finished: bool,
}

const CQE_F_MORE: u32 = 1 << 1;
const CQE_F_BUFFER: u32 = 1 << 0;

/// What the reader of a multishot op gets next; see [`Driver::next_multishot`].
pub(crate) enum MultiNext {
    /// A completion; `last`: the op ended with it and its slot is freed (re-arm for more).
    Item { res: i32, flags: u32, last: bool },
    /// The op ended with nothing left to read; its slot is freed (re-arm for more).
    Ended,
    /// Nothing yet; the waker is registered.
    Pending,
}

/// Whether a completion says more will follow for the same multishot op.
pub(crate) fn more(flags: u32) -> bool {
    flags & CQE_F_MORE != 0
}

/// Owner of a dropped operation's memory; told the result so it can release what the kernel
/// produced (e.g. close an accepted fd).
pub(crate) trait Orphan {
    fn complete(self: Box<Self>, res: i32, flags: u32);
}

/// Work left for the next turn by code that cannot borrow the driver (drop hooks, the
/// completions of orphaned ops).
pub(crate) enum Chore {
    /// A socket with a multishot recv was dropped: (slot key, buffer it was still reading).
    AbandonRecv(usize, Option<u16>),
    /// A registered-file slot to empty: a sent fd's staging slot, or an installed arrival.
    ReleaseFile(u32),
}

pub(crate) type Chores = std::rc::Rc<std::cell::RefCell<Vec<Chore>>>;

/// What the driver tracks per op besides its slot.
#[derive(Default)]
pub(crate) struct Books {
    /// Ops with a linked timeout: key -> sequence number of that timeout.
    links: HashMap<usize, u32>,
    /// Ops whose linked timeout fired without finding them (ENOENT race): cancel again.
    recancel: Vec<usize>,
    /// Provided buffers of dropped receives, to hand back after the reap.
    recycle: Vec<u16>,
    /// Wakers of the ops in `Waiting`/`Partial` slots.
    pub(crate) wakers: wakers::Wakers,
    /// Fds passed to this ring with MSG_RING: (message sequence, file-table slot or -errno).
    arrivals: Vec<(u64, i32)>,
}

pub(crate) struct Driver {
    pub(crate) backend: AnyBackend,
    pub(crate) slots: Slab<Slot>,
    policy: SubmitPolicy,
    drain_timeout: Duration,
    /// Set while an external event loop (tokio) drives the ring: woken when work is queued.
    pub(crate) submit_waker: Option<Waker>,
    /// Per-op bookkeeping next to the slab (links, re-cancels, buffers, wakers).
    pub(crate) books: Books,
    /// Filled by drop hooks and orphaned completions, drained every turn.
    pub(crate) chores: Chores,
    next_link: u32,
    /// Messages posted to this ring (MSG_RING doorbells wake its receiver).
    pub(crate) mailbox: std::sync::Arc<crate::enhanced::Mailbox>,
}

/// A completion whose `user_data` carries a tag (see `backend::TAGS`): not an op's own.
#[cold]
fn complete_tagged(books: &mut Books, ud: u64, res: i32) {
    if let Some(seq) = crate::backend::parse_msg_fd(ud) {
        books.arrivals.push((seq, res));
    } else if let Some((key, seq)) = crate::backend::parse_link(ud) {
        // The timer fired but the kernel could not find the op to cancel (it was between
        // issue and arming: -ENOENT), or found it running (-EALREADY): cancel it again.
        if (res == -libc::ENOENT || res == -libc::EALREADY) && books.links.get(&key) == Some(&seq) {
            books.recancel.push(key);
        }
    }
}

fn complete(slots: &mut Slab<Slot>, books: &mut Books, ud: u64, res: i32, flags: u32) {
    if ud & crate::backend::TAGS != 0 {
        return complete_tagged(books, ud, res);
    }
    let key = ud as usize;
    if !books.links.is_empty() {
        books.links.remove(&key);
    }
    let Some(slot) = slots.get_mut(key) else {
        tracing::error!(user_data = ud, "completion for an unknown operation");
        return;
    };
    match slot {
        Slot::Waiting(w) if more(flags) => {
            *slot = Slot::Partial { res, waker: *w };
        }
        Slot::Waiting(w) => {
            let w = *w;
            *slot = Slot::Done { res, flags };
            books.wakers.wake_release(w);
        }
        Slot::Partial { res: first, waker } => {
            let w = *waker;
            *slot = Slot::Done { res: *first, flags };
            books.wakers.wake_release(w);
        }
        // Not the last completion of a dropped two-completion op: keep its memory.
        Slot::Orphan(_) if more(flags) => {}
        // A dropped receive still got a provided buffer: give it back unread.
        Slot::Orphan(_) if flags & CQE_F_BUFFER != 0 => {
            books.recycle.push((flags >> 16) as u16);
            slots.remove(key);
        }
        Slot::Done { .. } => tracing::error!(user_data = ud, "second completion for a one-shot op"),
        Slot::Orphan(_) => {
            if let Slot::Orphan(o) = slots.remove(key) {
                o.complete(res, flags);
            }
        }
        Slot::Multi(m) => {
            m.queue.push_back((res, flags));
            m.finished |= !more(flags);
            if let Some(w) = m.waker.take() {
                w.wake();
            }
        }
        Slot::MultiOrphan(kind) => {
            release(*kind, res, flags, &mut books.recycle);
            if !more(flags) {
                slots.remove(key);
            }
        }
    }
}

impl Driver {
    pub(crate) fn new(
        backend: AnyBackend,
        policy: SubmitPolicy,
        drain_timeout: Duration,
        mailbox: std::sync::Arc<crate::enhanced::Mailbox>,
    ) -> Driver {
        Driver {
            mailbox,
            backend,
            slots: Slab::with_capacity(256),
            policy,
            drain_timeout,
            submit_waker: None,
            books: Books::default(),
            chores: Default::default(),
            next_link: 0,
        }
    }

    /// Takes a slot and queues `op` under it. On error nothing stays queued.
    pub(crate) fn push(
        &mut self,
        op: OpKind,
        timeout: Option<&LinkTimeout>,
        waker: &Waker,
    ) -> io::Result<usize> {
        let id = self.books.wakers.acquire(waker);
        let key = self.slots.insert(Slot::Waiting(id));
        if let Some(t) = timeout {
            self.next_link = self.next_link.wrapping_add(1) & 0xff_ffff;
            t.link_ud
                .set(crate::backend::link_user_data(key, self.next_link));
            self.books.links.insert(key, self.next_link);
        }
        loop {
            match self.backend.push(key as u64, op, timeout) {
                Ok(()) => break,
                Err(_full) => {
                    // No room in the SQ: hand what is queued to the kernel, then retry.
                    if let Err(e) = self.turn(false) {
                        self.slots.remove(key);
                        return Err(e);
                    }
                }
            }
        }
        if self.policy == SubmitPolicy::Eager {
            self.turn(false)?;
        } else if let Some(w) = self.submit_waker.take() {
            w.wake();
        }
        Ok(key)
    }

    /// Queues a multishot op (accept, recv) whose completions collect in a `Slot::Multi`.
    pub(crate) fn push_multishot(&mut self, op: OpKind, waker: &Waker) -> io::Result<usize> {
        let key = self.slots.insert(Slot::Multi(Box::new(MultiState {
            waker: Some(waker.clone()),
            ..MultiState::default()
        })));
        while self.backend.push(key as u64, op, None).is_err() {
            if let Err(e) = self.turn(false) {
                self.slots.remove(key);
                return Err(e);
            }
        }
        if let Some(w) = self.submit_waker.take() {
            w.wake();
        }
        Ok(key)
    }

    /// The next completion of live multishot op `key`, freeing its slot once it has ended and
    /// been read to the end.
    pub(crate) fn next_multishot(&mut self, key: usize, waker: &Waker) -> MultiNext {
        let Some(Slot::Multi(m)) = self.slots.get_mut(key) else {
            unreachable!("a live multishot reader owns its slot")
        };
        match m.queue.pop_front() {
            Some((res, flags)) => {
                let last = m.finished && m.queue.is_empty();
                if last {
                    self.slots.remove(key);
                }
                MultiNext::Item { res, flags, last }
            }
            None if m.finished => {
                self.slots.remove(key);
                MultiNext::Ended
            }
            None => {
                m.waker = Some(waker.clone());
                MultiNext::Pending
            }
        }
    }

    /// Does the work drop hooks and orphaned completions left (see [`Chore`]).
    pub(crate) fn do_chores(&mut self) {
        let chores = std::mem::take(&mut *self.chores.borrow_mut());
        for chore in chores {
            match chore {
                Chore::AbandonRecv(key, leftover) => {
                    if let Some(bid) = leftover {
                        self.backend.recycle_buffer(bid);
                    }
                    self.abandon_multi(key, MultiKind::Recv);
                }
                Chore::ReleaseFile(slot) => self.backend.release_file(slot),
            }
        }
    }

    /// Nobody will read multishot op `key` any more: release what its queued completions hold,
    /// then free the slot if the op has ended, else cancel it and release the rest as it comes.
    pub(crate) fn abandon_multi(&mut self, key: usize, kind: MultiKind) {
        let finished = match self.slots.get_mut(key) {
            Some(Slot::Multi(m)) => {
                for (res, flags) in m.queue.drain(..) {
                    release(kind, res, flags, &mut self.books.recycle);
                }
                m.finished
            }
            _ => return,
        };
        for bid in self.books.recycle.drain(..) {
            self.backend.recycle_buffer(bid);
        }
        if finished {
            self.slots.remove(key);
        } else {
            self.slots[key] = Slot::MultiOrphan(kind);
            self.cancel(key);
        }
    }

    /// Asks the backend to cancel `key`; the op still completes once.
    pub(crate) fn cancel(&mut self, key: usize) {
        while self.backend.cancel(key as u64).is_err() {
            if self.turn(false).is_err() {
                break;
            }
        }
        if let Some(w) = self.submit_waker.take() {
            w.wake();
        }
    }

    /// One driver turn: submit, optionally block until something completes, and deliver every
    /// available completion to its slot. EBUSY (CQ overflow) is resolved by reaping first.
    pub(crate) fn turn(&mut self, wait: bool) -> io::Result<()> {
        self.turn_timeout(wait, None)
    }

    pub(crate) fn turn_timeout(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        if !self.chores.borrow().is_empty() {
            self.do_chores();
        }
        let Driver {
            backend,
            slots,
            books,
            mailbox,
            ..
        } = self;
        let mut sink = |ud, res, flags| complete(slots, books, ud, res, flags);
        let mut tries = 0;
        loop {
            match backend.turn(wait, timeout) {
                Ok(()) => break,
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EAGAIN))
                        && tries < 64 =>
                {
                    backend.reap(&mut sink);
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
        backend.reap(&mut sink);
        for bid in books.recycle.drain(..) {
            backend.recycle_buffer(bid);
        }
        if !books.arrivals.is_empty() {
            mailbox.land(&mut books.arrivals);
        }
        if backend.take_doorbells() > 0 {
            mailbox.ring_doorbell();
        }
        // Cancel again what a linked timeout missed; if the SQ is full, the next turn retries.
        while let Some(key) = books.recancel.pop() {
            if backend.cancel(key as u64).is_err() {
                books.recancel.push(key);
                break;
            }
        }
        // Orphans completed in this reap may have left chores (a staged fd's slot to empty):
        // do them now rather than at a next turn that may be far off.
        if !self.chores.borrow().is_empty() {
            self.do_chores();
        }
        Ok(())
    }

    /// Number of operations the kernel may still be working on.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, s)| match s {
                Slot::Done { .. } => false,
                Slot::Multi(m) => !m.finished,
                _ => true,
            })
            .count()
    }

    /// Cancels everything and waits (bounded) for the kernel to finish with it. Whatever is still
    /// in flight afterwards is leaked, never freed: the kernel may still write into it.
    pub(crate) fn shutdown(&mut self) {
        let keys: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, s)| !matches!(s, Slot::Done { .. }))
            .map(|(k, _)| k)
            .collect();
        for k in keys {
            self.cancel(k);
        }
        let deadline = Instant::now() + self.drain_timeout;
        while self.in_flight() > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if self
                .turn_timeout(true, Some((deadline - now).min(Duration::from_millis(50))))
                .is_err()
            {
                break;
            }
        }
        let left = self.in_flight();
        if left > 0 {
            self.backend.leak_on_drop();
            tracing::warn!(
                operations = left,
                "ring dropped with operations the kernel did not finish; leaking their buffers"
            );
            for slot in self.slots.drain() {
                std::mem::forget(slot);
            }
        }
    }
}
