//! `readable` / `writable`: waits for readiness (POLL_ADD on io_uring, epoll's readiness on the
//! fallback) on pipes, sockets, an eventfd and a regular file; same answers on both backends,
//! nothing consumed, timeouts, hang-ups, and a dropped wait.

use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::Duration;

use safer_ring::{File, UnixStream};
use support::soundness::{poll_once, run_for};

use crate::support;

/// A std handle on the same open file as `io` (its own fd).
fn std_dup(io: &impl AsFd) -> std::fs::File {
    std::fs::File::from(io.as_fd().try_clone_to_owned().unwrap())
}

// A pipe with nothing in it is not readable; a write from another thread makes it so, and the
// data is still there for the read that follows.
backend_test!(readable_waits_for_data_and_consumes_none, |ring| {
    let (rx, tx) = ring.pipe().unwrap();
    let mut wait = ring.readable(&rx);
    assert!(
        run_for(&ring, &mut wait, Duration::from_millis(50)).is_none(),
        "an empty pipe is not readable"
    );
    let mut writer = std_dup(&tx);
    let t = std::thread::spawn(move || writer.write_all(b"ready"));
    let r = ring.block_on(wait).unwrap();
    t.join().unwrap().unwrap();
    assert!(r.is_readable() && !r.is_hangup() && !r.is_error(), "{r:?}");
    let (n, buf) = ring.block_on(ring.read(&rx, vec![0u8; 16]));
    assert_eq!(&buf[..n.unwrap()], b"ready", "readiness consumed nothing");
});

// A socket whose send buffer is full is not writable until the peer reads.
backend_test!(writable_waits_for_room, |ring| {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut filled = 0;
    loop {
        match (&a).write(&[7u8; 65536]) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let a = UnixStream::from_owned_fd(OwnedFd::from(a));
    let mut wait = ring.writable(&a);
    assert!(
        run_for(&ring, &mut wait, Duration::from_millis(50)).is_none(),
        "a full socket is not writable"
    );
    let reader = std::thread::spawn(move || {
        let mut b = b;
        let mut buf = vec![0u8; filled];
        b.read_exact(&mut buf).map(|()| b)
    });
    let r = ring.block_on(wait).unwrap();
    assert!(r.is_writable() && !r.is_readable(), "{r:?}");
    reader.join().unwrap().unwrap();
});

// Ready at once where the condition already holds: an empty pipe's write end, a regular file
// (always ready; epoll cannot even register one), a pipe with data.
backend_test!(ready_at_once, |ring| {
    let (rx, tx) = ring.pipe().unwrap();
    let w = ring.block_on(ring.writable(&tx)).unwrap();
    assert!(w.is_writable(), "{w:?}");
    std_dup(&tx).write_all(b"x").unwrap();
    let r = ring.block_on(ring.readable(&rx)).unwrap();
    assert!(r.is_readable(), "{r:?}");
    let path = support::TempPath::new("readiness-file");
    std::fs::write(&path.0, b"data").unwrap();
    let f = File::from(std::fs::File::open(&path.0).unwrap());
    let r = ring.block_on(ring.readable(&f)).unwrap();
    assert!(r.is_readable(), "a regular file is always readable: {r:?}");
});

// The peer's close: readable (end of stream) with a hang-up; writable reports it too, and the
// write that follows fails.
backend_test!(hangup_is_ready, |ring| {
    let (a, b) = ring.unix_pair().unwrap();
    let mut wait = ring.readable(&a);
    assert!(poll_once(&mut wait).is_pending());
    drop(b);
    let r = ring.block_on(wait).unwrap();
    assert!(r.is_readable() && r.is_hangup(), "{r:?}");
    let (n, _) = ring.block_on(ring.recv(&a, vec![0u8; 8]));
    assert_eq!(n.unwrap(), 0, "end of stream");
    let w = ring.block_on(ring.writable(&a)).unwrap();
    assert!(w.is_hangup() || w.is_error() || w.is_writable(), "{w:?}");
    let (res, _) = ring.block_on(ring.send(&a, b"x".to_vec()));
    assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
});

// An eventfd (the fd kind readiness exists for) signalled from another thread, adopted as a
// `File`; its non-blocking mode is left as the caller set it.
backend_test!(eventfd_from_another_thread, |ring| {
    // SAFETY: eventfd returns a new fd that nothing else owns.
    let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(raw >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `raw` is a fresh fd owned by nothing else.
    let ev = File::from_owned_fd(unsafe { OwnedFd::from_raw_fd(raw) });
    let mut signal = std_dup(&ev);
    let mut wait = ring.readable(&ev);
    assert!(run_for(&ring, &mut wait, Duration::from_millis(30)).is_none());
    let t = std::thread::spawn(move || signal.write_all(&5u64.to_ne_bytes()));
    let r = ring.block_on(wait).unwrap();
    t.join().unwrap().unwrap();
    assert!(r.is_readable(), "{r:?}");
    let mut reader = std_dup(&ev);
    let mut v = [0u8; 8];
    reader.read_exact(&mut v).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 5);
    // Still non-blocking: a second read has nothing and says so instead of blocking.
    let e = reader.read(&mut v).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
});

// `.timeout` bounds a wait; a dropped wait leaves the fd usable and takes nothing.
backend_test!(timeouts_and_drops, |ring| {
    let (rx, tx) = ring.pipe().unwrap();
    let e = ring
        .block_on(ring.readable(&rx).timeout(Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    let mut wait = ring.readable(&rx);
    assert!(poll_once(&mut wait).is_pending());
    ring.poll_completions().unwrap();
    drop(wait);
    std_dup(&tx).write_all(b"kept").unwrap();
    let (n, buf) = ring.block_on(ring.read(&rx, vec![0u8; 8]));
    assert_eq!(&buf[..n.unwrap()], b"kept");
});
