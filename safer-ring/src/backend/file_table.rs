//! A ring's sparse registered-file table: user slots (`Ring::register_file`) and native fd
//! passing over MSG_RING.
//!
//! Three ranges that never meet:
//! - `[0, SEND_SLOTS)`: fds this ring sends with IORING_MSG_SEND_FD (6.0+), chosen here;
//! - `[SEND_SLOTS, USER_BASE)`: arrivals, allocated by the kernel
//!   (IORING_REGISTER_FILE_ALLOC_RANGE); the target turns each into a normal fd with
//!   OP_FIXED_FD_INSTALL (6.8+) and empties the slot;
//! - `[USER_BASE, USER_BASE + users)`: files the user registered (`FixedFile`), chosen here;
//!   `users` is `SaferRingConfig::registered_files`.
//!
//! The table is registered once, on first use by either. `register_files_sparse` (5.19+) makes
//! it; older kernels (5.5+) take an array of `-1` (empty slots), so user slots work there too.
//! Fd passing also needs the allocation range (6.0+); without it only user slots exist.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::IoUring;

/// Fds this ring can have in flight to other rings at once; more take the queue.
const SEND_SLOTS: u32 = 16;
/// Fds that may have arrived and wait for `next_message` at once; more make the sender fall
/// back (the kernel answers ENFILE).
const RECV_SLOTS: u32 = 240;
/// The first user slot.
const USER_BASE: u32 = SEND_SLOTS + RECV_SLOTS;
/// User slots by default (`SaferRingConfig::registered_files`). The table's size counts
/// against RLIMIT_NOFILE (the kernel refuses a table larger than it), commonly 1024.
pub(crate) const DEFAULT_USER_SLOTS: u32 = 64;
/// The most user slots: the kernels of the 5.x series cap a table at 32768 files
/// (IORING_MAX_FIXED_FILES); the fd-passing ranges take the rest.
pub(crate) const MAX_USER_SLOTS: u32 = (1 << 15) - USER_BASE;
const IORING_REGISTER_FILE_ALLOC_RANGE: u32 = 25;

pub(crate) struct FileTable {
    /// Free staging slots for sending.
    free: Vec<u32>,
    /// Free user slots.
    user_free: Vec<u32>,
    users: u32,
    /// The kernel allocates arrivals in `[SEND_SLOTS, USER_BASE)`: native fd passing works.
    passing: bool,
}

impl FileTable {
    /// Registers an empty table of `USER_BASE + users` slots on `ring`.
    pub(crate) fn register(ring: &IoUring, users: u32) -> io::Result<FileTable> {
        let sub = ring.submitter();
        let total = USER_BASE + users;
        match sub.register_files_sparse(total) {
            Ok(()) => {}
            // Before 5.19 (no IORING_RSRC_REGISTER_SPARSE, or no IORING_REGISTER_FILES2):
            // the classic call with every slot empty.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::debug!("register_files_sparse refused (EINVAL); registering -1 slots");
                sub.register_files(&vec![-1; total as usize])?;
            }
            Err(e) => return Err(e),
        }
        let passing = match alloc_range(ring.as_raw_fd(), SEND_SLOTS, RECV_SLOTS) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "no file allocation range: fds travel in the queue");
                false
            }
        };
        Ok(FileTable {
            free: (0..SEND_SLOTS).rev().collect(),
            user_free: (USER_BASE..total).rev().collect(),
            users,
            passing,
        })
    }

    /// Whether fds can be passed natively (the allocation range was accepted).
    pub(crate) fn passes_fds(&self) -> bool {
        self.passing
    }

    /// Puts `fd` into a free staging slot (the table takes its own reference to the file).
    pub(crate) fn stage(&mut self, ring: &IoUring, fd: RawFd) -> io::Result<u32> {
        let slot = self
            .free
            .pop()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENFILE))?;
        fill(ring, &mut self.free, slot, fd)
    }

    /// Puts `fd` into a free user slot; a full table is an error naming the limit.
    pub(crate) fn add_user(&mut self, ring: &IoUring, fd: RawFd) -> io::Result<u32> {
        let Some(slot) = self.user_free.pop() else {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!(
                    "this ring's registered-file table is full: all {} user slots hold a \
                     FixedFile (SaferRingConfig::registered_files({0}) sets the limit; dropping a \
                     FixedFile frees its slot once its last operation completed)",
                    self.users
                ),
            ));
        };
        fill(ring, &mut self.user_free, slot, fd)
    }

    /// Empties `slot`, dropping the table's reference to its file. The caller knows no op in
    /// flight names it.
    pub(crate) fn release(&mut self, ring: &IoUring, slot: u32) {
        if let Err(e) = ring.submitter().register_files_update(slot, &[-1]) {
            // The file stays referenced until the ring closes; never reuse the slot.
            tracing::warn!(slot, error = %e, "emptying a registered-file slot failed");
            return;
        }
        if slot < SEND_SLOTS {
            self.free.push(slot);
        } else if slot >= USER_BASE {
            self.user_free.push(slot);
        }
    }
}

/// Puts `fd` into `slot` (taken off `free`; put back if the kernel refuses).
fn fill(ring: &IoUring, free: &mut Vec<u32>, slot: u32, fd: RawFd) -> io::Result<u32> {
    match ring.submitter().register_files_update(slot, &[fd]) {
        Ok(_) => Ok(slot),
        Err(e) => {
            free.push(slot);
            Err(e)
        }
    }
}

/// IORING_REGISTER_FILE_ALLOC_RANGE (6.0+), which the `io-uring` crate does not wrap.
fn alloc_range(ring_fd: RawFd, off: u32, len: u32) -> io::Result<()> {
    // struct io_uring_file_index_range { u32 off; u32 len; u64 resv; }
    let mut range: [u32; 4] = [off, len, 0, 0];
    // SAFETY: `range` is a live 16-byte buffer laid out as the kernel's struct (reserved part
    // zeroed); the kernel only copies it in (copy_from_user: no alignment need); nr_args is 0.
    unsafe {
        super::ring_fd::register_raw(
            ring_fd,
            IORING_REGISTER_FILE_ALLOC_RANGE,
            range.as_mut_ptr().cast(),
            0,
        )
    }
}
