//! `write_all`/`send_all`/`read_exact` (and positioned forms) over short transfers, and
//! `Slice` handed to operations and back (both backends).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use safer_ring::{IoBuf, OpenOptions};

use crate::support;

/// A blocking std handle to `fd` (a dup: ownership stays apart; the epoll backend's fds are
/// non-blocking, and a dup shares that flag, so this clears it for the whole file).
fn dup_std(fd: &impl AsRawFd) -> std::fs::File {
    use std::os::fd::FromRawFd;
    // SAFETY: dup and fcntl take no pointers.
    let d = unsafe { libc::dup(fd.as_raw_fd()) };
    assert!(d >= 0);
    // SAFETY: as above.
    unsafe {
        libc::fcntl(
            d,
            libc::F_SETFL,
            libc::fcntl(d, libc::F_GETFL) & !libc::O_NONBLOCK,
        )
    };
    // SAFETY: a fresh fd owned by nobody else.
    unsafe { std::fs::File::from_raw_fd(d) }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

backend_test!(write_all_continues_short_writes_on_a_pipe, |ring| {
    // 1 MiB through a 64 KiB pipe: the kernel takes it in pieces.
    let data = pattern(1 << 20);
    let (r, w) = ring.pipe().unwrap();
    let mut rs = dup_std(&r);
    drop(r);
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        rs.read_to_end(&mut got).unwrap();
        got
    });
    let (res, buf) = ring.block_on(ring.write_all(&w, data.clone()));
    res.unwrap();
    assert_eq!(buf.len(), data.len(), "the buffer comes back whole");
    drop(w);
    assert_eq!(reader.join().unwrap(), data);
});

backend_test!(send_all_and_read_exact_over_a_socket, |ring| {
    let data = pattern(3 << 20);
    let (a, b) = ring.unix_pair().unwrap();
    let mut bs = dup_std(&b);
    let echo = {
        let want = data.len();
        std::thread::spawn(move || {
            let mut got = vec![0u8; want];
            bs.read_exact(&mut got).unwrap();
            bs.write_all(&got).unwrap();
        })
    };
    ring.block_on(async {
        let (res, _) = ring.send_all(&a, data.clone()).await;
        res.unwrap();
        let (res, back) = ring.read_exact(&a, Vec::with_capacity(data.len())).await;
        res.unwrap();
        assert_eq!(back, data);
    });
    echo.join().unwrap();
});

backend_test!(read_exact_reports_early_eof_with_the_count, |ring| {
    let (r, w) = ring.pipe().unwrap();
    dup_std(&w).write_all(b"only nine").unwrap();
    drop(w);
    let (res, buf) = ring.block_on(ring.read_exact(&r, Vec::with_capacity(16)));
    let e = res.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(e.to_string(), "end of file after 9 of 16 bytes");
    assert_eq!(&buf[..], b"only nine", "what arrived is in the buffer");
});

backend_test!(positioned_whole_buffers_on_a_file, |ring| {
    let path = support::TempPath::new("whole");
    let opts = OpenOptions::new().read(true).write(true).create(true);
    ring.block_on(async {
        let f = ring.open(&path.0, &opts).await.unwrap();
        let (res, _) = ring.write_all_at(&f, b"0123456789".to_vec(), 100).await;
        res.unwrap();
        let (res, buf) = ring.read_exact_at(&f, Vec::with_capacity(4), 103).await;
        res.unwrap();
        assert_eq!(&buf[..], b"3456");
        let (res, _) = ring.read_exact_at(&f, Vec::with_capacity(4), 108).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    });
});

backend_test!(slices_go_to_the_kernel_and_back, |ring| {
    let (r, w) = ring.pipe().unwrap();
    ring.block_on(async {
        // Write the middle of a buffer.
        let (n, s) = ring.write(&w, b"..hello..".to_vec().slice(2..7)).await;
        assert_eq!(n.unwrap(), 5);
        assert_eq!(s.into_inner(), b"..hello..");
        // Read into the tail of a buffer whose head holds data: it grows.
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"ab");
        let (n, s) = ring.read(&r, v.slice(2..)).await;
        assert_eq!(n.unwrap(), 5);
        assert_eq!(s.into_inner(), b"abhello");
    });
    // A slice past the initialized part does not claim the gap as data.
    dup_std(&w).write_all(b"xyz").unwrap();
    let (n, s) = ring.block_on(ring.read(&r, Vec::with_capacity(16).slice(4..)));
    assert_eq!(n.unwrap(), 3);
    assert_eq!(s.into_inner().len(), 0);
});

#[test]
#[should_panic(expected = "Slice range 2..9 out of bounds for a buffer of 8 bytes")]
fn an_out_of_range_slice_panics_like_slicing() {
    let _ = vec![0u8; 8].slice(2..9);
}
