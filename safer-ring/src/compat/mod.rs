//! Poll-based byte streams over safer-ring's completion-based operations: [`Compat`] wraps an
//! I/O object and a [`RingRef`] and implements tokio's (feature `tokio`) and futures-io's
//! (feature `futures-io`) `AsyncRead`, `AsyncBufRead` and `AsyncWrite`. The module exists
//! only with one of those features.
//!
//! Completion I/O needs a buffer the kernel owns while an operation is in flight, which a
//! `poll_read(&mut [u8])` cannot lend: reads go into the adapter's own buffer and are copied
//! out; writes are copied into its own buffer and written from there. The semantics (what is
//! in flight when, where errors surface, what dropping loses) are in `docs/IO-TRAITS.md`.
//!
//! This module has no `unsafe`: an operation kept across polls is an ordinary `Op` inside a
//! boxed `async` block that owns what it borrows (see `stream.rs`).

mod read;
mod stream;
mod write;

#[cfg(feature = "futures-io")]
mod futures_io;
#[cfg(feature = "tokio")]
mod tokio;

use std::fmt;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

pub use stream::CompatIo;

use crate::RingRef;
use read::ReadSide;
use write::WriteSide;

/// Default size of each of the adapter's two buffers (read and write): 16 KiB.
pub const DEFAULT_CAPACITY: usize = 16 * 1024;

/// A safer-ring stream as a poll-based reader and writer (tokio's traits with feature `tokio`,
/// futures-io's with feature `futures-io`); semantics in `docs/IO-TRAITS.md`.
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let ring = safer_ring::Ring::new(8)?;
/// ring.block_on(async {
///     let (a, b) = ring.unix_pair()?;
///     let (mut a, mut b) = (ring.compat(a), ring.compat(b));
///     a.write_all(b"hello").await?;
///     a.shutdown().await?; // flush, then shut the write side down
///     let mut got = String::new();
///     b.read_to_string(&mut got).await?;
///     assert_eq!(got, "hello");
///     std::io::Result::Ok(())
/// })?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// At most one read and one write operation are in flight at a time. The adapter is `!Send`
/// (so is the ring); it needs the ring to be driven (`block_on`, `spawn`ed tasks, or
/// `drive_on_tokio`), not any particular runtime.
///
/// Dropping it cancels the operations in flight the way dropping any operation does (their
/// buffers stay with the ring until the kernel is done); bytes accepted by `poll_write` but not
/// yet written are lost unless `poll_flush` completed first, as with tokio's `BufWriter`.
pub struct Compat<S: CompatIo> {
    ring: RingRef,
    io: Rc<S>,
    read: ReadSide,
    write: WriteSide,
    /// The read side saw EOF while a write of ours was in flight (see `poll_fill`).
    eof_held: bool,
}

impl<S: CompatIo> Compat<S> {
    /// Wraps `io`, with [`DEFAULT_CAPACITY`]-byte read and write buffers (allocated on first
    /// use).
    pub fn new(ring: RingRef, io: S) -> Self {
        Compat {
            ring,
            io: Rc::new(io),
            read: ReadSide::new(DEFAULT_CAPACITY),
            write: WriteSide::new(DEFAULT_CAPACITY),
            eof_held: false,
        }
    }

    /// Wraps `io` with a `read`-byte read buffer (the most one read operation asks for) and a
    /// `write`-byte write buffer (the most one `poll_write` accepts).
    ///
    /// # Errors
    /// `InvalidInput` naming the value when a capacity is 0 or above `u32::MAX` (the kernel's
    /// limit for one transfer).
    pub fn with_capacity(ring: RingRef, io: S, read: usize, write: usize) -> io::Result<Self> {
        check_capacity("read", read)?;
        check_capacity("write", write)?;
        Ok(Compat {
            ring,
            io: Rc::new(io),
            read: ReadSide::new(read),
            write: WriteSide::new(write),
            eof_held: false,
        })
    }

    /// The wrapped I/O object.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The ring the operations run on.
    pub fn ring(&self) -> &RingRef {
        &self.ring
    }

    /// Bytes received but not yet read out of the adapter.
    pub fn read_buffered(&self) -> &[u8] {
        self.read.buffered()
    }

    /// Whether a read or write operation (or a shutdown) is in flight.
    pub fn is_busy(&self) -> bool {
        self.read.busy() || self.write.busy()
    }

    /// The I/O object back.
    ///
    /// # Errors
    /// [`IntoInnerError`] (with the adapter inside) while an operation is in flight, or while
    /// received bytes wait to be read (use [`Compat::into_parts`] to take them too). Accepted
    /// bytes are written only by flushing: call `poll_flush` (or `flush().await`) first.
    pub fn into_inner(self) -> Result<S, IntoInnerError<S>> {
        if !self.read.buffered().is_empty() {
            let why = "received bytes are waiting to be read (into_parts returns them)";
            return Err(IntoInnerError {
                compat: Box::new(self),
                why,
            });
        }
        self.into_parts().map(|(io, _)| io)
    }

    /// The I/O object and the bytes received but not yet read out of the adapter. A write
    /// error not yet reported (by `poll_write`, `poll_flush` or `poll_shutdown`) is dropped.
    ///
    /// # Errors
    /// [`IntoInnerError`] (with the adapter inside) while a read, write or shutdown is in
    /// flight: poll it to completion (`poll_flush` for writes) or drop the adapter.
    pub fn into_parts(self) -> Result<(S, Vec<u8>), IntoInnerError<S>> {
        let why = if self.read.busy() {
            "a read is in flight"
        } else if self.write.busy() {
            "a write or shutdown is in flight (poll_flush completes it)"
        } else if Rc::strong_count(&self.io) > 1 {
            // Only the adapter's own operation futures clone the Rc, and none is alive.
            "an operation still holds the stream"
        } else {
            ""
        };
        if !why.is_empty() {
            return Err(IntoInnerError {
                compat: Box::new(self),
                why,
            });
        }
        let Compat { io, mut read, .. } = self;
        let rest = read.take_buffered();
        match Rc::try_unwrap(io) {
            Ok(io) => Ok((io, rest)),
            Err(_) => unreachable!("the strong count was checked above"),
        }
    }

    /// Fills the read buffer if it is empty and returns its unread bytes (empty at EOF).
    ///
    /// EOF waits for this adapter's own write in flight: a peer that closes right after
    /// reading our answer must not look, to a protocol that polls reads before flushes (hyper),
    /// like one that closed before the answer was written. The write is finished first and the
    /// EOF reported at the next poll (so a flush polled in between sees the write done).
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if !self.eof_held {
            let n = match std::task::ready!(self.read.poll_fill(cx, &self.ring, &self.io)) {
                Ok(b) => b.len(),
                Err(e) => return Poll::Ready(Err(e)),
            };
            if n > 0 || !self.write.busy() {
                return Poll::Ready(Ok(self.read.buffered()));
            }
            self.eof_held = true;
        }
        if self.write.busy() {
            std::task::ready!(self.write.poll_settle(cx));
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.eof_held = false;
        Poll::Ready(Ok(&[]))
    }

    /// Marks `n` bytes of what `poll_fill` returned as read.
    pub(crate) fn consume(&mut self, n: usize) {
        self.read.consume(n)
    }

    /// Copies into `dst` what is buffered, or what one read brings.
    #[cfg(feature = "futures-io")]
    pub(crate) fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let src = std::task::ready!(self.poll_fill(cx))?;
        let n = src.len().min(dst.len());
        dst[..n].copy_from_slice(&src[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    pub(crate) fn poll_write_bufs(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write.poll_write(cx, &self.ring, &self.io, bufs)
    }

    pub(crate) fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_flush(cx)
    }

    pub(crate) fn poll_shutdown_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_shutdown(cx, &self.ring, &self.io)
    }
}

fn check_capacity(which: &str, n: usize) -> io::Result<()> {
    if n == 0 || n > u32::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{which} capacity {n}: expected 1 to {} bytes", u32::MAX),
        ));
    }
    Ok(())
}

impl<S: CompatIo + fmt::Debug> fmt::Debug for Compat<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("io", &self.io)
            .field("read_buffered", &self.read.buffered().len())
            .field("read_in_flight", &self.read.busy())
            .field("write_in_flight", &self.write.busy())
            .finish()
    }
}

/// [`Compat::into_inner`] or [`Compat::into_parts`] refused: an operation is in flight (or
/// received bytes are unread). The adapter is inside, unchanged.
pub struct IntoInnerError<S: CompatIo> {
    compat: Box<Compat<S>>,
    why: &'static str,
}

impl<S: CompatIo> IntoInnerError<S> {
    /// The adapter back.
    pub fn into_compat(self) -> Compat<S> {
        *self.compat
    }
}

impl<S: CompatIo> fmt::Debug for IntoInnerError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoInnerError")
            .field("why", &self.why)
            .finish_non_exhaustive()
    }
}

impl<S: CompatIo> fmt::Display for IntoInnerError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot take the stream out of the adapter: {}", self.why)
    }
}

impl<S: CompatIo> std::error::Error for IntoInnerError<S> {}

impl RingRef {
    /// Wraps `io` in a poll-based adapter on this ring; see [`Compat`].
    pub fn compat<S: CompatIo>(&self, io: S) -> Compat<S> {
        Compat::new(self.clone(), io)
    }
}
