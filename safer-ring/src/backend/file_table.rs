//! A ring's sparse registered-file table, used only to pass fds natively with MSG_RING.
//!
//! IORING_MSG_SEND_FD (6.0+) moves a file from a slot of the sender's table into a slot of the
//! target's; the target turns it into a normal fd with OP_FIXED_FD_INSTALL (6.8+) and empties
//! the slot. Slots `[0, SEND_SLOTS)` stage fds this ring sends (chosen here); the kernel
//! allocates arrivals in the rest (IORING_REGISTER_FILE_ALLOC_RANGE), so the two never meet.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::IoUring;

/// Fds this ring can have in flight to other rings at once; more take the queue.
const SEND_SLOTS: u32 = 16;
/// Fds that may have arrived and wait for `next_message` at once; more make the sender fall
/// back (the kernel answers ENFILE).
const RECV_SLOTS: u32 = 240;
const IORING_REGISTER_FILE_ALLOC_RANGE: u32 = 25;

pub(crate) struct FileTable {
    free: Vec<u32>,
}

impl FileTable {
    /// Registers an empty table of `SEND_SLOTS + RECV_SLOTS` slots on `ring`.
    pub(crate) fn register(ring: &IoUring) -> io::Result<FileTable> {
        let sub = ring.submitter();
        sub.register_files_sparse(SEND_SLOTS + RECV_SLOTS)?;
        if let Err(e) = alloc_range(ring.as_raw_fd(), SEND_SLOTS, RECV_SLOTS) {
            let _ = sub.unregister_files();
            return Err(e);
        }
        Ok(FileTable {
            free: (0..SEND_SLOTS).rev().collect(),
        })
    }

    /// Puts `fd` into a free staging slot (the table takes its own reference to the file).
    pub(crate) fn stage(&mut self, ring: &IoUring, fd: RawFd) -> io::Result<u32> {
        let slot = self
            .free
            .pop()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENFILE))?;
        match ring.submitter().register_files_update(slot, &[fd]) {
            Ok(_) => Ok(slot),
            Err(e) => {
                self.free.push(slot);
                Err(e)
            }
        }
    }

    /// Empties `slot`, dropping the table's reference to its file.
    pub(crate) fn release(&mut self, ring: &IoUring, slot: u32) {
        if let Err(e) = ring.submitter().register_files_update(slot, &[-1]) {
            // The file stays referenced until the ring closes; never reuse the slot.
            tracing::warn!(slot, error = %e, "emptying a registered-file slot failed");
            return;
        }
        if slot < SEND_SLOTS {
            self.free.push(slot);
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
