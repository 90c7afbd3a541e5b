//! Driving a ring from a tokio current-thread runtime (feature `tokio`).
//!
//! The backend's pollable fd (the io_uring fd, or the epoll fd) is registered with tokio's
//! reactor through `AsyncFd`; the drive task sleeps in tokio's epoll until completions are
//! ready or an operation is queued (the driver wakes it), so nothing spins.

use std::future::poll_fn;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Poll;

use tokio::io::unix::AsyncFd;

use crate::RingRef;

impl RingRef {
    /// Drives this ring's completions from inside a tokio current-thread runtime; run it with
    /// `tokio::task::spawn_local` (in a `LocalSet`) next to the tasks using the ring. Never
    /// returns `Ok`. Like tokio's own driver it keeps going for every task: a failed
    /// `io_uring_enter`/`epoll_wait` (the queued ops stay queued) is logged and retried on the
    /// next poll, and a panic in some task's waker or buffer destructor, run by the driver, is
    /// logged (the panic hook has reported it) instead of ending the drive.
    ///
    /// The ring should come from [`SaferRingConfig::for_tokio`](crate::SaferRingConfig::for_tokio):
    /// with DEFER_TASKRUN or COOP_TASKRUN the kernel posts completions only when the ring's
    /// thread enters io_uring, which tokio's epoll wait never does.
    ///
    /// # Errors
    /// `InvalidInput` if the ring was set up with DEFER_TASKRUN or COOP_TASKRUN; `BrokenPipe`
    /// once the owning [`Ring`](crate::Ring) is dropped; otherwise whatever registering the fd
    /// with tokio or polling it reports.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Ring, SaferRingConfig};
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let local = tokio::task::LocalSet::new();
    /// let ring = Ring::with_config(SaferRingConfig::for_tokio())?;
    /// let r = ring.clone();
    /// let driver = local.spawn_local(async move { r.drive_on_tokio().await });
    /// local.block_on(&rt, async {
    ///     ring.nop().await?; // completed by the driver task
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// driver.abort();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn drive_on_tokio(&self) -> io::Result<()> {
        if let Some(s) = self.info().setup
            && (s.defer_taskrun || s.coop_taskrun)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "drive_on_tokio needs a ring without DEFER_TASKRUN/COOP_TASKRUN: create it with SaferRingConfig::for_tokio()",
            ));
        }
        if self.is_closed() {
            return Err(crate::driver::ring_gone());
        }
        // A duplicate: it stays valid (registered with tokio) even if the ring is dropped while
        // this future lives, whose fd number could then be reused.
        let fd = crate::kernel::sys::dup_fd(self.driver().pollable_fd())?;
        // SAFETY: the AsyncFd owns `fd` (our own duplicate) for as long as it is registered, so
        // the fd cannot be closed or reused under tokio's reactor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        poll_fn(|cx| {
            loop {
                if self.is_closed() {
                    return Poll::Ready(Err(crate::driver::ring_gone()));
                }
                // Before the turn: user code it runs (wakers) may queue ops, which must wake us.
                self.driver().set_submit_waker(cx.waker());
                match catch_unwind(AssertUnwindSafe(|| self.turn(false))) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "driver turn failed; retrying");
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Err(_) => tracing::error!("a waker or buffer destructor panicked"),
                }
                match fd.poll_read_ready(cx) {
                    Poll::Ready(Ok(mut guard)) => guard.clear_ready(),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }
}
