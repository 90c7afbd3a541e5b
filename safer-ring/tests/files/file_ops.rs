//! Files: read/write at offsets, stream reads, vectored I/O, fsync, open/close, metadata.

use safer_ring::{OpenOptions, OwnedBuffer};
use support::TempPath;

use crate::support;

fn rw_opts() -> OpenOptions {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
}

backend_test!(write_then_read_at, |ring| {
    let p = TempPath::new("rw");
    ring.block_on(async {
        let f = ring.open(&p.0, &rw_opts()).await.unwrap();
        let (n, buf) = ring.write_at(&f, b"hello world".to_vec(), 0).await;
        assert_eq!(n.unwrap(), 11);
        assert_eq!(buf, b"hello world"); // buffer handed back intact
        let (n, buf) = ring.read_at(&f, Vec::with_capacity(5), 6).await;
        assert_eq!(n.unwrap(), 5);
        assert_eq!(buf, b"world");
        ring.close(f).await.unwrap();
    });
    assert_eq!(std::fs::read(&p.0).unwrap(), b"hello world");
});

backend_test!(stream_read_twice_is_consecutive, |ring| {
    let p = TempPath::new("stream");
    std::fs::write(&p.0, b"0123456789").unwrap();
    ring.block_on(async {
        let f = ring
            .open(&p.0, &OpenOptions::new().read(true))
            .await
            .unwrap();
        let (n, a) = ring.read(&f, Vec::with_capacity(4)).await;
        assert_eq!(n.unwrap(), 4);
        let (n, b) = ring.read(&f, Vec::with_capacity(4)).await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!((&a[..], &b[..]), (&b"0123"[..], &b"4567"[..]));
        let (n, c) = ring.read(&f, OwnedBuffer::new(8)).await;
        assert_eq!(n.unwrap(), 2);
        assert_eq!(&c[..], b"89");
        let (n, _) = ring.read(&f, Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 0, "EOF");
    });
});

backend_test!(stream_write_appends_at_position, |ring| {
    let p = TempPath::new("swrite");
    ring.block_on(async {
        let f = ring.open(&p.0, &rw_opts()).await.unwrap();
        for chunk in [&b"abc"[..], b"def", b"gh"] {
            let (n, _) = ring.write(&f, chunk.to_vec()).await;
            assert_eq!(n.unwrap(), chunk.len());
        }
        let (n, buf) = ring.read_at(&f, vec![0u8; 16].into_boxed_slice(), 0).await;
        assert_eq!(&buf[..n.unwrap()], b"abcdefgh");
    });
});

backend_test!(vectored_io, |ring| {
    let p = TempPath::new("vec");
    ring.block_on(async {
        let f = ring.open(&p.0, &rw_opts()).await.unwrap();
        let (n, bufs) = ring
            .writev_at(
                &f,
                vec![b"ab".to_vec(), b"cde".to_vec(), b"f".to_vec()],
                Some(0),
            )
            .await;
        assert_eq!(n.unwrap(), 6);
        assert_eq!(bufs.len(), 3);
        let (n, bufs) = ring
            .readv_at(
                &f,
                vec![Vec::with_capacity(4), Vec::with_capacity(4)],
                Some(1),
            )
            .await;
        assert_eq!(n.unwrap(), 5);
        assert_eq!(bufs[0], b"bcde");
        assert_eq!(bufs[1], b"f");
    });
});

backend_test!(fsync_and_metadata, |ring| {
    let p = TempPath::new("meta");
    ring.block_on(async {
        let f = ring.open(&p.0, &rw_opts()).await.unwrap();
        let (n, _) = ring.write_at(&f, vec![7u8; 1000], 0).await;
        assert_eq!(n.unwrap(), 1000);
        ring.fsync(&f).await.unwrap();
        ring.fdatasync(&f).await.unwrap();
        let m = ring.metadata(&f).await.unwrap();
        assert_eq!(m.len, 1000);
        assert!(m.is_file() && !m.is_dir());
        assert_eq!(m.mode & 0o777, 0o666 & !umask());
    });
});

fn umask() -> u32 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap_or(0o022)
}

backend_test!(open_errors_are_clear, |ring| {
    ring.block_on(async {
        let e = ring
            .open("/nonexistent/safer-ring/x", &OpenOptions::new().read(true))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let e = ring
            .open("a\0b", &OpenOptions::new().read(true))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("NUL"), "{e}");
        let e = ring.open("/tmp", &OpenOptions::new()).await.unwrap_err();
        assert!(e.to_string().contains("neither read nor write"), "{e}");
    });
});

backend_test!(
    read_on_write_only_file_fails_with_ebadf_and_returns_buffer,
    |ring| {
        let p = TempPath::new("wo");
        ring.block_on(async {
            let f = ring
                .open(&p.0, &OpenOptions::new().write(true).create(true))
                .await
                .unwrap();
            let (res, buf) = ring.read_at(&f, vec![1u8, 2, 3], 0).await;
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
            assert_eq!(buf, [1, 2, 3], "buffer returned unchanged on error");
        });
    }
);

backend_test!(closed_fd_is_a_clear_error, |ring| {
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    // An fd number that is not open: build a File from a closed descriptor number.
    let p = TempPath::new("closed");
    let std_file = std::fs::File::create(&p.0).unwrap();
    let raw = std_file.into_raw_fd();
    // Move the number onto a high, unused slot, then close it.
    let high = 900;
    // SAFETY: fd-number juggling with no pointers; `raw` is ours.
    assert!(unsafe { libc::dup2(raw, high) } == high);
    // SAFETY: closes fds this test owns.
    unsafe { libc::close(raw) };
    // SAFETY: as above.
    unsafe { libc::close(high) };
    // SAFETY: the number is closed; the File never closes it (forgotten below), it only names it.
    let f = safer_ring::File::from_owned_fd(unsafe { OwnedFd::from_raw_fd(high) });
    ring.block_on(async {
        let (res, _) = ring.write_at(&f, b"x".to_vec(), 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
    });
    // Do not let the File close fd 900 (already closed): leak its handle.
    std::mem::forget(f);
});

backend_test!(oversized_buffer_is_rejected_not_truncated, |ring| {
    let p = TempPath::new("big");
    ring.block_on(async {
        let f = ring.open(&p.0, &rw_opts()).await.unwrap();
        // Capacity above u32::MAX: virtual memory only, never touched.
        let big: Vec<u8> = Vec::with_capacity(u32::MAX as usize + 1);
        let (res, buf) = ring.read_at(&f, big, 0).await;
        let e = res.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(
            e.to_string().contains("4294967296 bytes is too large"),
            "{e}"
        );
        assert_eq!(buf.capacity(), u32::MAX as usize + 1, "buffer handed back");
    });
});

// `u64::MAX` is the backends' "current position" marker: an explicit offset that large (or
// past the largest file offset) must be refused, not silently read at the current position.
backend_test!(offsets_past_the_largest_file_offset_are_refused, |ring| {
    let tmp = TempPath::new("bigoff");
    let path = &tmp.0;
    std::fs::write(path, b"0123456789").unwrap();
    let opts = safer_ring::OpenOptions::new().read(true).write(true);
    ring.block_on(async {
        let file = ring.open(path, &opts).await.unwrap();
        for off in [u64::MAX, i64::MAX as u64 + 1] {
            let (r, buf) = ring.read_at(&file, Vec::with_capacity(4), off).await;
            let e = r.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
            assert_eq!(e.raw_os_error(), None, "refused before the kernel: {e}");
            assert!(e.to_string().contains(&off.to_string()), "{e}");
            assert!(buf.is_empty());
            let (r, _) = ring.write_at(&file, b"x".to_vec(), off).await;
            assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
            let (r, _) = ring
                .readv_at(&file, vec![Vec::with_capacity(4)], Some(off))
                .await;
            assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
            let (r, _) = ring.writev_at(&file, vec![b"x".to_vec()], Some(off)).await;
            assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
        }
        // The largest offset itself is the kernel's to judge: EINVAL (offset + count overflows),
        // the same from both backends; our own refusals above carry no errno.
        let (r, _) = ring
            .read_at(&file, Vec::with_capacity(4), i64::MAX as u64)
            .await;
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        // Nothing was read or written at the current position.
        let (r, buf) = ring.read(&file, Vec::with_capacity(16)).await;
        assert_eq!((r.unwrap(), &buf[..]), (10, &b"0123456789"[..]));
    });
});

backend_test!(read_to_end_at_offsets_and_streams, |ring| {
    let path = TempPath::new("read-to-end");
    // Not a multiple of any growth step, several steps long.
    let data: Vec<u8> = (0..300_007u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path.0, &data).unwrap();
    ring.block_on(async {
        let file = ring
            .open(&path.0, &OpenOptions::new().read(true))
            .await
            .unwrap();
        let (n, buf) = ring.read_to_end_at(&file, b"pre".to_vec(), 1000).await;
        assert_eq!(n.unwrap(), data.len() - 1000);
        assert_eq!(&buf[..3], b"pre");
        assert!(buf[3..] == data[1000..], "bytes differ");
        // At or past the end: nothing appended.
        for at in [data.len() as u64, 1 << 40] {
            let (n, buf) = ring.read_to_end_at(&file, b"x".to_vec(), at).await;
            assert_eq!((n.unwrap(), &buf[..]), (0, &b"x"[..]));
        }
        let (n, buf) = ring.read_to_end_at(&file, Vec::new(), u64::MAX).await;
        assert_eq!(n.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
        assert!(buf.is_empty());
        // The positioned reads left the file's position alone: a stream read starts at 0.
        let (n, buf) = ring.read_to_end(&file, Vec::new()).await;
        assert_eq!(n.unwrap(), data.len());
        assert!(buf == data, "bytes differ");
        // A pipe: until its writer closes.
        let (rx, tx) = ring.pipe().unwrap();
        let r = ring.clone();
        let chunk = data[..70_000].to_vec();
        let writer = ring.spawn(async move {
            let (res, _) = r.write_all(&tx, chunk).await;
            res.unwrap();
        });
        let (n, buf) = ring.read_to_end(&rx, Vec::with_capacity(10)).await;
        writer.await.unwrap();
        assert_eq!(n.unwrap(), 70_000);
        assert!(buf[..] == data[..70_000], "bytes differ");
    });
});
