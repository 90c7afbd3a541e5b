//! The read side: one owned buffer, filled by one read operation at a time, copied out.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use super::stream::{self, BoxOp, CompatIo};
use crate::RingRef;

pub(super) struct ReadSide {
    /// Received bytes `buf[pos..]` not yet read out; empty (no allocation) while in flight.
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
    op: Option<BoxOp<(io::Result<usize>, Vec<u8>)>>,
}

impl ReadSide {
    pub(super) fn new(cap: usize) -> Self {
        ReadSide {
            buf: Vec::new(),
            pos: 0,
            cap,
            op: None,
        }
    }

    pub(super) fn busy(&self) -> bool {
        self.op.is_some()
    }

    pub(super) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(super) fn take_buffered(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        rest.drain(..self.pos);
        self.pos = 0;
        rest
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Returns the unread bytes, first reading if there are none; empty means EOF. The read
    /// stays in flight across `Pending` (the waker of the latest poll is the one woken).
    pub(super) fn poll_fill<S: CompatIo>(
        &mut self,
        cx: &mut Context<'_>,
        ring: &RingRef,
        io: &Rc<S>,
    ) -> Poll<io::Result<&[u8]>> {
        loop {
            if self.pos < self.buf.len() {
                return Poll::Ready(Ok(&self.buf[self.pos..]));
            }
            let op = match &mut self.op {
                Some(op) => op,
                None => {
                    let mut buf = std::mem::take(&mut self.buf);
                    buf.clear();
                    buf.reserve_exact(self.cap);
                    self.pos = 0;
                    self.op.insert(stream::read(ring, io, buf))
                }
            };
            let (res, buf) = ready!(op.as_mut().poll(cx));
            self.op = None;
            self.buf = buf;
            match res {
                Ok(0) => return Poll::Ready(Ok(&[])),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
