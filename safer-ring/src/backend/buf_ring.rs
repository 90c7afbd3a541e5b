//! A provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19+): the kernel picks a buffer
//! when data arrives, so an idle receive pins no memory of its own.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;

/// At most this many buffers per ring: a completion's flags carry the buffer id in 6 bits
/// (`kernel::user_data::pack_buffer`).
pub(crate) const MAX_BUFFERS: u16 = 64;
/// Buffer sizes up to this: a completion's start in its buffer is carried in 21 bits.
pub(crate) const MAX_BASE: u32 = 1 << 21;
const IOU_PBUF_RING_INC: u16 = crate::kernel::probe::IOU_PBUF_RING_INC;
const ENTRY: usize = 16; // struct io_uring_buf { u64 addr; u32 len; u16 bid; u16 resv/tail }
const PAGE: usize = 4096;

pub(crate) struct BufRing {
    ring: NonNull<u8>,
    ring_layout: Layout,
    mem: NonNull<u8>,
    mem_layout: Layout,
    entries: u16,
    buf_size: u32,
    pub(crate) bgid: u16,
    tail: u16,
    /// Registered with IOU_PBUF_RING_INC: a completion takes only its bytes from a buffer,
    /// whose rest stays in the ring for the next receive (`base`), until the kernel is done
    /// with it (a completion without IORING_CQE_F_BUF_MORE).
    incremental: bool,
    /// Per buffer, the completions that handed us part of it (one, without `incremental`)
    /// and were not given back: only buffers with pieces out may be read, and a piece is given
    /// back once, whatever bid a caller names.
    pieces: Vec<u16>,
    /// Per buffer, whether the kernel is done with it (always, with pieces out, unless
    /// `incremental`): it is provided again once its last piece is given back.
    done: Vec<bool>,
    /// Per buffer (`incremental`), where the kernel writes next: a piece's bytes end at or
    /// before it, and nothing at or after it may be read while the kernel is not done.
    base: Vec<u32>,
    /// `next[b]`: the buffer written at the ring position after the one `b` was last written
    /// at. A bundle completion names only its first buffer; its bytes continue through the
    /// buffers the kernel took next from the ring, which are these. `next[b]` changes only when
    /// `b` is provided again (a later write after `b`'s position needs `b` to be the newest
    /// entry, and then its position's successor is exactly that write), so while `b` is ours
    /// (out) its successor stays known.
    next: Vec<u16>,
    /// The buffer at ring position `tail - 1` (`None` before the first write).
    last: Option<u16>,
}

fn alloc(layout: Layout) -> io::Result<NonNull<u8>> {
    // SAFETY: every layout used here has a non-zero size.
    NonNull::new(unsafe { alloc_zeroed(layout) })
        .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
}

impl BufRing {
    /// Allocates `entries` (a power of two, at most [`MAX_BUFFERS`]) buffers of `buf_size`
    /// bytes and registers them as group `bgid`, consumed incrementally if `incremental`.
    pub(crate) fn new(
        ring: &IoUring,
        bgid: u16,
        entries: u16,
        buf_size: u32,
        incremental: bool,
    ) -> io::Result<BufRing> {
        debug_assert!(entries.is_power_of_two() && entries <= MAX_BUFFERS);
        debug_assert!(buf_size <= MAX_BASE);
        let ring_layout =
            Layout::from_size_align((entries as usize * ENTRY).next_multiple_of(PAGE), PAGE)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mem_layout = Layout::from_size_align(entries as usize * buf_size as usize, PAGE)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let ring_mem = alloc(ring_layout)?;
        let mem = match alloc(mem_layout) {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: allocated just above with this layout, never shared.
                unsafe { dealloc(ring_mem.as_ptr(), ring_layout) };
                return Err(e);
            }
        };
        // SAFETY: the ring memory is page aligned, zeroed and sized for `entries` entries; it
        // stays allocated until `free` runs after unregistration (or is leaked).
        let r = unsafe {
            ring.submitter().register_buf_ring_with_flags(
                ring_mem.as_ptr() as u64,
                entries,
                bgid,
                if incremental { IOU_PBUF_RING_INC } else { 0 },
            )
        };
        if let Err(e) = r {
            // SAFETY: never registered: nobody else references either allocation.
            unsafe {
                dealloc(ring_mem.as_ptr(), ring_layout);
                dealloc(mem.as_ptr(), mem_layout);
            }
            return Err(e);
        }
        let mut b = BufRing {
            ring: ring_mem,
            ring_layout,
            mem,
            mem_layout,
            entries,
            buf_size,
            bgid,
            tail: 0,
            incremental,
            pieces: vec![0; entries as usize],
            done: vec![false; entries as usize],
            base: vec![0; entries as usize],
            next: vec![0; entries as usize],
            last: None,
        };
        for bid in 0..entries {
            b.provide(bid);
        }
        Ok(b)
    }

    pub(crate) fn buf_size(&self) -> u32 {
        self.buf_size
    }

    pub(crate) fn incremental(&self) -> bool {
        self.incremental
    }

    fn is_out(&self, bid: u16) -> bool {
        self.pieces.get(bid as usize).is_some_and(|&p| p > 0)
    }

    /// A completion of `res` bytes named buffer `bid`; returns where its bytes start in it.
    /// Incrementally consumed, the bytes start where the last completion naming `bid` ended,
    /// and `more` (IORING_CQE_F_BUF_MORE) says the kernel keeps the buffer's rest; otherwise
    /// see [`mark_out`](Self::mark_out).
    pub(crate) fn completed(&mut self, bid: u16, res: i32, more: bool) -> u32 {
        if !self.incremental {
            self.mark_out(bid, res);
            return 0;
        }
        let i = bid as usize;
        match self.done.get(i) {
            Some(false) => {}
            // Finished by the kernel and not provided again: it cannot hand it out.
            _ => {
                tracing::error!(bid, "completion names a buffer not in the ring");
                return 0;
            }
        }
        let start = self.base[i];
        self.base[i] = start.saturating_add(res.max(0) as u32).min(self.buf_size);
        self.pieces[i] += 1;
        self.done[i] = !more;
        start
    }

    /// A completion with `res` bytes handed buffer `bid` to us, and with it, for a bundle
    /// (`res` > one buffer), the buffers that followed `bid` in the ring: `ceil(res / size)`
    /// buffers in all, each full but the last (the kernel fills a bundle's buffers in ring
    /// order and consumes exactly those it wrote into). The kernel wrote them and will not
    /// touch them again until they are recycled. "Full but the last" holds because the kernel
    /// shortens only the first buffer it maps for a receive (to the bytes queued) and does not
    /// append a second receive to a bundle whose map was shortened ("io_uring/kbuf: flag
    /// partial buffer mappings", June 2025, for stable: the kernels between the bundle retry
    /// of "io_uring/net: improve recv bundles" and that fix could leave such a gap for every
    /// user of bundles).
    pub(crate) fn mark_out(&mut self, bid: u16, res: i32) {
        let mut bid = bid;
        let mut n = self.count(res);
        loop {
            match self.pieces.get_mut(bid as usize) {
                Some(p) if *p == 0 => {
                    *p = 1;
                    self.done[bid as usize] = true;
                }
                // A buffer already ours cannot have been in the ring: the chain is not what
                // the kernel consumed. Stop rather than claim a buffer the kernel may own.
                _ => {
                    tracing::error!(bid, "bundle completion names a buffer not in the ring");
                    return;
                }
            }
            n -= 1;
            if n == 0 {
                return;
            }
            bid = self.next[bid as usize];
        }
    }

    /// How many buffers a completion of `res` bytes filled (at least one).
    pub(crate) fn count(&self, res: i32) -> usize {
        let res = res.max(1) as usize;
        res.div_ceil(self.buf_size as usize)
            .min(self.entries as usize)
    }

    /// The buffer after `bid` in the completion that handed `bid` to us; `None` unless both
    /// are ours.
    pub(crate) fn next_out(&self, bid: u16) -> Option<u16> {
        if self.incremental || !self.is_out(bid) {
            return None; // no bundles over incrementally consumed buffers
        }
        let next = self.next[bid as usize];
        self.is_out(next).then_some(next)
    }

    /// Hands back the buffers of a completion's bytes from the start of `bid` on: `len` bytes
    /// (at least one buffer), following the ring order as [`mark_out`](Self::mark_out) did.
    pub(crate) fn recycle_run(&mut self, bid: u16, len: u32) {
        let mut bid = bid;
        let mut n = self.count(len.min(i32::MAX as u32) as i32);
        loop {
            // The successor is read before `bid` is provided again (which may change it).
            let next = self.next_out(bid);
            self.recycle(bid);
            n -= 1;
            match next {
                Some(b) if n > 0 => bid = b,
                _ => return,
            }
        }
    }

    /// Buffers handed to us and not yet given back.
    pub(crate) fn out_count(&self) -> usize {
        self.pieces.iter().filter(|p| **p > 0).count()
    }

    /// Gives back one piece of buffer `bid` (if it has one out); the buffer goes back to the
    /// kernel with its last piece, once the kernel is done with it.
    pub(crate) fn recycle(&mut self, bid: u16) {
        let i = bid as usize;
        if let Some(p) = self.pieces.get_mut(i)
            && *p > 0
        {
            *p -= 1;
            if *p == 0 && std::mem::take(&mut self.done[i]) {
                self.base[i] = 0;
                self.provide(bid);
            }
        }
    }

    fn provide(&mut self, bid: u16) {
        debug_assert!(bid < self.entries);
        let slot = (self.tail & (self.entries - 1)) as usize;
        let addr = self.mem.as_ptr() as u64 + u64::from(bid) * u64::from(self.buf_size);
        // SAFETY: `slot < entries`, so the 14 bytes written lie inside the ring allocation;
        // bytes 14..16 of entry 0 are the kernel-read tail, published below with release.
        unsafe {
            let e = self.ring.as_ptr().add(slot * ENTRY);
            e.cast::<u64>().write_unaligned(addr);
            e.add(8).cast::<u32>().write_unaligned(self.buf_size);
            e.add(12).cast::<u16>().write_unaligned(bid);
        }
        if let Some(prev) = self.last.replace(bid) {
            self.next[prev as usize] = bid;
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: offset 14 is 2-byte aligned inside the page-aligned ring; the kernel reads
        // the tail with acquire ordering.
        unsafe {
            (*self.ring.as_ptr().add(14).cast::<AtomicU16>()).store(self.tail, Ordering::Release)
        };
    }

    /// Bytes `from..to` (clamped to the buffer) of buffer `bid`; empty unless it is ours.
    pub(crate) fn chunk(&self, bid: u16, from: usize, to: usize) -> &[u8] {
        let mut to = to.min(self.buf_size as usize);
        if !self.is_out(bid) {
            return &[];
        }
        if !self.done[bid as usize] {
            to = to.min(self.base[bid as usize] as usize); // the kernel may write past it
        }
        if from >= to {
            return &[];
        }
        // SAFETY: buffer `bid` has pieces out, so it is not provided again (which takes
        // `&mut self` and every piece back); the kernel wrote its bytes before `to` and does
        // not touch them again: all of it once done, else only from `base` on, and `to <=
        // base` then. `from < to <= buf_size` keeps the slice inside buffer `bid` of the live
        // allocation.
        unsafe {
            std::slice::from_raw_parts(
                self.mem
                    .as_ptr()
                    .add(bid as usize * self.buf_size as usize + from),
                to - from,
            )
        }
    }

    /// Lends bytes `from..to` (clamped) of buffer `bid`, if it is ours, to a holder outside the
    /// driver ([`Lent`]); the buffer stays out until that holder has it recycled.
    pub(crate) fn lend(&self, bid: u16, from: usize, to: usize) -> Option<Lent> {
        let bytes = self.chunk(bid, from, to);
        if bytes.is_empty() {
            return None; // not ours, or nothing in range
        }
        let ptr = NonNull::new(bytes.as_ptr().cast_mut())?;
        Some(Lent {
            ptr,
            len: bytes.len(),
        })
    }

    /// Unregisters and frees; with `leak` (operations may still be in flight) the memory is
    /// leaked instead of freed.
    /// A buffer still out (lent to a holder, or a multishot stream's unread rest) is read after
    /// this, so the memory is leaked then too.
    pub(crate) fn release(self, ring: &IoUring, leak: bool) {
        let leak = leak || self.out_count() > 0;
        let unregistered = ring.submitter().unregister_buf_ring(self.bgid).is_ok();
        if unregistered && !leak {
            // SAFETY: no longer registered and no operation in flight: nothing references it.
            unsafe {
                dealloc(self.ring.as_ptr(), self.ring_layout);
                dealloc(self.mem.as_ptr(), self.mem_layout);
            }
        }
    }
}

/// Bytes of a provided buffer lent out of the driver (a `ProvidedBuf`): the kernel wrote them
/// and does not touch the buffer until it is recycled, which only the holder's drop asks for;
/// the buffers' memory is never freed while one is out ([`BufRing::release`] leaks it then).
pub(crate) struct Lent {
    ptr: NonNull<u8>,
    len: usize,
}

impl Lent {
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` lay inside a buffer that was out when lent (`chunk` checked
        // it); it stays out, so unwritten by the kernel, until this lender's holder is dropped,
        // and the allocation is leaked rather than freed while any buffer is out.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}
