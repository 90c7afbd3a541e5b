//! Registered files (`register_file`, `FixedFile`, `*_registered` ops) on three rings each:
//! io_uring (the slot, IOSQE_FIXED_FILE, where the kernel takes the table), io_uring with
//! `RegisteredFiles` forced off, and epoll (plain ops on the fd). Bytes are compared with std's
//! view; the path counters say which path ran; slots are never named by another ring nor reused
//! while an op that named them is in flight.

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use safer_ring::{
    BackendKind, Feature, FixedFile, OpenOptions, Ring, SaferRingConfig, SaferRingError, features,
};
use support::TempPath;

use crate::support;

/// Defines `mod $name { io_uring, io_uring_fallback, epoll }` running `$body(ring)` on a ring
/// built from `$cfg` (a `SaferRingConfig`), then checks the path `RegisteredFiles` took: the
/// slot wherever the ring uses the feature, the plain fd elsewhere.
macro_rules! files_test {
    ($name:ident, $cfg:expr, |$ring:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($ring: &Ring) $body
            fn check(cfg: SaferRingConfig) {
                let Some(ring) = support::ring_with(cfg) else {
                    return;
                };
                run(&ring);
                let s = ring.enhancement_stats(Feature::RegisteredFiles);
                // (A test that also runs foreign handles checks its fallbacks itself.)
                if ring.uses_native(Feature::RegisteredFiles) {
                    assert!(s.native > 0, "{s:?}");
                } else {
                    assert!(s.fallback > 0 && s.native == 0, "{s:?}");
                }
            }
            #[test]
            fn io_uring() {
                check($cfg.backend(BackendKind::IoUring))
            }
            #[test]
            fn io_uring_fallback() {
                let off = safer_ring::ProgressiveEnhancementConfig::default()
                    .feature(Feature::RegisteredFiles, Some(false));
                check($cfg.backend(BackendKind::IoUring).enhancement(off))
            }
            #[test]
            fn epoll() {
                check($cfg.backend(BackendKind::Epoll))
            }
        }
    };
}

fn cfg() -> SaferRingConfig {
    SaferRingConfig::default().entries(64)
}

/// A pattern that differs per offset, so a misplaced block shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Registers `io`; on a ring that uses the feature the handle must have a slot (a kernel
/// refusing the table would show here, with its version).
fn register<F: safer_ring::AsIoFd>(ring: &Ring, io: &F) -> FixedFile {
    let h = ring.register_file(io).unwrap();
    assert_eq!(
        h.slot().is_some(),
        ring.uses_native(Feature::RegisteredFiles),
        "kernel {:?}: {h:?}",
        features::detected().inputs.version
    );
    h
}

fn open_rw(ring: &Ring, path: &TempPath) -> safer_ring::File {
    let opts = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true);
    ring.block_on(ring.open(&path.0, &opts)).unwrap()
}

/// Polls `fut` once: it must be in flight.
fn start<F: Future + Unpin>(fut: &mut F) {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        std::pin::Pin::new(fut).poll(&mut cx),
        Poll::Pending
    ));
}

// Blocks at explicit offsets (out of order), then at the current position; fsync both ways.
files_test!(fixed_files_bytes_round_trip, cfg(), |ring| {
    const BLOCK: usize = 4096;
    let blocks = 8;
    let path = TempPath::new("fixed-files-rt");
    let file = open_rw(ring, &path);
    let h = register(ring, &file);
    let want = pattern(BLOCK * blocks, 3);
    let path2 = TempPath::new("fixed-files-pos");
    let f2 = open_rw(ring, &path2);
    let h2 = register(ring, &f2);
    ring.block_on(async {
        for b in (0..blocks).rev() {
            let chunk = want[b * BLOCK..][..BLOCK].to_vec();
            let (n, _) = ring
                .write_registered(&h, chunk, Some((b * BLOCK) as u64))
                .await;
            assert_eq!(n.unwrap(), BLOCK);
        }
        ring.fsync_registered(&h, false).await.unwrap();
        ring.fsync_registered(&h, true).await.unwrap();
        assert_eq!(
            std::fs::read(&path.0).unwrap(),
            want,
            "the file as std reads it"
        );
        for b in 0..blocks {
            let (n, buf) = ring
                .read_registered(&h, Vec::with_capacity(BLOCK), Some((b * BLOCK) as u64))
                .await;
            assert_eq!(n.unwrap(), BLOCK);
            assert_eq!(buf, want[b * BLOCK..][..BLOCK], "block {b}");
        }
        // The current position: two writes follow each other, then reads from the start.
        for part in [&b"first "[..], b"second"] {
            let (n, _) = ring.write_registered(&h2, part.to_vec(), None).await;
            assert_eq!(n.unwrap(), part.len());
        }
        assert_eq!(std::fs::read(&path2.0).unwrap(), b"first second");
        let (n, buf) = ring
            .read_registered(&h2, Vec::with_capacity(5), Some(0))
            .await;
        assert_eq!((n.unwrap(), &buf[..]), (5, &b"first"[..]));
        // At the end: 0 bytes.
        let (n, _) = ring
            .read_registered(&h2, Vec::with_capacity(5), Some(12))
            .await;
        assert_eq!(n.unwrap(), 0);
    });
    let s = ring.enhancement_stats(Feature::RegisteredFiles);
    assert_eq!(s.native + s.fallback, 8 + 2 + 8 + 2 + 1 + 1);
    if ring.uses_native(Feature::RegisteredFiles) {
        assert_eq!(s.fallback, 0, "every op named its slot");
    }
});

// A loopback TCP connection, both ends registered: 256 KiB each way, byte-exact; then EOF.
files_test!(fixed_files_loopback_socket, cfg(), |ring| {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let std_client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let client = safer_ring::TcpStream::from_owned_fd(OwnedFd::from(std_client));
    let (server, _) = ring.block_on(ring.accept(&listener)).unwrap();
    let (c, s) = (register(ring, &client), register(ring, &server));
    let want = pattern(256 * 1024, 11);
    for (from, to) in [(&c, &s), (&s, &c)] {
        let got = ring.block_on(async {
            let mut sent = 0;
            let mut got = Vec::new();
            while got.len() < want.len() {
                if sent < want.len() {
                    let end = (sent + 32 * 1024).min(want.len());
                    let (n, _) = ring.send_registered(from, want[sent..end].to_vec()).await;
                    sent += n.unwrap();
                }
                let (n, buf) = ring
                    .recv_registered(to, Vec::with_capacity(64 * 1024))
                    .await;
                assert!(n.unwrap() > 0);
                got.extend_from_slice(&buf);
            }
            got
        });
        assert!(got == want, "the bytes arrived in order and unchanged");
    }
    drop(client);
    drop(c);
    let (n, _) = ring.block_on(ring.recv_registered(&s, Vec::with_capacity(8)));
    assert_eq!(n.unwrap(), 0, "EOF once the client's last handle is gone");
    let st = ring.enhancement_stats(Feature::RegisteredFiles);
    if ring.uses_native(Feature::RegisteredFiles) {
        assert_eq!(st.fallback, 0, "every op named its slot: {st:?}");
    }
});

// A handle registered with ring A used on this ring: this ring's table does not hold A's file
// (here its own file sits in the very same slot), so the op runs on the fd and lands in A's
// file, never in the file of this ring's slot.
files_test!(fixed_files_of_another_ring_run_plain, cfg(), |ring| {
    let Some(other) = support::ring(BackendKind::IoUring) else {
        // No io_uring here (e.g. io_uring_disabled=1 for this user): no ring to borrow a
        // handle from. The ring's own handle still runs, plainly.
        let p = TempPath::new("fixed-files-own");
        let own = register(ring, &open_rw(ring, &p));
        let (n, _) = ring.block_on(ring.write_registered(&own, b"own".to_vec(), Some(0)));
        assert_eq!(n.unwrap(), 3);
        assert_eq!(std::fs::read(&p.0).unwrap(), b"own");
        return;
    };
    let (pa, pb) = (
        TempPath::new("fixed-files-a"),
        TempPath::new("fixed-files-b"),
    );
    let (fa, fb) = (open_rw(&other, &pa), open_rw(ring, &pb));
    let foreign = register(&other, &fa);
    let own = register(ring, &fb);
    if foreign.slot().is_some() && own.slot().is_some() {
        assert_eq!(foreign.slot(), own.slot(), "the same index in both tables");
    }
    ring.block_on(async {
        let (n, _) = ring
            .write_registered(&foreign, b"for A".to_vec(), Some(0))
            .await;
        assert_eq!(n.unwrap(), 5);
        let (n, buf) = ring
            .read_registered(&foreign, Vec::with_capacity(8), Some(0))
            .await;
        assert_eq!((n.unwrap(), &buf[..]), (5, &b"for A"[..]));
        ring.fsync_registered(&foreign, false).await.unwrap();
    });
    let s = ring.enhancement_stats(Feature::RegisteredFiles);
    assert_eq!(
        (s.native, s.fallback),
        (0, 3),
        "a foreign slot is never named"
    );
    let native = ring.uses_native(Feature::RegisteredFiles);
    assert_eq!(std::fs::read(&pa.0).unwrap(), b"for A");
    assert_eq!(
        std::fs::read(&pb.0).unwrap(),
        b"",
        "this ring's slot was not written"
    );
    // The own handle works here (and gives the check above a native op where there is one).
    let (n, _) = ring.block_on(ring.write_registered(&own, b"for B".to_vec(), Some(0)));
    assert_eq!(n.unwrap(), 5);
    assert_eq!(std::fs::read(&pb.0).unwrap(), b"for B");
    let s = ring.enhancement_stats(Feature::RegisteredFiles);
    assert_eq!(
        (s.native, s.fallback),
        (u64::from(native), 3 + u64::from(!native))
    );
    // The registering ring gone (its table with it): the handle still works here, plainly,
    // and still writes A's file.
    drop(other);
    let (n, _) = ring.block_on(ring.write_registered(&foreign, b"still A".to_vec(), Some(0)));
    assert_eq!(n.unwrap(), 7);
    assert_eq!(std::fs::read(&pa.0).unwrap(), b"still A");
    assert_eq!(std::fs::read(&pb.0).unwrap(), b"for B");
    let s2 = ring.enhancement_stats(Feature::RegisteredFiles);
    assert_eq!((s2.native, s2.fallback), (s.native, s.fallback + 1));
    drop(foreign);
});

// One user slot. A read on a pipe is in flight through it when its future and the handle are
// dropped: the slot stays taken (the table is full) until the kernel has finished the op, then
// the next file gets that same slot, and nothing of the old pipe shows up through it.
files_test!(
    fixed_files_keep_the_slot_of_a_dropped_op,
    cfg().registered_files(1),
    |ring| {
        let (rx, tx) = ring.pipe().unwrap();
        let h = register(ring, &rx);
        let mut fut = Box::pin(ring.read_registered(&h, Vec::with_capacity(64), None));
        start(&mut fut);
        let _ = ring.block_on(ring.sleep(Duration::from_millis(5)));
        let old_slot = h.slot();
        drop(fut);
        drop(h);
        drop(rx);
        let (rx2, tx2) = ring.pipe().unwrap();
        let h2 = if ring.uses_native(Feature::RegisteredFiles) {
            // The cancelled read has not been reaped yet: its slot is still the kernel's.
            let err = ring.register_file(&rx2).unwrap_err();
            assert!(err.to_string().contains("full"), "{err}");
            // By the clock, generously: an io-wq worker's cancel lands when it gets to run.
            let t = std::time::Instant::now();
            loop {
                let _ = ring.block_on(ring.sleep(Duration::from_millis(1)));
                match ring.register_file(&rx2) {
                    Ok(h) => break h,
                    Err(e) => assert!(e.to_string().contains("full"), "{e}"),
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "the slot never came back"
                );
            }
        } else {
            register(ring, &rx2)
        };
        assert_eq!(h2.slot(), old_slot, "the freed slot is the one reused");
        // Once the ring has reaped the cancelled read, nothing holds the old read end: not the
        // op, not the handle, not the table's slot, so the writer sees EPIPE. (Kernels before
        // 6.4 put a file removed from the table from deferred work, up to about a second later.)
        let mut old_tx = std::fs::File::from(tx.into_owned_fd().unwrap());
        let start = std::time::Instant::now();
        loop {
            match old_tx.write(b"x") {
                Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
                r => assert!(r.is_ok(), "{r:?}"),
            }
            // Deferred work is slower still on an emulated CPU: a bound on a leak, not speed.
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "a reader of the old pipe is still open somewhere"
            );
            let _ = ring.block_on(ring.sleep(Duration::from_millis(10)));
        }
        // The slot names the new pipe.
        let (n, _) = ring.block_on(ring.write(&tx2, b"fresh".to_vec()));
        assert_eq!(n.unwrap(), 5);
        let (n, buf) = ring.block_on(ring.read_registered(&h2, Vec::with_capacity(64), None));
        assert_eq!((n.unwrap(), &buf[..]), (5, &b"fresh"[..]));
    }
);

// A write through the only slot, stuck on a full pipe, dropped with its handle; once the slot
// is free a regular file takes it: the file holds exactly what was written through the new
// handle, none of the old op's bytes.
files_test!(
    fixed_files_dropped_write_never_lands_in_the_next_file,
    cfg().registered_files(1),
    |ring| {
        let (rx, tx) = ring.pipe().unwrap();
        let h = register(ring, &tx);
        let filler = vec![0xEEu8; 1 << 20];
        let mut fut = Box::pin(ring.write_registered(&h, filler, None));
        let mut cx = Context::from_waker(Waker::noop());
        // Up to 1 MiB into a 64 KiB pipe: stays in flight (a partial write would complete; then
        // the check below still holds, with no op in flight).
        let in_flight = fut.as_mut().poll(&mut cx).is_pending();
        let _ = ring.block_on(ring.sleep(Duration::from_millis(5)));
        drop(fut);
        drop(h);
        drop(tx);
        let path = TempPath::new("fixed-files-next");
        let file = open_rw(ring, &path);
        let t = std::time::Instant::now();
        let h2 = loop {
            match ring.register_file(&file) {
                Ok(h) => break h,
                Err(e) => assert!(e.to_string().contains("full") && in_flight, "{e}"),
            }
            let _ = ring.block_on(ring.sleep(Duration::from_millis(1)));
            // By the clock, generously (see above).
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the slot never came back"
            );
        };
        let (n, _) = ring.block_on(ring.write_registered(&h2, b"new file".to_vec(), Some(0)));
        assert_eq!(n.unwrap(), 8);
        // Drain the old pipe: whatever the cancelled write moved went there, not into the file.
        // Its end closes once the write's completion is reaped (the op holds the fd until
        // then), which may be later on a slow machine, or only once the pipe has room again
        // (a cancel that reached an io-wq worker too early leaves the write blocked): so read
        // without blocking and drive the ring, until EOF.
        let mut old_rx = std::fs::File::from(rx.into_owned_fd().unwrap());
        // SAFETY: fcntl on an fd this test owns.
        unsafe { libc::fcntl(old_rx.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let mut drained = Vec::new();
        let t = std::time::Instant::now();
        loop {
            match old_rx.read_to_end(&mut drained) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            let _ = ring.block_on(ring.sleep(Duration::from_millis(1)));
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the dropped write never finished ({} in flight)",
                ring.in_flight()
            );
        }
        assert!(drained.iter().all(|&b| b == 0xEE));
        assert_eq!(std::fs::read(&path.0).unwrap(), b"new file");
    }
);

// The table's user slots are a limit: past it, a clear error naming it; a dropped handle's
// slot is free again. Rings without a table have no such limit (plain fds).
files_test!(
    fixed_files_full_table_is_a_clear_error,
    cfg().registered_files(2),
    |ring| {
        let paths: Vec<_> = (0..3)
            .map(|i| TempPath::new(&format!("fixed-files-full{i}")))
            .collect();
        let files: Vec<_> = paths.iter().map(|p| open_rw(ring, p)).collect();
        let a = register(ring, &files[0]);
        let b = register(ring, &files[1]);
        if ring.uses_native(Feature::RegisteredFiles) {
            let err = ring.register_file(&files[2]).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("all 2 user slots") && msg.contains("registered_files"),
                "{msg}"
            );
            match err {
                SaferRingError::RegistrationFailed { source, .. } => {
                    assert_eq!(source.kind(), ErrorKind::QuotaExceeded)
                }
                other => panic!("{other:?}"),
            }
            let freed = a.slot();
            drop(a);
            let c = register(ring, &files[2]);
            assert_eq!(c.slot(), freed);
            let (n, _) = ring.block_on(ring.write_registered(&c, b"c".to_vec(), Some(0)));
            assert_eq!(n.unwrap(), 1);
        } else {
            let c = register(ring, &files[2]);
            let (n, _) = ring.block_on(ring.write_registered(&c, b"c".to_vec(), Some(0)));
            assert_eq!(n.unwrap(), 1);
            drop(a);
        }
        let (n, _) = ring.block_on(ring.write_registered(&b, b"b".to_vec(), Some(0)));
        assert_eq!(n.unwrap(), 1);
        assert_eq!(std::fs::read(&paths[1].0).unwrap(), b"b");
        assert_eq!(std::fs::read(&paths[2].0).unwrap(), b"c");
    }
);

#[test]
fn fixed_files_out_of_range_is_a_config_error() {
    for n in [0, 40_000] {
        let err = Ring::with_config(cfg().registered_files(n)).unwrap_err();
        assert!(err.to_string().contains("registered_files"), "{err}");
    }
}

/// Native fd passing shares the table with user slots: both rings hold registered files while
/// fds travel between them, and both keep working.
#[test]
fn fixed_files_next_to_fd_passing() {
    let opted = || {
        SaferRingConfig::default()
            .backend(BackendKind::IoUring)
            .enhancement(
                safer_ring::ProgressiveEnhancementConfig::default()
                    .feature(Feature::MsgRingSendFd, Some(true)),
            )
    };
    let Some(sender) = support::ring_with(opted()) else {
        return;
    };
    const K: usize = 20;
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let ring = support::ring_with(opted()).unwrap();
        let (prx, ptx) = ring.pipe().unwrap();
        let mine = register(&ring, &ptx);
        tx.send(ring.handle()).unwrap();
        ring.block_on(async {
            for i in 0..K {
                let safer_ring::Message::Fd(fd) = ring.next_message().await else {
                    panic!("only fds were sent")
                };
                let got = register(&ring, &safer_ring::Pipe::from_owned_fd(fd));
                let (n, _) = ring.write_registered(&got, vec![i as u8], None).await;
                assert_eq!(n.unwrap(), 1);
                let (n, _) = ring.write_registered(&mine, vec![i as u8], None).await;
                assert_eq!(n.unwrap(), 1);
            }
            drop(mine);
            let (n, buf) = ring.read(&prx, Vec::with_capacity(64)).await;
            assert_eq!(buf, (0..K as u8).collect::<Vec<_>>());
            n.unwrap();
        });
        ring.enhancement_stats(Feature::FixedFdInstall)
    });
    let to = rx.recv().unwrap();
    let path = TempPath::new("fixed-files-sender");
    let own = register(&sender, &open_rw(&sender, &path));
    let mut reads = Vec::new();
    sender.block_on(async {
        for i in 0..K {
            let (r, w) = std::io::pipe().unwrap();
            reads.push(r);
            sender
                .msg_ring(&to, safer_ring::Message::Fd(OwnedFd::from(w)))
                .await
                .unwrap();
            let (n, _) = sender.write_registered(&own, vec![i as u8], None).await;
            assert_eq!(n.unwrap(), 1);
        }
    });
    let installed = t.join().unwrap();
    for (i, mut r) in reads.into_iter().enumerate() {
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(
            got,
            [i as u8],
            "fd {i} delivered, and no slot still holds it"
        );
    }
    assert_eq!(
        std::fs::read(&path.0).unwrap(),
        (0..K as u8).collect::<Vec<_>>()
    );
    let s = sender.enhancement_stats(Feature::MsgRingSendFd);
    let native = features::is_available(Feature::MsgRingSendFd)
        && features::is_available(Feature::FixedFdInstall);
    assert_eq!(s.native, if native { K as u64 } else { 0 }, "{s:?}");
    assert_eq!(installed.native, s.native);
}

/// A table larger than RLIMIT_NOFILE, which the kernel refuses (EMFILE): the handle is plain,
/// the ring stops offering the feature, and the ops run on the fd; in strict mode the refusal
/// is an error.
#[test]
fn fixed_files_refused_table_runs_plain() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the live local struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    // Above the largest table (the matrix's guests allow 65536): lower the soft limit for this
    // test (the binary's other tests hold far fewer fds), back when done.
    let _restore = (lim.rlim_cur > 32768).then(|| {
        let low = libc::rlimit {
            rlim_cur: 4096,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the live local struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        Restore(lim)
    });
    let lim = if _restore.is_some() {
        libc::rlimit {
            rlim_cur: 4096,
            rlim_max: lim.rlim_max,
        }
    } else {
        lim
    };
    // The table is 256 fd-passing slots plus the user slots: one more than the limit.
    let Some(users) = (lim.rlim_cur + 1)
        .checked_sub(256)
        .filter(|&n| (1..=32512).contains(&n))
    else {
        support::skip(format_args!(
            "RLIMIT_NOFILE {} leaves no table size the kernel must refuse",
            lim.rlim_cur
        ));
        return;
    };
    let cfg = || {
        cfg()
            .backend(BackendKind::IoUring)
            .registered_files(users as u32)
    };
    let Some(ring) = support::ring_with(cfg()) else {
        return;
    };
    if !ring.uses_native(Feature::RegisteredFiles) {
        support::skip("RegisteredFiles not detected on this kernel");
        return;
    }
    let path = TempPath::new("fixed-files-refused");
    let file = open_rw(&ring, &path);
    let h = ring.register_file(&file).unwrap();
    assert_eq!(h.slot(), None, "a table over RLIMIT_NOFILE was accepted");
    assert!(!ring.uses_native(Feature::RegisteredFiles));
    let (n, _) = ring.block_on(ring.write_registered(&h, b"plain".to_vec(), Some(0)));
    assert_eq!(n.unwrap(), 5);
    let (n, buf) = ring.block_on(ring.read_registered(&h, Vec::with_capacity(8), Some(0)));
    assert_eq!((n.unwrap(), &buf[..]), (5, &b"plain"[..]));
    let s = ring.enhancement_stats(Feature::RegisteredFiles);
    assert_eq!((s.native, s.fallback), (0, 2));

    let strict = safer_ring::ProgressiveEnhancementConfig::default()
        .strict(true)
        .feature(Feature::RegisteredFiles, Some(true));
    let ring = support::ring_with(cfg().enhancement(strict)).unwrap();
    for _ in 0..2 {
        match ring.register_file(&file).unwrap_err() {
            SaferRingError::RegistrationFailed { source, .. } => {
                assert_eq!(source.raw_os_error(), Some(libc::EMFILE), "{source}")
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Puts RLIMIT_NOFILE back when dropped.
struct Restore(libc::rlimit);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: setrlimit reads the live struct.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
    }
}

/// Which call made the table: `register_files_sparse` (5.19+), else (5.5+, e.g. the matrix's
/// 5.10) IORING_REGISTER_FILES with every slot `-1`. Either way the slot works natively.
#[test]
fn fixed_files_table_call_follows_the_kernel() {
    let capture = support::capture::Capture::default();
    let (native, slot) = tracing::subscriber::with_default(capture.clone(), || {
        let Some(ring) = support::ring(BackendKind::IoUring) else {
            return (false, None);
        };
        let (rx, tx) = ring.pipe().unwrap();
        let h = register(&ring, &tx);
        if h.slot().is_some() {
            let (n, _) = ring.block_on(ring.write_registered(&h, b"ok".to_vec(), None));
            assert_eq!(n.unwrap(), 2);
            let (n, buf) = ring.block_on(ring.read(&rx, Vec::with_capacity(4)));
            assert_eq!((n.unwrap(), &buf[..]), (2, &b"ok"[..]));
        }
        (ring.uses_native(Feature::RegisteredFiles), h.slot())
    });
    if !native {
        support::skip("RegisteredFiles not used on this kernel");
        return;
    }
    assert!(slot.is_some());
    let classic = capture
        .lines()
        .iter()
        .any(|l| l.contains("register_files_sparse refused"));
    let v = features::detected()
        .inputs
        .version
        .expect("a kernel version");
    assert_eq!(
        classic,
        v < safer_ring::KernelVersion::new(5, 19, 0),
        "kernel {v}: the -1 array was {}needed",
        if classic { "" } else { "not " }
    );
}
