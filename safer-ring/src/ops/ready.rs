//! Readiness: wait until an fd can be read or written without blocking, for fds whose I/O
//! happens elsewhere (an eventfd, a timerfd, inotify, a library that reads its own socket).
//! io_uring: IORING_OP_POLL_ADD, one shot. Epoll: a `poll(2)` with no wait, then the
//! backend's own readiness wait in that direction.

use std::io;

use crate::RingRef;
use crate::backend::OpKind;
use crate::driver::op::{Op, OpData};
use crate::io::{AsIoFd, SharedFd};

/// What [`Ring::readable`](crate::RingRef::readable) and
/// [`Ring::writable`](crate::RingRef::writable) found: the `poll(2)` events of the fd.
///
/// An error or hang-up condition counts as ready (as `poll` reports it): the next read or
/// write then returns the error or end of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness(u32);

impl Readiness {
    /// Data (or an end of stream) can be read.
    pub fn is_readable(self) -> bool {
        self.0 & libc::POLLIN as u32 != 0
    }

    /// Data can be written.
    pub fn is_writable(self) -> bool {
        self.0 & libc::POLLOUT as u32 != 0
    }

    /// The peer hung up (POLLHUP): a read returns end of stream, a write fails.
    pub fn is_hangup(self) -> bool {
        self.0 & libc::POLLHUP as u32 != 0
    }

    /// An error is pending on the fd (POLLERR).
    pub fn is_error(self) -> bool {
        self.0 & libc::POLLERR as u32 != 0
    }

    /// The raw `revents` mask.
    pub fn bits(self) -> u32 {
        self.0
    }
}

/// A wait for readiness; see [`Ring::readable`](crate::RingRef::readable).
pub struct Ready {
    fd: SharedFd,
    events: u32,
}

// SAFETY: no pointers; `fd` holds the fd until the completion.
unsafe impl OpData for Ready {
    type Output = io::Result<Readiness>;
    fn kind(&mut self) -> OpKind {
        OpKind::PollReady {
            fd: self.fd.raw(),
            events: self.events,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<Readiness> {
        res.map(Readiness)
    }
}

impl RingRef {
    /// Waits until `io` has data to read (or an end of stream, an error, a hang-up). The fd's
    /// mode is left as it is: readiness is for fds another piece of code reads.
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsFd;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// // Another thread writes through its own copy of the write end.
    /// let mut writer = std::fs::File::from(tx.as_fd().try_clone_to_owned()?);
    /// std::thread::spawn(move || writer.write_all(b"x"));
    /// let ready = ring.block_on(ring.readable(&rx))?;
    /// assert!(ready.is_readable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_poll_add")]
    pub fn readable<F: AsIoFd>(&self, io: &F) -> Op<'_, Ready> {
        self.ready(io, libc::POLLIN)
    }

    /// Waits until `io` can take a write without blocking (or has an error, or hung up).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (_rx, tx) = ring.pipe()?;
    /// let ready = ring.block_on(ring.writable(&tx))?;
    /// assert!(ready.is_writable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_poll_add")]
    pub fn writable<F: AsIoFd>(&self, io: &F) -> Op<'_, Ready> {
        self.ready(io, libc::POLLOUT)
    }

    fn ready<F: AsIoFd>(&self, io: &F, events: libc::c_short) -> Op<'_, Ready> {
        Op::new(
            self,
            Ready {
                fd: io.shared_fd().clone(),
                events: events as u32,
            },
        )
    }
}
