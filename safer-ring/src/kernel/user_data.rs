//! Every `user_data` value a completion can carry, and how each is made and read, in one place
//! so that none can be mistaken for another (the tests below check the layout, under Miri too).
//!
//! | bits or values     | what                                                       | made by            |
//! |--------------------|------------------------------------------------------------|--------------------|
//! | 0..32              | an op's slab key                                           | driver             |
//! | 32..56             | the key's generation: a stale completion misses a reused key | driver           |
//! | bit 57 `RECANCEL_TAG` | a repeated cancel of an op its linked timeout missed   | driver, io_uring   |
//! | bit 58 `POOL_TIMER`| the timer of an op offloaded to the blocking pool          | io_uring backend   |
//! | bit 59 `SPLICE_TIMER_TAG` | a native splice/tee's own timer                     | io_uring backend   |
//! | bit 60 `PARK_TAG`  | the poll of a parked fallback op                           | io_uring backend   |
//! | bit 61 `MSG_FD_TAG`| a passed fd's arrival, `MSG_FD_TAG \| seq`                 | MSG_RING sender    |
//! | bit 62 `LINK_TAG`  | a linked timeout's own completion, `LINK_TAG \| op`        | io_uring backend   |
//! | `RESERVED_USER_DATA..` | the backends' tokens (cancel, wake, timer, doorbell)   | backends, MSG_RING |
//!
//! The driver sees op values and the [`TAGS`] ones; the io_uring backend handles the
//! [`URING_TAGS`] and the tokens itself.

/// Bits of an op's slab key; its generation sits above them.
pub(crate) const KEY_BITS: u32 = 32;
/// The generation's width: bits 32..56, clear of the tag bits and the reserved values.
pub(crate) const GEN_MASK: u32 = 0xff_ffff;

/// The `user_data` of the op in slab slot `key` at `generation`.
pub(crate) fn for_op(key: usize, generation: u32) -> u64 {
    (u64::from(generation) << KEY_BITS) | key as u64
}

/// The slab key and generation an op's `user_data` names.
pub(crate) fn split_op(ud: u64) -> (usize, u32) {
    (
        (ud & 0xffff_ffff) as usize,
        (ud >> KEY_BITS) as u32 & GEN_MASK,
    )
}

/// Tag bit of a cancel repeated because the op's linked timeout (or the last repeat) did not
/// find it: `RECANCEL_TAG | op`. Its result tells the driver whether to try again.
pub(crate) const RECANCEL_TAG: u64 = 1 << 57;
/// Tag bit of the timer of an op offloaded to the pool: `POOL_TIMER | op`.
pub(crate) const POOL_TIMER: u64 = 1 << 58;
/// Tag bit of a native splice/tee's own timer: `SPLICE_TIMER_TAG | op` (see the backend's `push`).
pub(crate) const SPLICE_TIMER_TAG: u64 = 1 << 59;
/// Tag bit of a parked fallback op's poll: `PARK_TAG | token`.
pub(crate) const PARK_TAG: u64 = 1 << 60;
/// Tag bit of the `user_data` a passed fd arrives with: `MSG_FD_TAG | seq` (see
/// `enhanced::msg_ring`); the completion's res is the target file-table slot.
pub(crate) const MSG_FD_TAG: u64 = 1 << 61;
/// Tag bit of a linked timeout's own `user_data`: `LINK_TAG | op's user_data`. Its completion
/// is reported to the sink so the driver can re-cancel an op whose timeout fired but missed it.
pub(crate) const LINK_TAG: u64 = 1 << 62;

/// Tag bits the driver reads: a completion with one of them set belongs to no op's slot.
pub(crate) const TAGS: u64 = LINK_TAG | MSG_FD_TAG | RECANCEL_TAG;
/// Tag bits the io_uring backend handles itself; they never reach the driver.
pub(crate) const URING_TAGS: u64 = PARK_TAG | SPLICE_TIMER_TAG | POOL_TIMER;

/// `user_data` values at and above this are the backends' own and never reach the driver.
pub(crate) const RESERVED_USER_DATA: u64 = u64::MAX - 16;
/// An async cancel's or timeout removal's own completion (ignored).
pub(crate) const CANCEL_TOKEN: u64 = RESERVED_USER_DATA;
/// The io_uring backend's poll on its wake eventfd.
pub(crate) const WAKE_TOKEN: u64 = RESERVED_USER_DATA + 2;
/// The io_uring backend's timeout of a waiting turn.
pub(crate) const TIMER_TOKEN: u64 = RESERVED_USER_DATA + 3;
/// The doorbell completion that OP_MSG_RING posts into a target ring.
pub(crate) const MSG_TOKEN: u64 = RESERVED_USER_DATA + 4;

/// The message sequence number of a passed fd's arrival completion.
pub(crate) fn parse_msg_fd(ud: u64) -> Option<u64> {
    (ud & MSG_FD_TAG != 0 && ud & LINK_TAG == 0).then_some(ud & !MSG_FD_TAG)
}

/// The `user_data` of the op a linked timeout's completion belongs to.
pub(crate) fn parse_link(ud: u64) -> Option<u64> {
    (ud & LINK_TAG != 0).then_some(ud & !LINK_TAG)
}

/// The `user_data` of the op a repeated cancel's completion belongs to.
pub(crate) fn parse_recancel(ud: u64) -> Option<u64> {
    (ud & TAGS == RECANCEL_TAG).then_some(ud & !RECANCEL_TAG)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG_BITS: [u64; 6] = [
        RECANCEL_TAG,
        POOL_TIMER,
        SPLICE_TIMER_TAG,
        PARK_TAG,
        MSG_FD_TAG,
        LINK_TAG,
    ];
    const TOKENS: [u64; 4] = [CANCEL_TOKEN, WAKE_TOKEN, TIMER_TOKEN, MSG_TOKEN];
    /// Every bit an op's own `user_data` may set.
    const OP_BITS: u64 = (GEN_MASK as u64) << KEY_BITS | 0xffff_ffff;

    #[test]
    fn op_values_carry_key_and_generation_clear_of_tags_and_tokens() {
        for (key, generation) in [(0, 0), (7, 1), (u32::MAX as usize, GEN_MASK)] {
            let ud = for_op(key, generation);
            assert_eq!(split_op(ud), (key, generation));
            assert_eq!(ud & (TAGS | URING_TAGS), 0);
            assert!(ud < RESERVED_USER_DATA);
        }
        assert_ne!(for_op(5, 1), for_op(5, 2));
    }

    #[test]
    fn tags_are_distinct_bits_above_every_op_value() {
        let mut seen = 0;
        for t in TAG_BITS {
            assert_eq!(t.count_ones(), 1, "{t:#x}");
            assert_eq!(t & seen, 0, "{t:#x} shared");
            assert_eq!(t & OP_BITS, 0, "{t:#x} overlaps an op's bits");
            seen |= t;
        }
        assert_eq!(TAGS | URING_TAGS, seen);
        assert_eq!(TAGS & URING_TAGS, 0);
        // A tagged op value stays below the tokens.
        assert!((seen | OP_BITS) < RESERVED_USER_DATA);
    }

    #[test]
    fn tokens_are_distinct_reserved_values() {
        for (i, t) in TOKENS.iter().enumerate() {
            assert!(*t >= RESERVED_USER_DATA, "{t:#x}");
            assert!(!TOKENS[..i].contains(t), "{t:#x} twice");
        }
    }

    #[test]
    fn tagged_values_parse_back() {
        let op = for_op(3, 9);
        assert_eq!(parse_link(LINK_TAG | op), Some(op));
        assert_eq!(parse_link(op), None);
        assert_eq!(parse_msg_fd(MSG_FD_TAG | 42), Some(42));
        assert_eq!(parse_msg_fd(op), None);
        // A link timeout's value is never read as a passed fd.
        assert_eq!(parse_msg_fd(LINK_TAG | MSG_FD_TAG | 42), None);
        assert_eq!(parse_recancel(RECANCEL_TAG | op), Some(op));
        assert_eq!(parse_recancel(op), None);
        assert_eq!(parse_recancel(LINK_TAG | RECANCEL_TAG | op), None);
        assert_eq!(parse_link(RECANCEL_TAG | op), None);
    }
}
