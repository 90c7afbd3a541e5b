//! Raw kernel queries for feature detection, made on throwaway rings.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::os::fd::AsRawFd;

use io_uring::{IoUring, Probe};

/// What the kernel answered; `None` where a step could not tell (see `warnings`).
#[derive(Debug, Default)]
pub(crate) struct KernelAnswers {
    /// Why io_uring_setup failed, when it did.
    pub(crate) setup_error: Option<io::Error>,
    pub(crate) features: Option<u32>,
    /// Supported opcodes, from IORING_REGISTER_PROBE (None before 5.6).
    pub(crate) opcodes: Option<Vec<u8>>,
    pub(crate) ring_fd: Option<bool>,
    pub(crate) buf_ring: Option<bool>,
    pub(crate) buf_ring_inc: Option<bool>,
    pub(crate) send_fd: Option<bool>,
    pub(crate) coop: Option<bool>,
    pub(crate) single_issuer: Option<bool>,
    pub(crate) defer: Option<bool>,
    pub(crate) warnings: Vec<String>,
}

/// `Ok(true)` for success, `Ok(false)` for EINVAL (the kernel does not know it), else the error.
fn verdict(r: io::Result<()>) -> io::Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL)
                || e.kind() == io::ErrorKind::InvalidInput =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn record(slot: &mut Option<bool>, what: &str, r: io::Result<bool>, warnings: &mut Vec<String>) {
    match r {
        Ok(b) => *slot = Some(b),
        Err(e) => warnings.push(format!("{what}: {e}; using the version table")),
    }
}

/// Asks the running kernel. Cheap: at most four tiny rings.
pub(crate) fn ask_kernel() -> KernelAnswers {
    let mut a = KernelAnswers::default();
    // One ring with all three single-thread flags answers three tries at once when it works.
    let full = IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(4);
    let ring = match full {
        Ok(r) => {
            (a.coop, a.single_issuer, a.defer) = (Some(true), Some(true), Some(true));
            r
        }
        Err(_) => match IoUring::new(4) {
            Ok(r) => {
                let mut w = std::mem::take(&mut a.warnings);
                record(
                    &mut a.coop,
                    "COOP_TASKRUN setup",
                    verdict(
                        IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
                            .setup_coop_taskrun()
                            .build(4)
                            .map(drop),
                    ),
                    &mut w,
                );
                record(
                    &mut a.single_issuer,
                    "SINGLE_ISSUER setup",
                    verdict(
                        IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
                            .setup_single_issuer()
                            .build(4)
                            .map(drop),
                    ),
                    &mut w,
                );
                let defer = IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
                    .setup_single_issuer()
                    .setup_defer_taskrun()
                    .build(4)
                    .map(drop);
                record(&mut a.defer, "DEFER_TASKRUN setup", verdict(defer), &mut w);
                a.warnings = w;
                r
            }
            Err(e) => {
                a.setup_error = Some(e);
                return a;
            }
        },
    };
    a.features = Some(raw_features().unwrap_or_else(|_| sys_features(ring.params())));

    let mut probe = Probe::new();
    let probed = super::fault::check(super::fault::Syscall::IoUringProbe)
        .and_then(|()| ring.submitter().register_probe(&mut probe));
    match probed {
        Ok(()) => a.opcodes = Some((0..=u8::MAX).filter(|&op| probe.is_supported(op)).collect()),
        Err(e) => a.warnings.push(format!(
            "IORING_REGISTER_PROBE: {e} (kernel before 5.6?); using the version table"
        )),
    }

    let mut sub = ring.submitter();
    let rfd = verdict(
        sub.register_ring_fd()
            .and_then(|()| sub.unregister_ring_fd()),
    );
    record(
        &mut a.ring_fd,
        "IORING_REGISTER_RING_FDS",
        rfd,
        &mut a.warnings,
    );

    let br = try_buf_ring(&ring, 0);
    record(
        &mut a.buf_ring,
        "IORING_REGISTER_PBUF_RING",
        br,
        &mut a.warnings,
    );
    let inc = try_buf_ring(&ring, IOU_PBUF_RING_INC);
    record(
        &mut a.buf_ring_inc,
        "IORING_REGISTER_PBUF_RING with IOU_PBUF_RING_INC",
        inc,
        &mut a.warnings,
    );

    // MSG_RING's SEND_FD rides on an existing opcode: only a real call tells (6.0 per the
    // table, "6.2" per some sources).
    if a.opcodes
        .as_ref()
        .is_some_and(|o| !o.contains(&OP_MSG_RING))
    {
        a.send_fd = Some(false);
    } else {
        let sf = try_send_fd();
        record(&mut a.send_fd, "MSG_RING SEND_FD", sf, &mut a.warnings);
    }
    a
}

const OP_MSG_RING: u8 = io_uring::opcode::MsgRingData::CODE;

/// Sends an eventfd from one throwaway ring's file table into another's with OP_MSG_RING
/// (IORING_MSG_SEND_FD, kernel-allocated target slot): true when both sides saw it arrive.
fn try_send_fd() -> io::Result<bool> {
    let (mut from, mut to) = (IoUring::new(2)?, IoUring::new(2)?);
    // Sparse tables are 5.19: where they are missing, SEND_FD (6.0) is too.
    if let Err(e) = to.submitter().register_files_sparse(1) {
        return verdict(Err(e));
    }
    let efd = super::sys::eventfd()?;
    if let Err(e) = from.submitter().register_files(&[efd.as_raw_fd()]) {
        return verdict(Err(e));
    }
    const UD: u64 = 0x5e4d_f00d;
    let sqe = io_uring::opcode::MsgRingSendFd::new(
        io_uring::types::Fd(to.as_raw_fd()),
        io_uring::types::Fixed(0),
        io_uring::types::DestinationSlot::auto_target(),
        UD,
    )
    .build()
    .user_data(UD);
    // SAFETY: the entry holds no pointers; it names a file-table slot and a ring fd that both
    // stay alive until its completion is reaped just below.
    unsafe { from.submission().push(&sqe) }
        .map_err(|_| io::Error::other("a fresh ring has a full SQ"))?;
    from.submit_and_wait(1)?;
    let res = from.completion().next().map_or(-libc::EIO, |c| c.result());
    if res == -libc::EINVAL {
        return Ok(false);
    }
    if res < 0 {
        return Err(io::Error::from_raw_os_error(-res));
    }
    // The target's completion carries the slot the kernel allocated: the only one, 0.
    let arrived = to.completion().next().map(|c| (c.user_data(), c.result()));
    Ok(arrived == Some((UD, 0)))
}

/// `IOU_PBUF_RING_INC` (Linux 6.12): buffers of the ring are consumed incrementally.
pub(crate) const IOU_PBUF_RING_INC: u16 = 2;

/// Registers a one-entry buffer ring with `flags`, then unregisters it.
fn try_buf_ring(ring: &IoUring, flags: u16) -> io::Result<bool> {
    const PAGE: usize = 4096;
    let layout = Layout::from_size_align(PAGE, PAGE).expect("static layout");
    // SAFETY: the layout has a non-zero size.
    let mem = unsafe { alloc_zeroed(layout) };
    if mem.is_null() {
        return Err(io::Error::from(io::ErrorKind::OutOfMemory));
    }
    let sub = ring.submitter();
    // SAFETY: `mem` is a page-aligned, zeroed page, large enough for one 16-byte ring entry; it
    // stays allocated until after the buffer ring is unregistered below.
    let r = unsafe { sub.register_buf_ring_with_flags(mem as u64, 1, 0, flags) };
    let out = match r {
        Ok(()) => sub.unregister_buf_ring(0).map(|()| true),
        Err(e) => verdict(Err(e)),
    };
    // Registered and unregistered, or never registered: the kernel holds no reference. If
    // unregistering failed, the kernel may still reference the page until the ring closes:
    // leak it (4 KiB, once) rather than free memory the kernel can write.
    if out.is_ok() {
        // SAFETY: allocated above with the same layout, no longer registered.
        unsafe { dealloc(mem, layout) };
    }
    out
}

/// `params.features` as a bit set (IORING_FEAT_*), from the predicates the `io-uring` crate
/// exposes.
pub(crate) fn sys_features(p: &io_uring::Parameters) -> u32 {
    // The crate exposes features as predicates; rebuild the kernel's bit set (IORING_FEAT_*)
    // from those it makes public. REG_REG_RING (bit 13) and RW_ATTR (bit 16) are not exposed.
    let bits = [
        (0, p.is_feature_single_mmap()),
        (1, p.is_feature_nodrop()),
        (2, p.is_feature_submit_stable()),
        (3, p.is_feature_rw_cur_pos()),
        (4, p.is_feature_cur_personality()),
        (5, p.is_feature_fast_poll()),
        (6, p.is_feature_poll_32bits()),
        (7, p.is_feature_sqpoll_nonfixed()),
        (8, p.is_feature_ext_arg()),
        (9, p.is_feature_native_workers()),
        (10, p.is_feature_resource_tagging()),
        (11, p.is_feature_skip_cqe_on_success()),
        (12, p.is_feature_linked_file()),
        (14, p.is_feature_recvsend_bundle()),
        (15, p.is_feature_min_timeout()),
        (17, p.is_feature_no_iowait()),
    ];
    bits.iter()
        .fold(0, |acc, &(i, b)| acc | (u32::from(b) << i))
}

/// `params.features` exactly as the kernel reports it (the `io-uring` crate exposes only some
/// bits): a bare `io_uring_setup` whose fd is closed at once, without mapping the rings.
fn raw_features() -> io::Result<u32> {
    // struct io_uring_params is 120 bytes of u32/u64 fields; `features` is the sixth u32.
    let mut params = [0u32; 30];
    // SAFETY: `params` is a zeroed, 4-byte aligned buffer of the struct's size, which the
    // kernel reads and writes; the syscall takes no other pointers.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is the fresh ring fd we own; closing it releases the ring.
    unsafe { libc::close(fd as i32) };
    Ok(params[5])
}
