//! A file registered in one ring's file table ([`FixedFile`]).

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::rc::{Rc, Weak};

use super::SharedFd;
use crate::driver::{Chore, ChoreQueue, Chores, same_ring};

/// An I/O object's file in a ring's registered-file table, from
/// [`Ring::register_file`](crate::RingRef::register_file).
///
/// Operations on it ([`read_registered`](crate::RingRef::read_registered),
/// [`write_registered`](crate::RingRef::write_registered),
/// [`send_registered`](crate::RingRef::send_registered),
/// [`recv_registered`](crate::RingRef::recv_registered),
/// [`fsync_registered`](crate::RingRef::fsync_registered)) name the file by its slot
/// (`IOSQE_FIXED_FILE`): the kernel skips the per-operation fd lookup. On any other ring, or
/// where the registering ring had no table (epoll, [`Feature::RegisteredFiles`](crate::Feature::RegisteredFiles)
/// turned off, the kernel refusing), the same calls run as plain operations on the fd.
///
/// The handle keeps the fd open. Cheap to clone; not `Send`. The slot is emptied (and may
/// hold another file) only after the last clone is dropped *and* every operation that named
/// it has completed, including operations whose future was dropped mid-flight.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let (a, b) = ring.unix_pair()?;
/// let a = ring.register_file(&a)?;
/// ring.block_on(async {
///     ring.send_registered(&a, b"hi".to_vec()).await.0?;
///     let (n, buf) = ring.recv(&b, Vec::with_capacity(8)).await;
///     assert_eq!((n?, &buf[..]), (2, &b"hi"[..]));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct FixedFile(Rc<Registration>);

struct Registration {
    fd: SharedFd,
    /// The ring whose table holds the file, and the slot; `None`: plain fd everywhere.
    slot: Option<(Weak<ChoreQueue>, u32)>,
}

impl FixedFile {
    pub(crate) fn registered(fd: SharedFd, ring: &Chores, slot: u32) -> FixedFile {
        FixedFile(Rc::new(Registration {
            fd,
            slot: Some((Rc::downgrade(ring), slot)),
        }))
    }

    pub(crate) fn plain(fd: SharedFd) -> FixedFile {
        FixedFile(Rc::new(Registration { fd, slot: None }))
    }

    pub(crate) fn shared_fd(&self) -> &SharedFd {
        &self.0.fd
    }

    /// The slot to name on the ring behind `ring`: only that ring's table holds this file
    /// there (and keeps holding it while `self`, or an op's clone of it, lives).
    pub(crate) fn slot_on(&self, ring: &Chores) -> Option<u32> {
        let (owner, slot) = self.0.slot.as_ref()?;
        same_ring(owner, ring).then_some(*slot)
    }

    /// The slot in the registering ring's table; `None` when it runs as plain fd operations.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (a, _b) = ring.unix_pair()?;
    /// let a = ring.register_file(&a)?;
    /// println!("slot: {:?}", a.slot());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slot(&self) -> Option<u32> {
        self.0.slot.as_ref().map(|s| s.1)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Last clone gone: no handle and no op names the slot any more. The ring empties it
        // on its next turn (a chore: this may run inside the driver, which must not be
        // borrowed again here); a dropped ring took its table with it.
        if let Some((ring, slot)) = &self.slot
            && let Some(q) = ring.upgrade()
        {
            q.push(Chore::ReleaseFile(*slot));
        }
    }
}

impl AsRawFd for FixedFile {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.raw()
    }
}

impl AsFd for FixedFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

impl fmt::Debug for FixedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedFile")
            .field("fd", &self.0.fd.raw())
            .field("slot", &self.slot())
            .finish()
    }
}
