//! The write side: accepted bytes are copied into one owned buffer and written by one
//! operation (continuing short writes); the next write waits for it (backpressure).

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use super::stream::{self, BoxOp, CompatIo};
use crate::RingRef;

pub(super) struct WriteSide {
    /// The buffer between writes (cleared, allocation kept); empty while a write owns it.
    buf: Vec<u8>,
    cap: usize,
    op: Option<BoxOp<(io::Result<()>, Vec<u8>)>>,
    /// A write's error, reported by the next `poll_write`/`poll_flush`/`poll_shutdown`.
    err: Option<io::Error>,
    shutdown: Option<BoxOp<io::Result<()>>>,
    shut: bool,
    /// The waker of the last `poll_write`/`poll_flush`/`poll_shutdown`: the read side may poll
    /// the write in flight (see `poll_settle`), which moves the op's waker to the reader, so the
    /// writer is woken from here when that finishes it.
    writer: Option<Waker>,
    /// The read side waiting in `poll_settle` for the write in flight; woken when a writer's
    /// poll finishes it instead (the op then holds the writer's waker, not the reader's).
    reader: Option<Waker>,
}

impl WriteSide {
    pub(super) fn new(cap: usize) -> Self {
        WriteSide {
            buf: Vec::new(),
            cap,
            op: None,
            err: None,
            shutdown: None,
            shut: false,
            writer: None,
            reader: None,
        }
    }

    pub(super) fn busy(&self) -> bool {
        self.op.is_some() || self.shutdown.is_some()
    }

    fn finish(&mut self, res: io::Result<()>, mut buf: Vec<u8>) {
        self.op = None;
        // What a failed write did not send is dropped with the error (the stream's state is
        // unknown past it, as with any failed write).
        buf.clear();
        self.buf = buf;
        if let Err(e) = res {
            self.err = Some(e);
        }
    }

    fn note_writer(&mut self, cx: &Context<'_>) {
        match &self.writer {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.writer = Some(cx.waker().clone()),
        }
    }

    /// For the read side at EOF: `Ready` once no write is in flight. Finishing it here keeps
    /// its error for the writer's next call, and wakes the writer (whose waker the op no
    /// longer holds once this polled it).
    pub(super) fn poll_settle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(op) = &mut self.op {
            let Poll::Ready((res, buf)) = op.as_mut().poll(cx) else {
                self.reader = Some(cx.waker().clone());
                return Poll::Pending;
            };
            self.finish(res, buf);
            if let Some(w) = self.writer.take()
                && !w.will_wake(cx.waker())
            {
                w.wake();
            }
        }
        self.reader = None;
        Poll::Ready(())
    }

    /// Waits for the write in flight, then reports its error if it had one.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.note_writer(cx);
        if let Some(op) = &mut self.op {
            let (res, buf) = ready!(op.as_mut().poll(cx));
            self.finish(res, buf);
            if let Some(r) = self.reader.take() {
                r.wake();
            }
        }
        match self.err.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Accepts up to `cap` bytes of `bufs` once no write is in flight, and submits their write.
    pub(super) fn poll_write<S: CompatIo>(
        &mut self,
        cx: &mut Context<'_>,
        ring: &RingRef,
        io: &Rc<S>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_flush(cx))?;
        let mut buf = std::mem::take(&mut self.buf);
        let want = bufs.iter().map(|b| b.len()).sum::<usize>().min(self.cap);
        if want == 0 {
            self.buf = buf;
            return Poll::Ready(Ok(0));
        }
        buf.reserve_exact(want);
        for b in bufs {
            let room = want - buf.len();
            if room == 0 {
                break;
            }
            buf.extend_from_slice(&b[..b.len().min(room)]);
        }
        // Polled once now so the write is submitted (and, where it completes at once, done).
        let mut op = stream::write_all(ring, io, buf);
        match op.as_mut().poll(cx) {
            Poll::Ready((res, buf)) => self.finish(res, buf),
            Poll::Pending => self.op = Some(op),
        }
        Poll::Ready(Ok(want))
    }

    /// Flushes, then shuts the write side of a socket down (once; later calls only flush).
    pub(super) fn poll_shutdown<S: CompatIo>(
        &mut self,
        cx: &mut Context<'_>,
        ring: &RingRef,
        io: &Rc<S>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx))?;
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        if self.shutdown.is_none() {
            match stream::shutdown_write(ring, io) {
                Some(op) => self.shutdown = Some(op),
                None => {
                    self.shut = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
        let op = self.shutdown.as_mut().expect("set above");
        let res = ready!(op.as_mut().poll(cx));
        self.shutdown = None;
        self.shut = res.is_ok();
        Poll::Ready(res)
    }
}
