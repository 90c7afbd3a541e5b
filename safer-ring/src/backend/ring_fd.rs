//! Registered ring fd (IORING_REGISTER_RING_FDS, Linux 5.18+): `io_uring_enter` then names the
//! ring by a per-thread index instead of an fd, skipping the kernel's fd lookup on every call.
//!
//! The `io-uring` crate keeps a registration inside one `Submitter` value, which cannot be kept
//! next to the `IoUring` it borrows; so registration and the enter call are made here directly.

use std::io;
use std::os::fd::RawFd;

const IORING_REGISTER_RING_FDS: u32 = 20;
const IORING_UNREGISTER_RING_FDS: u32 = 21;
const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;

#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// `io_uring_register(ring_fd, op, arg, nr_args)`, for the calls the `io-uring` crate cannot
/// make for us (see the module docs and `file_table`).
///
/// # Safety
/// `arg` points to what `op` expects for `nr_args` entries, live for the call.
pub(super) unsafe fn register_raw(
    ring_fd: RawFd,
    op: u32,
    arg: *mut libc::c_void,
    nr_args: u32,
) -> io::Result<()> {
    // SAFETY: forwarded from the caller.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_register, ring_fd, op, arg, nr_args) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn register_call(ring_fd: RawFd, op: u32, up: &mut RsrcUpdate) -> io::Result<()> {
    // SAFETY: `up` is a live, correctly laid out io_uring_rsrc_update (16 bytes) that the
    // kernel reads and, for registration, writes the chosen index into; nr_args is 1.
    unsafe { register_raw(ring_fd, op, std::ptr::from_mut(up).cast(), 1) }
}

/// Registers `ring_fd` for this thread; returns its index.
pub(crate) fn register(ring_fd: RawFd) -> io::Result<u32> {
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: ring_fd as u64,
    };
    register_call(ring_fd, IORING_REGISTER_RING_FDS, &mut up)?;
    Ok(up.offset)
}

/// Drops the registration (must run on the registering thread, before the ring closes).
pub(crate) fn unregister(ring_fd: RawFd, index: u32) -> io::Result<()> {
    let mut up = RsrcUpdate {
        offset: index,
        resv: 0,
        data: 0,
    };
    register_call(ring_fd, IORING_UNREGISTER_RING_FDS, &mut up)
}

/// `io_uring_enter` through the registered index.
pub(crate) fn enter(
    index: u32,
    to_submit: u32,
    min_complete: u32,
    getevents: bool,
) -> io::Result<()> {
    let mut flags = IORING_ENTER_REGISTERED_RING;
    if getevents {
        flags |= IORING_ENTER_GETEVENTS;
    }
    // SAFETY: no argument pointer is passed (NULL, size 0); the index names this thread's
    // registered ring, which stays registered until `unregister`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            index,
            to_submit,
            min_complete,
            flags,
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
