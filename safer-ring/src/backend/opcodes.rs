//! Sets of io_uring opcodes: [`OpcodeSet`], checked on every push, and the sets derived from
//! the op table's `core` and `syscall_without` columns (`op.rs`), so none is written by hand.

use io_uring::opcode;

use super::op::ROWS;

/// Opcodes every io_uring ring pushes on its own, outside the table: the wake fd's poll, the
/// ring's timer, an op's cancel and the deadline linked to it.
const RING_OWN: [u8; 4] = [
    opcode::PollAdd::CODE,
    opcode::Timeout::CODE,
    opcode::AsyncCancel::CODE,
    opcode::LinkTimeout::CODE,
];

/// The opcodes an io_uring ring cannot do without: the `core` rows' and [`RING_OWN`].
const CORE: OpcodeSet = {
    let mut s = OpcodeSet::EMPTY;
    let mut i = 0;
    while i < ROWS.len() {
        if ROWS[i].core {
            s.insert(ROWS[i].opcode);
        }
        i += 1;
    }
    let mut i = 0;
    while i < RING_OWN.len() {
        s.insert(RING_OWN[i]);
        i += 1;
    }
    s
};

/// [`CORE`] as a sorted list: `features::CORE_OPCODES`, which `auto` checks the probe against.
pub(crate) const CORE_OPCODES: &[u8] = &{
    const LEN: usize = CORE.len();
    CORE.to_array::<LEN>()
};

/// Features that are one op whose io_uring opcode a kernel may lack, with the op's syscall as
/// the fallback: the `syscall_without` column, each once, in table order. Their opcodes
/// (`Detection::Probe`) are not pushed when the ring does not use the feature natively (the
/// configuration can turn each off to run the fallback).
pub(crate) const SYSCALL_FALLBACK: &[crate::Feature] = &{
    const LEN: usize = fallback_features(&mut [None; ROWS.len()]);
    let mut all = [None; ROWS.len()];
    fallback_features(&mut all);
    // The first LEN entries are all `Some` (fallback_features packs them in front).
    const fn at(all: &[Option<crate::Feature>], i: usize) -> crate::Feature {
        match all[i] {
            Some(f) => f,
            None => panic!("fallback_features left a gap"),
        }
    }
    let mut out = [at(&all, 0); LEN];
    let mut i = 1;
    while i < LEN {
        out[i] = at(&all, i);
        i += 1;
    }
    out
};

/// Writes the distinct `syscall_without` features into `out` in table order; returns how many.
const fn fallback_features(out: &mut [Option<crate::Feature>]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < ROWS.len() {
        if let Some(f) = ROWS[i].syscall_without {
            let mut seen = false;
            let mut j = 0;
            while j < n {
                if let Some(g) = out[j] {
                    seen |= g as usize == f as usize;
                }
                j += 1;
            }
            if !seen {
                out[n] = Some(f);
                n += 1;
            }
        }
        i += 1;
    }
    n
}

/// A set of io_uring opcodes (one bit each), checked on every io_uring push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpcodeSet([u64; 4]);

impl OpcodeSet {
    /// Every opcode (a kernel whose probe could not be read: assume all, as before).
    pub(crate) const ALL: OpcodeSet = OpcodeSet([u64::MAX; 4]);
    const EMPTY: OpcodeSet = OpcodeSet([0; 4]);

    pub(crate) fn from_list(ops: &[u8]) -> OpcodeSet {
        let mut s = OpcodeSet::default();
        for &o in ops {
            s.insert(o);
        }
        s
    }

    #[inline]
    pub(crate) const fn contains(&self, op: u8) -> bool {
        self.0[(op >> 6) as usize] & (1 << (op & 63)) != 0
    }

    pub(crate) const fn insert(&mut self, op: u8) {
        self.0[(op >> 6) as usize] |= 1 << (op & 63);
    }

    pub(crate) fn remove(&mut self, op: u8) {
        self.0[usize::from(op >> 6)] &= !(1 << (op & 63));
    }

    /// How many opcodes it holds.
    const fn len(&self) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.0.len() {
            n += self.0[i].count_ones() as usize;
            i += 1;
        }
        n
    }

    /// Its opcodes in ascending order (`N` is [`len`](Self::len)).
    const fn to_array<const N: usize>(self) -> [u8; N] {
        let mut out = [0; N];
        let (mut n, mut op) = (0, 0usize);
        while op <= u8::MAX as usize {
            if self.contains(op as u8) {
                out[n] = op as u8;
                n += 1;
            }
            op += 1;
        }
        assert!(n == N);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_set_holds_each_bit_apart() {
        let mut s = OpcodeSet::from_list(&[0, 63, 64, 255]);
        for o in [0, 63, 64, 255] {
            assert!(s.contains(o), "{o}");
        }
        assert!(!s.contains(1) && !s.contains(128));
        s.remove(64);
        assert!(!s.contains(64) && s.contains(63));
        assert!(OpcodeSet::ALL.contains(200));
    }

    /// The derived sets equal the lists written by hand before the columns existed.
    #[test]
    fn derived_sets_equal_the_former_literals() {
        assert_eq!(
            CORE_OPCODES,
            [
                0, 1, 2, 3, 6, 9, 10, 11, 13, 14, 15, 16, 18, 19, 21, 22, 23, 26, 27, 34
            ]
        );
        use crate::Feature::*;
        let former = [
            UnlinkAt,
            RenameAt,
            MkdirAt,
            SymlinkAt,
            LinkAt,
            Fallocate,
            Ftruncate,
            Fadvise,
            SyncFileRange,
            SocketOp,
            BindListen,
            Splice,
            Tee,
        ];
        assert_eq!(SYSCALL_FALLBACK, former);
    }

    /// Each fallback feature's probe asks for exactly the opcodes of the rows naming it, and
    /// no core opcode depends on a feature.
    #[test]
    fn fallback_features_probe_their_rows_opcodes() {
        for &f in SYSCALL_FALLBACK {
            let crate::features::Detection::Probe(probed) = f.detection() else {
                panic!("{f}: detected by the probe")
            };
            let rows: Vec<u8> = ROWS
                .iter()
                .filter(|r| r.syscall_without == Some(f))
                .map(|r| r.opcode)
                .collect();
            assert_eq!(probed, rows, "{f}");
            assert!(rows.iter().all(|o| !CORE.contains(*o)), "{f}");
        }
        assert!(
            ROWS.iter()
                .all(|r| !(r.core && r.syscall_without.is_some()))
        );
    }
}
