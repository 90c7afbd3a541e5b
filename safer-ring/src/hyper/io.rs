//! hyper's [`Read`](::hyper::rt::Read) and [`Write`](::hyper::rt::Write) for [`Compat`]: a
//! ring's stream serves hyper as `ring.compat(stream)`, with no wrapper of its own.
//!
//! Same semantics as the tokio traits (`docs/IO-TRAITS.md`): reads copy out of the adapter's
//! buffer, `poll_write` accepts bytes while their write goes on, `poll_flush` waits for it, and
//! `poll_shutdown` flushes then shuts the socket's write side (not the read side: hyper may
//! still read the client's last bytes).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::hyper::rt::{Read, ReadBufCursor, Write};

use crate::compat::{Compat, CompatIo};

impl<S: CompatIo> Read for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.remaining();
        if room == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = self.get_mut();
        let src = ready!(this.poll_fill(cx))?;
        let n = src.len().min(room);
        // Safe copy (`put_slice`): hyper's cursor is never handed uninitialised to the kernel.
        buf.put_slice(&src[..n]);
        this.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: CompatIo> Write for Compat<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bufs(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bufs(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // Slices are gathered into the one write buffer: hyper's head and body go out together.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_inner(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_inner(cx)
    }
}
