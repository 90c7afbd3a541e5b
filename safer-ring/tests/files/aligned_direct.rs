//! `AlignedBuf` with a real `O_DIRECT` file on both backends: 4 KiB blocks written and read
//! back at aligned offsets, bypassing the page cache.

use safer_ring::{AlignedBuf, OpenOptions, Ring};

use crate::support;

const BLOCK: usize = 4096;

/// Block `i`'s contents: distinct per block and per byte, so a misplaced block shows.
fn block(i: usize) -> Vec<u8> {
    (0..BLOCK).map(|j| (i * 31 + j * 7 % 251) as u8).collect()
}

fn run_direct(ring: &Ring, tag: &str) {
    let Some(path) = support::direct_path(tag) else {
        return;
    };
    ring.block_on(async {
        let opts = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT);
        let file = ring.open(&path.0, &opts).await.unwrap();
        // Blocks 0..4 written out of order, each at its aligned offset.
        for i in [2usize, 0, 3, 1] {
            let mut buf = AlignedBuf::new(BLOCK).unwrap();
            buf.extend_from_slice(&block(i)).unwrap();
            let (n, back) = ring.write_at(&file, buf, (i * BLOCK) as u64).await;
            assert_eq!(n.unwrap(), BLOCK);
            assert_eq!(back.len(), BLOCK);
        }
        // One read of two blocks, then single blocks, into aligned buffers.
        let (n, two) = ring
            .read_at(&file, AlignedBuf::new(2 * BLOCK).unwrap(), BLOCK as u64)
            .await;
        assert_eq!(n.unwrap(), 2 * BLOCK);
        assert_eq!(&two[..BLOCK], &block(1)[..]);
        assert_eq!(&two[BLOCK..], &block(2)[..]);
        let mut buf = AlignedBuf::new(BLOCK).unwrap();
        for i in 0..4 {
            let (n, back) = ring.read_at(&file, buf, (i * BLOCK) as u64).await;
            assert_eq!(n.unwrap(), BLOCK);
            assert_eq!(&back[..], &block(i)[..], "block {i}");
            buf = back;
        }
        // At the end of the file: 0 bytes, and the buffer says so.
        let (n, back) = ring.read_at(&file, buf, (4 * BLOCK) as u64).await;
        assert_eq!(n.unwrap(), 0);
        assert!(back.is_empty());
        // Where the filesystem enforces O_DIRECT's alignment an unaligned offset is refused
        // (EINVAL); tmpfs (the kernel matrix's guests) accepts O_DIRECT without enforcing it,
        // and then the read must still bring the right bytes. The buffer comes back either way.
        let (res, back) = ring.read_at(&file, back, 100).await;
        match res {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
            Ok(n) => {
                let want: Vec<u8> = (0..4).flat_map(block).skip(100).take(n).collect();
                assert_eq!(
                    &back[..n],
                    &want[..],
                    "unaligned read on a non-enforcing fs"
                );
            }
        }
        assert_eq!(back.capacity(), BLOCK);
        ring.close(file).await.unwrap();
    });
    let on_disk = std::fs::read(&path.0).unwrap();
    assert_eq!(on_disk.len(), 4 * BLOCK);
    for i in 0..4 {
        assert_eq!(
            &on_disk[i * BLOCK..(i + 1) * BLOCK],
            &block(i)[..],
            "block {i} on disk"
        );
    }
}

backend_test!(o_direct_blocks_round_trip, |ring| {
    run_direct(&ring, &format!("{:?}", ring.backend()));
});
