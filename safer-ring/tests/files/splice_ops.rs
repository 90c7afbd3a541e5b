//! splice, tee and `copy` on three rings each: io_uring (native where the kernel has the
//! opcode), io_uring with the feature forced off (splice(2)/tee(2) parked on poll SQEs), and
//! epoll. Real files (sparse ones past 4 GiB), pipes and loopback TCP sockets; bytes are
//! compared with what std reads.

use support::pattern;

use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use safer_ring::{BackendKind, Feature, File, OpenOptions, Ring, RingRef, TcpStream};

use crate::support;

/// A temp file holding `data` at `at` (sparse before it), opened on the ring for reading
/// (`write` too if asked), with a std handle sharing its position.
fn file_with(tag: &str, data: &[u8], at: u64) -> (support::TempPath, File, std::fs::File) {
    let path = support::TempPath::new(tag);
    let f = std::fs::File::create(&path.0).unwrap();
    f.write_all_at(data, at).unwrap();
    let std = std::fs::OpenOptions::new()
        .read(true)
        .open(&path.0)
        .unwrap();
    let shared = std.try_clone().unwrap();
    (path, File::from(std), shared)
}

fn new_file(ring: &Ring, tag: &str) -> (support::TempPath, File) {
    let path = support::TempPath::new(tag);
    let opts = OpenOptions::new().read(true).write(true).create(true);
    let f = ring.block_on(ring.open(&path.0, &opts)).unwrap();
    (path, f)
}

/// A connected loopback pair: (client, server side).
async fn tcp_pair(ring: &RingRef) -> (TcpStream, TcpStream) {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = RingRef::clone(ring);
    let accepted = ring.spawn(async move { r.accept(&listener).await.map(|(s, _)| s) });
    let client = ring.connect_tcp(addr).await.unwrap();
    (client, accepted.await.unwrap().unwrap())
}

async fn recv_exact(ring: &RingRef, sock: &TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(want);
    while got.len() < want {
        let (n, buf) = ring.recv(sock, Vec::with_capacity(want - got.len())).await;
        assert!(n.unwrap() > 0, "EOF after {} of {want} bytes", got.len());
        got.extend_from_slice(&buf);
    }
    got
}

/// Moves `len` bytes from `from` at `off_in` through a pipe into `to` at `off_out`.
fn splice_through_pipe(ring: &Ring, from: &File, off_in: u64, to: &File, off_out: u64, len: u32) {
    let (rx, tx) = ring.pipe().unwrap();
    ring.block_on(async {
        let mut done = 0u32;
        while done < len {
            let n = ring
                .splice(
                    from,
                    Some(off_in + u64::from(done)),
                    &tx,
                    None,
                    len - done,
                    0,
                )
                .await
                .unwrap() as u32;
            assert!(n > 0, "unexpected EOF at {done} of {len}");
            let mut left = n;
            while left > 0 {
                let at = off_out + u64::from(done + n - left);
                let m = ring.splice(&rx, None, to, Some(at), left, 0).await.unwrap() as u32;
                assert!(m > 0);
                left -= m;
            }
            done += n;
        }
    });
}

three_rings_test!(paths
    splice_file_pipe_file_with_offsets,
    Feature::Splice,
    |ring| {
        // Larger than a pipe (64 KiB): several rounds, each at the right offsets.
        let data = pattern(300_000, 1);
        let (_p, src, mut src_std) = file_with("splice-src", &data, 0);
        let (dst_path, dst) = new_file(ring, "splice-dst");
        splice_through_pipe(ring, &src, 1000, &dst, 77, 250_000);
        let got = std::fs::read(&dst_path.0).unwrap();
        assert_eq!(got.len(), 77 + 250_000);
        assert!(got[..77].iter().all(|&b| b == 0));
        assert!(got[77..] == data[1000..251_000], "bytes differ");
        // Explicit offsets leave the file position where it was.
        assert_eq!(src_std.stream_position().unwrap(), 0);

        // Past 4 GiB on sparse files: offsets are 64-bit all the way.
        let far_in = (5 << 30) + 3;
        let far_out = (6 << 30) + 7;
        let data = pattern(70_000, 2);
        let (_p2, big, _) = file_with("splice-big-src", &data, far_in);
        let (big_out_path, big_out) = new_file(ring, "splice-big-dst");
        splice_through_pipe(ring, &big, far_in, &big_out, far_out, 70_000);
        let out = std::fs::File::open(&big_out_path.0).unwrap();
        assert_eq!(out.metadata().unwrap().len(), far_out + 70_000);
        let mut back = vec![0u8; 70_000];
        out.read_exact_at(&mut back, far_out).unwrap();
        assert!(back == data, "bytes past 4 GiB differ");

        // `None` on a file uses and moves its position.
        let (rx, tx) = ring.pipe().unwrap();
        src_std.seek(io::SeekFrom::Start(10)).unwrap();
        let n = ring
            .block_on(ring.splice(&src, None, &tx, None, 100, 0))
            .unwrap();
        assert_eq!(n, 100);
        assert_eq!(src_std.stream_position().unwrap(), 110);
        let (_, buf) = ring.block_on(ring.read(&rx, Vec::with_capacity(200)));
        assert_eq!(buf, data_at(&_p.0, 10, 100));
    }
);

fn data_at(path: &std::path::Path, at: usize, len: usize) -> Vec<u8> {
    std::fs::read(path).unwrap()[at..at + len].to_vec()
}

three_rings_test!(paths splice_pipe_to_tcp_socket, Feature::Splice, |ring| {
    // 1 MiB through a 64 KiB pipe into a socket: both ends fill and drain, so the splice
    // waits on the pipe (empty) and on the socket (full) in turn.
    let data = pattern(1 << 20, 3);
    ring.block_on(async {
        let (client, server) = tcp_pair(ring).await;
        let (rx, tx) = ring.pipe().unwrap();
        let r = RingRef::clone(ring);
        let d = data.clone();
        let writer = ring.spawn(async move {
            for chunk in d.chunks(10_000) {
                let (res, _) = r.write_all(&tx, chunk.to_vec()).await;
                res.unwrap();
                r.sleep(Duration::from_micros(200)).await.ok();
            }
        });
        let r = RingRef::clone(ring);
        let total = data.len();
        let splicer = ring.spawn(async move {
            let mut moved = 0;
            while moved < total {
                let n = r
                    .splice(&rx, None, &client, None, 1 << 20, 0)
                    .await
                    .unwrap();
                assert!(n > 0);
                moved += n;
            }
            moved
        });
        let got = recv_exact(ring, &server, total).await;
        assert!(got == data, "bytes differ");
        writer.await.unwrap();
        assert_eq!(splicer.await.unwrap(), total);
    });
});

three_rings_test!(paths splice_tee_duplicates_bytes, Feature::Tee, |ring| {
    let data = pattern(5000, 4);
    let (rx, tx) = ring.pipe().unwrap();
    let (rx2, tx2) = ring.pipe().unwrap();
    ring.block_on(async {
        // Parked first: tee waits for the input pipe to have bytes.
        let r = RingRef::clone(ring);
        let tee = ring.spawn(async move {
            let n = r.tee(&rx, &tx2, 10_000).await.unwrap();
            (n, rx, tx2)
        });
        ring.sleep(Duration::from_millis(20)).await.ok();
        ring.write_all(&tx, data.clone()).await.0.unwrap();
        let (n, rx, tx2) = tee.await.unwrap();
        assert_eq!(n, data.len());
        let (_, copy) = ring.read(&rx2, Vec::with_capacity(10_000)).await;
        let (_, orig) = ring.read(&rx, Vec::with_capacity(10_000)).await;
        assert!(copy == data && orig == data, "tee lost or changed bytes");
        // A short len duplicates only that much.
        ring.write_all(&tx, b"abcdef".to_vec()).await.0.unwrap();
        assert_eq!(ring.tee(&rx, &tx2, 3).await.unwrap(), 3);
        let (_, copy) = ring.read(&rx2, Vec::with_capacity(16)).await;
        assert_eq!(copy, b"abc");
    });
});

const FIVE_MIB: usize = 5 << 20;

three_rings_test!(paths splice_copy_file_to_socket, Feature::Splice, |ring| {
    let data = pattern(FIVE_MIB, 5);
    let (_p, src, _) = file_with("copy-sock", &data, 0);
    ring.block_on(async {
        let (client, server) = tcp_pair(ring).await;
        let r = RingRef::clone(ring);
        let reader = ring.spawn(async move { recv_exact(&r, &server, FIVE_MIB).await });
        let (res, n) = ring.copy(&src, 0, &client, FIVE_MIB as u64).await;
        res.unwrap();
        assert_eq!(n, FIVE_MIB as u64);
        assert!(reader.await.unwrap() == data, "bytes differ");
    });
});

three_rings_test!(paths
    splice_copy_file_to_file_stops_at_eof,
    Feature::Splice,
    |ring| {
        let data = pattern(FIVE_MIB, 6);
        let (_p, src, _) = file_with("copy-src", &data, 0);
        let (dst_path, dst) = new_file(ring, "copy-dst");
        let (res, n) = ring.block_on(ring.copy(&src, 0, &dst, FIVE_MIB as u64));
        res.unwrap();
        assert_eq!(n, FIVE_MIB as u64);
        assert!(std::fs::read(&dst_path.0).unwrap() == data, "bytes differ");

        // A len past the end stops at EOF with the exact count; `to` is written at its position.
        let (dst2_path, dst2) = new_file(ring, "copy-dst2");
        ring.block_on(ring.write_all(&dst2, b"head:".to_vec()))
            .0
            .unwrap();
        let (res, n) = ring.block_on(ring.copy(&src, 12_345, &dst2, 10 * FIVE_MIB as u64));
        res.unwrap();
        assert_eq!(n, (FIVE_MIB - 12_345) as u64);
        let got = std::fs::read(&dst2_path.0).unwrap();
        assert_eq!(&got[..5], b"head:");
        assert!(got[5..] == data[12_345..], "bytes differ");
        // From the end: nothing, and no error.
        let (res, n) = ring.block_on(ring.copy(&src, FIVE_MIB as u64, &dst2, 100));
        res.unwrap();
        assert_eq!(n, 0);
    }
);

three_rings_test!(paths
    splice_copy_where_splice_is_refused_reads_and_writes,
    Feature::Splice,
    |ring| {
        // The kernel refuses to splice into an O_APPEND file (EINVAL): `copy` writes what its
        // pipe already holds, then the rest through a buffer, with the exact count.
        let data = pattern(700_000, 9);
        let (_p, src, _) = file_with("copy-append-src", &data, 0);
        let path = support::TempPath::new("copy-append-dst");
        std::fs::write(&path.0, b"log:").unwrap();
        let opts = OpenOptions::new().append(true);
        let dst = ring.block_on(ring.open(&path.0, &opts)).unwrap();
        let (res, n) = ring.block_on(ring.copy(&src, 100, &dst, u64::MAX));
        res.unwrap();
        assert_eq!(n, 700_000 - 100);
        let got = std::fs::read(&path.0).unwrap();
        assert_eq!(&got[..4], b"log:");
        assert!(got[4..] == data[100..], "bytes differ");
        // A plain splice into it is the kernel's EINVAL (nothing to check up front).
        let (rx, tx) = ring.pipe().unwrap();
        ring.block_on(ring.write_all(&tx, b"x".to_vec())).0.unwrap();
        let e = ring
            .block_on(ring.splice(&rx, None, &dst, None, 1, 0))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    }
);

three_rings_test!(paths
    splice_timeout_and_drop_while_waiting,
    Feature::Splice,
    |ring| {
        let (rx, tx) = ring.pipe().unwrap();
        let (dst_path, dst) = new_file(ring, "splice-wait");
        // An empty pipe: the splice waits, and its timeout ends it.
        let e = ring
            .block_on(
                ring.splice(&rx, None, &dst, Some(0), 10, 0)
                    .timeout(Duration::from_millis(50)),
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        // Dropped while waiting: cancelled, so it takes none of the bytes written afterwards.
        let waiting = ring.block_on(async {
            let op = std::pin::pin!(ring.splice(&rx, None, &dst, Some(0), 10, 0));
            let timer = ring.sleep(Duration::from_millis(30));
            matches!(
                futures_util::future::select(op, timer).await,
                futures_util::future::Either::Right(_)
            )
        });
        assert!(waiting, "a splice from an empty pipe completed");
        ring.block_on(ring.sleep(Duration::from_millis(30))).ok();
        ring.block_on(ring.write_all(&tx, b"abc".to_vec()))
            .0
            .unwrap();
        ring.block_on(ring.sleep(Duration::from_millis(30))).ok();
        assert_eq!(
            std::fs::read(&dst_path.0).unwrap(),
            b"",
            "the dropped splice wrote"
        );
        let n = ring
            .block_on(ring.splice(&rx, None, &dst, Some(4), 10, 0))
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(std::fs::read(&dst_path.0).unwrap(), b"\0\0\0\0abc");
    }
);

/// `InvalidInput` whose message names `what`.
fn invalid(res: io::Result<usize>, what: &str) {
    let e = res.expect_err(what);
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
    assert!(e.to_string().contains(what), "{what} not named in: {e}");
}

three_rings_test!(paths splice_bad_input_is_a_clear_error, Feature::Splice, |ring| {
    let (_p, file, _) = file_with("splice-bad", b"0123456789", 0);
    let (_q, rw) = new_file(ring, "splice-bad-rw");
    let (rx, tx) = ring.pipe().unwrap();
    let (a, _b) = ring.unix_pair().unwrap();
    // Neither end a pipe.
    let e = ring
        .block_on(ring.splice(&file, Some(0), &a, None, 10, 0))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let msg = e.to_string();
    assert!(
        msg.contains("needs a pipe") && msg.contains("regular file") && msg.contains("socket"),
        "{msg}"
    );
    // An offset on a pipe or a socket end.
    invalid(
        ring.block_on(ring.splice(&rx, Some(0), &rw, Some(0), 10, 0)),
        "from_off",
    );
    invalid(
        ring.block_on(ring.splice(&file, Some(0), &tx, Some(5), 10, 0)),
        "to_off",
    );
    // Offsets past i64::MAX.
    invalid(
        ring.block_on(ring.splice(&file, Some(1 << 63), &tx, None, 10, 0)),
        "from_off",
    );
    // Flags splice does not take.
    invalid(
        ring.block_on(ring.splice(&file, Some(0), &tx, None, 10, 0x100)),
        "flags",
    );
    // The wrong direction: the pipe's write end as the source, a read-only file as the target.
    invalid(
        ring.block_on(ring.splice(&tx, None, &rw, Some(0), 10, 0)),
        "`from`",
    );
    invalid(
        ring.block_on(ring.splice(&rx, None, &file, Some(0), 10, 0)),
        "`to`",
    );
    // A directory.
    let dir = ring
        .block_on(ring.open(std::env::temp_dir(), &OpenOptions::new().read(true)))
        .unwrap();
    invalid(
        ring.block_on(ring.splice(&dir, Some(0), &tx, None, 10, 0)),
        "directory",
    );
    // tee needs two pipes.
    invalid(ring.block_on(ring.tee(&rx, &a, 10)), "pipe_out");
    invalid(ring.block_on(ring.tee(&file, &tx, 10)), "pipe_in");
    // EBADF territory: a write-only source, for splice and for copy (nothing copied).
    let wpath = support::TempPath::new("splice-wronly");
    let wonly = File::from(std::fs::File::create(&wpath.0).unwrap());
    let e = ring
        .block_on(ring.splice(&wonly, Some(0), &tx, None, 10, 0))
        .unwrap_err();
    assert!(
        e.to_string().contains("not open for reading") && e.to_string().contains("EBADF"),
        "{e}"
    );
    let (res, n) = ring.block_on(ring.copy(&wonly, 0, &a, 10));
    let e = res.unwrap_err();
    assert_eq!((e.kind(), n), (io::ErrorKind::InvalidInput, 0), "{e}");
    invalid(
        ring.block_on(ring.copy(&file, 1 << 63, &a, 1))
            .0
            .map(|()| 0),
        "from_off",
    );
    // The pipe still works after all that (nothing reached the kernel half-done).
    assert_eq!(
        ring.block_on(ring.splice(&file, Some(2), &tx, None, 3, 0))
            .unwrap(),
        3
    );
    let (_, buf) = ring.block_on(ring.read(&rx, Vec::with_capacity(8)));
    assert_eq!(buf, b"234");
});

/// Drives `copy` (of far more than the sockets buffer) until bytes wait in `server`'s receive
/// queue: a fixed time may pass before a slow machine moved any. Whether it finished first.
fn copy_until_bytes_arrive(
    ring: &RingRef,
    copy: impl std::future::Future,
    server: &std::net::TcpStream,
) -> bool {
    use std::os::fd::AsRawFd;
    let queued = || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer we pass.
        let r = unsafe { libc::ioctl(server.as_raw_fd(), libc::FIONREAD, &mut n) };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        n
    };
    ring.block_on(async {
        let mut copy = std::pin::pin!(copy);
        let t = Instant::now();
        loop {
            let timer = ring.sleep(Duration::from_millis(300));
            if let futures_util::future::Either::Left(_) =
                futures_util::future::select(copy.as_mut(), timer).await
            {
                return true;
            }
            if queued() > 0 {
                return false;
            }
            // A hang, not speed.
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the copy moved no byte"
            );
        }
    })
}

/// A client whose peer does not read, with small buffers so a copy stalls soon.
async fn stalled_pair(ring: &RingRef) -> (TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = ring
        .connect_tcp(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    socket2::SockRef::from(&client)
        .set_send_buffer_size(64 << 10)
        .unwrap();
    socket2::SockRef::from(&server)
        .set_recv_buffer_size(64 << 10)
        .unwrap();
    (client, server)
}

three_rings_test!(paths splice_dropped_copy_keeps_its_fds, Feature::Splice, |ring| {
    let data = pattern(8 << 20, 7);
    let (_p, src, _) = file_with("copy-drop", &data, 0);
    let (client, server) = ring.block_on(stalled_pair(ring));
    // The peer does not read: the copy fills the socket and its pipe, then waits.
    let copy = ring.copy(&src, 0, &client, data.len() as u64);
    let finished = copy_until_bytes_arrive(ring, copy, &server);
    assert!(!finished, "the copy finished although nobody read");
    // The copy future is gone; its ops are not. New pipes now would take any fd number the
    // copy's pipe gave up early; a splice still parked on that number would feed them.
    let markers: Vec<_> = (0..4).map(|_| ring.pipe().unwrap()).collect();
    for (_, tx) in &markers {
        ring.block_on(ring.write_all(tx, b"marker".to_vec()))
            .0
            .unwrap();
    }
    drop(client);
    // Now read: what arrives is a prefix of the file, nothing else.
    let reader = std::thread::spawn(move || {
        let mut server = server;
        server
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match server.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        got
    });
    // Drive the ring meanwhile (epoll retries parked syscalls on its turns).
    ring.block_on(ring.sleep(Duration::from_millis(800))).ok();
    let got = reader.join().unwrap();
    assert!(
        !got.is_empty() && got.len() < data.len(),
        "{} bytes",
        got.len()
    );
    assert!(
        got == data[..got.len()],
        "the peer got bytes that are not the file's"
    );
    for (rx, _) in &markers {
        let (_, buf) = ring.block_on(ring.read(rx, Vec::with_capacity(16)));
        assert_eq!(buf, b"marker");
    }
});

/// Drops `ring` while a dropped copy's splice waits on a socket nobody reads: the ring
/// cancels it and returns (no hang), the fds close once the op is done.
fn drop_ring_with_stalled_copy(ring: Ring) {
    let data = pattern(8 << 20, 8);
    let (_p, src, _) = file_with("copy-drop-ring", &data, 0);
    let (client, server) = ring.block_on(stalled_pair(&ring));
    let copy = ring.copy(&src, 0, &client, data.len() as u64);
    let finished = copy_until_bytes_arrive(&ring, copy, &server);
    assert!(!finished, "the copy finished although nobody read");
    drop((client, src));
    let t = Instant::now();
    drop(ring);
    let took = t.elapsed();
    // The drain timeout is a minute (`stalled_copy_ring`): a cancelled splice ends long
    // before it, a splice the drop waits out does not.
    assert!(took < Duration::from_secs(30), "ring drop took {took:?}");
    // The cancelled op released the socket: the peer sees it close after the bytes sent.
    let mut server = server;
    server
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).unwrap();
    assert!(
        got == data[..got.len()],
        "the peer got bytes that are not the file's"
    );
}

/// `cfg` with a drain timeout of a minute: a drop that waits it out is told from a slow one.
fn stalled_copy_ring(cfg: safer_ring::SaferRingConfig) -> Option<Ring> {
    support::ring_with(cfg.entries(64).drain_timeout(Duration::from_secs(60)))
}

mod splice_ring_drop_with_stalled_copy {
    use super::*;
    #[test]
    fn io_uring() {
        let cfg = safer_ring::SaferRingConfig::default().backend(BackendKind::IoUring);
        if let Some(r) = stalled_copy_ring(cfg) {
            drop_ring_with_stalled_copy(r)
        }
    }
    #[test]
    fn io_uring_fallback() {
        if let Some(r) = stalled_copy_ring(support::uring_wishing(Feature::Splice, Some(false))) {
            drop_ring_with_stalled_copy(r)
        }
    }
    #[test]
    fn epoll() {
        let cfg = safer_ring::SaferRingConfig::default().backend(BackendKind::Epoll);
        drop_ring_with_stalled_copy(stalled_copy_ring(cfg).unwrap())
    }
}
