//! The multishot stream state machine, once: arm a multishot op on an I/O object (unless one is
//! armed there already), hand out its completions, re-arm when the kernel ends it, take the
//! fallback's single ops where native is off or refused, apply the first-completion error rule,
//! and abandon the op on drop. `accept_multiple` and `recv_from_multiple` are two [`Shots`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::engine::Verdict;
use super::stats::PathTaken;
use crate::RingRef;
use crate::driver::{Driver, MultiKind, MultiNext, budget, ring_gone_for};
use crate::features::Feature;
use crate::io::{Armed, AsIoFd};

/// What one kind of multishot stream supplies; the rest is [`MultishotStream`]'s.
pub(crate) trait Shots<'r> {
    type Item;
    /// The fallback's one op in flight.
    type Single: Future + Unpin + 'r;
    /// The feature whose native path is the multishot op.
    const FEATURE: Feature;
    /// The op's name in log lines ("multishot accept").
    const OP: &'static str;
    /// The object the op is armed on (its fd and its per-object multishot state).
    fn io(&self) -> &'r dyn AsIoFd;
    /// Refuses an object of the wrong kind before anything is taken, on every path.
    fn check(&self) -> io::Result<()>;
    /// The op to arm now, `None` for the fallback (not native on this ring, or no buffers).
    fn native(&self, ring: &RingRef) -> Option<MultiKind>;
    /// Starts one fallback op.
    fn single(&mut self, ring: &'r RingRef) -> Self::Single;
    /// A finished fallback op's item (its error, `TimedOut` from the configured bound
    /// included, is yielded as is).
    fn finish(&mut self, out: <Self::Single as Future>::Output) -> io::Result<Self::Item>;
    /// A successful completion's item (`res >= 0`), with the driver borrowed: crate code only.
    fn decode(
        &mut self,
        ring: &RingRef,
        d: &mut Driver,
        res: i32,
        flags: u32,
    ) -> io::Result<Self::Item>;
}

enum State<S> {
    Idle,
    Native {
        ud: u64,
        since: Instant,
        /// Items this arming yielded: the error rule applies to a first completion only, and
        /// an ENOBUFS end after none takes one single op before re-arming (no busy loop while
        /// other readers hold every buffer).
        got: u64,
    },
    Single {
        op: S,
        since: Instant,
    },
}

pub(crate) struct MultishotStream<'r, K: Shots<'r>> {
    ring: &'r RingRef,
    kind: K,
    state: State<K::Single>,
    /// The next arming may not be native (an ENOBUFS end with nothing received).
    single_next: bool,
}

/// Multishot op `ud` ended or is abandoned: the object no longer has one.
fn disarm(io: &dyn AsIoFd, ud: u64) {
    let mut st = io.multishot().state();
    if st.as_ref().is_some_and(|a| a.ud == Some(ud)) {
        *st = None;
    }
}

impl<'r, K: Shots<'r>> MultishotStream<'r, K> {
    pub(crate) fn new(ring: &'r RingRef, kind: K) -> Self {
        MultishotStream {
            ring,
            kind,
            state: State::Idle,
            single_next: false,
        }
    }

    pub(crate) fn is_native(&self) -> bool {
        matches!(self.state, State::Native { .. })
    }

    /// Arms `op` on the object, unless one is already armed there (by another stream, maybe
    /// on another ring): this stream then takes the single path.
    fn arm(&mut self, op: MultiKind, waker: &std::task::Waker) -> Option<io::Result<u64>> {
        let io = self.kind.io();
        let fd = io.shared_fd();
        if let Err(e) = self.ring.prepare(fd) {
            return Some(Err(e));
        }
        // The driver first: dropping it (last) runs collected user code, which may poll another
        // stream on this object and so must not find its state borrowed.
        let mut d = self.ring.driver();
        let mut st = io.multishot().state();
        if st.as_ref().is_some_and(|a| !ring_gone_for(&a.ring)) {
            return None;
        }
        let armed = d.push_multishot(op, fd, waker);
        if let Ok(ud) = armed {
            *st = Some(Armed {
                ring: Rc::downgrade(d.chores()),
                ud: Some(ud),
                leftover: None,
            });
        }
        drop(st);
        Some(armed)
    }

    pub(crate) fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<K::Item>>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    if let Err(e) = self.kind.check() {
                        return Poll::Ready(Some(Err(e)));
                    }
                    let single = std::mem::take(&mut self.single_next);
                    let op = (!single).then(|| self.kind.native(self.ring)).flatten();
                    match op.and_then(|op| self.arm(op, cx.waker())) {
                        Some(Ok(ud)) => {
                            self.state = State::Native {
                                ud,
                                since: Instant::now(),
                                got: 0,
                            };
                            continue;
                        }
                        Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                        None => {}
                    }
                    self.state = State::Single {
                        op: self.kind.single(self.ring),
                        since: Instant::now(),
                    };
                }
                State::Single { op, since } => {
                    let out = std::task::ready!(Pin::new(op).poll(cx));
                    let took = since.elapsed();
                    self.state = State::Idle;
                    let item = self.kind.finish(out);
                    if item.is_ok() {
                        self.ring.record(K::FEATURE, PathTaken::Fallback, took);
                    }
                    return Poll::Ready(Some(item));
                }
                State::Native { ud, since, got } => {
                    let ud = *ud;
                    std::task::ready!(budget::poll_proceed(cx));
                    let next = self.ring.driver().next_multishot(ud, cx.waker());
                    let (res, flags, last) = match next {
                        MultiNext::Item { res, flags, last } => (res, flags, last),
                        // Ended without F_MORE and nothing left: re-arm.
                        MultiNext::Ended => {
                            disarm(self.kind.io(), ud);
                            self.state = State::Idle;
                            continue;
                        }
                        MultiNext::Pending => return Poll::Pending,
                    };
                    if last {
                        disarm(self.kind.io(), ud);
                    }
                    if res >= 0 {
                        let item = self
                            .kind
                            .decode(self.ring, &mut self.ring.driver(), res, flags);
                        let took = std::mem::replace(since, Instant::now()).elapsed();
                        *got += 1;
                        if last {
                            self.state = State::Idle;
                        }
                        self.ring.record(K::FEATURE, PathTaken::Native, took);
                        budget::spend(cx);
                        return Poll::Ready(Some(item));
                    }
                    let first = *got == 0;
                    self.state = State::Idle; // an error ends this multishot for us
                    if !last {
                        disarm(self.kind.io(), ud);
                        self.ring.driver().abandon_multi(ud);
                    }
                    if -res == libc::ECANCELED {
                        continue; // cancelled under us (the ring's teardown): arm again
                    }
                    let why = format!("{} answered {}", K::OP, io::Error::from_raw_os_error(-res));
                    match self.ring.judge(K::FEATURE, -res, first, &why) {
                        // The buffers ran out: re-arm once the reader gave some back; after an
                        // arming that got nothing, take one item the plain way.
                        Verdict::ThisCall => self.single_next = first,
                        // Refused (demoted or off for this ring): single ops from now on.
                        Verdict::Refused => {}
                        Verdict::Failed => {
                            return Poll::Ready(Some(Err(io::Error::from_raw_os_error(-res))));
                        }
                    }
                }
            }
        }
    }
}

impl<'r, K: Shots<'r>> Drop for MultishotStream<'r, K> {
    fn drop(&mut self) {
        let State::Native { ud, .. } = self.state else {
            return;
        };
        disarm(self.kind.io(), ud);
        // Items the kernel produced and nobody took are released (accepted fds closed,
        // buffers recycled), later ones as they complete; the slot keeps the object's fd
        // until the kernel's final completion.
        if let Some(mut d) = self.ring.driver_in_drop() {
            d.abandon_multi(ud);
        }
    }
}
