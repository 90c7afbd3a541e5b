//! A completion's flags as the driver passes them on: the kernel's flag bits, and for a
//! completion that used a provided buffer, the buffer's id and where its bytes start in it.
//!
//! | bits   | what                                                                  |
//! |--------|-----------------------------------------------------------------------|
//! | 0..5   | the kernel's: F_BUFFER, F_MORE, F_SOCK_NONEMPTY, F_NOTIF, F_BUF_MORE  |
//! | 5..16  | a buffer completion's start in its buffer, low 11 bits                |
//! | 16..22 | a buffer completion's buffer id (a ring has at most 64 buffers)       |
//! | 22..32 | its start, high 10 bits                                               |
//!
//! The kernel puts the buffer id in bits 16..32 and nothing in 5..16 for the completions we
//! ask for; with incrementally consumed buffers (IOU_PBUF_RING_INC) a completion's bytes
//! start where the last one naming the same buffer ended, which only the reap (seeing
//! completions in order) knows, so it re-packs the flags with that start.

/// IORING_CQE_F_BUFFER: the completion used a provided buffer.
const F_BUFFER: u32 = 1;
/// The kernel's flag bits kept as they are.
const KERNEL: u32 = 0x1f;
const ID_BITS: u32 = 6;
const LOW_BITS: u32 = 11;

/// Flags `flags` of a completion that used buffer `bid`, its bytes starting `start` bytes in.
pub(crate) fn pack_buffer(flags: u32, bid: u16, start: u32) -> u32 {
    debug_assert!(u32::from(bid) < 1 << ID_BITS && start < 1 << 21);
    let low = start & ((1 << LOW_BITS) - 1);
    (flags & KERNEL) | F_BUFFER | low << 5 | u32::from(bid) << 16 | (start >> LOW_BITS) << 22
}

/// The provided buffer a completion used, if any.
pub(crate) fn buffer_id(flags: u32) -> Option<u16> {
    (flags & F_BUFFER != 0).then_some(((flags >> 16) & ((1 << ID_BITS) - 1)) as u16)
}

/// Where a buffer completion's bytes start in its buffer.
pub(crate) fn buffer_start(flags: u32) -> u32 {
    ((flags >> 5) & ((1 << LOW_BITS) - 1)) | (flags >> 22) << LOW_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_and_start_round_trips_and_the_kernel_bits_stay() {
        for bid in [0u16, 1, 31, 63] {
            for start in [0u32, 1, 2047, 2048, 4095, 16383, 16384, (1 << 21) - 1] {
                for kernel in [0u32, 2, 4, 8, 16, 0x1e] {
                    let f = pack_buffer(kernel | (0xffff << 16), bid, start);
                    assert_eq!(buffer_id(f), Some(bid));
                    assert_eq!(buffer_start(f), start);
                    assert_eq!(f & KERNEL, kernel | F_BUFFER);
                }
            }
        }
    }

    #[test]
    fn the_kernels_own_buffer_flags_read_as_start_zero() {
        // What a ring without incremental buffers passes on unchanged.
        let f = F_BUFFER | 2 | 37 << 16;
        assert_eq!((buffer_id(f), buffer_start(f)), (Some(37), 0));
        assert_eq!(buffer_id(2 | 37 << 16), None);
    }
}
