//! Attacks on "a dropped receive never takes what arrives after the drop" with files io_uring
//! cannot poll for nonblocking reads: a pty, a FIFO, an eventfd. io_uring keeps fds blocking
//! and reads a file without NOWAIT support on an io-wq worker, which stays blocked in the read
//! until the cancel reaches it; the bytes written after the drop must not be taken by it.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

use support::drops::{arm_and_drop, each, must_arrive};

use crate::support;

/// A pty pair in raw mode: (master, slave), both blocking; `None` (with the reason printed)
/// where the system has no ptys (the kernel matrix's guests mount no devpts).
fn pty() -> Option<(std::fs::File, std::fs::File)> {
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty writes two fds into the live locals; no name, termios or winsize.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "openpty: {e}");
        support::skip(format_args!("no ptys here (openpty: {e})"));
        return None;
    }
    // SAFETY: fresh fds owned by nobody else.
    let (m, s) = unsafe { (std::fs::File::from_raw_fd(m), std::fs::File::from_raw_fd(s)) };
    // SAFETY: termios calls on the live slave fd and a local.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(
            libc::tcgetattr(std::os::fd::AsRawFd::as_raw_fd(&s), &mut t),
            0
        );
        libc::cfmakeraw(&mut t);
        assert_eq!(
            libc::tcsetattr(std::os::fd::AsRawFd::as_raw_fd(&s), libc::TCSANOW, &t),
            0
        );
    }
    Some((m, s))
}

#[test]
fn pty_reads_dropped_then_written_lose_nothing() {
    each(|what, ring, when| {
        for round in 0..20 {
            let what = format!("{what}, round {round}");
            let Some((m, mut s)) = pty() else {
                return;
            };
            let m = safer_ring::File::from(m);
            arm_and_drop(ring, ring.read(&m, vec![0u8; 64]), when, &what);
            s.write_all(b"after the drop").unwrap();
            // A raw pty may hand the bytes over in pieces: read until all came.
            let mut got = Vec::new();
            while got.len() < 14 {
                let (n, buf) = must_arrive(ring, &what, ring.read(&m, vec![0u8; 64]));
                got.extend_from_slice(&buf[..n.unwrap()]);
            }
            assert_eq!(got, b"after the drop", "{what}");
        }
    });
}

#[test]
fn fifo_reads_dropped_then_written_lose_nothing() {
    each(|what, ring, when| {
        for round in 0..20 {
            let what = format!("{what}, round {round}");
            let path = support::TempPath::new("drop-fifo");
            let c = std::ffi::CString::new(path.0.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: mkfifo reads the live C string.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // Read and write ends, both opened blocking (O_RDWR first, so neither open waits).
            let rw = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path.0)
                .unwrap();
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(&path.0)
                .unwrap();
            let r = safer_ring::File::from(rw);
            arm_and_drop(ring, ring.read(&r, vec![0u8; 64]), when, &what);
            w.write_all(b"after the drop").unwrap();
            let (n, buf) = must_arrive(ring, &what, ring.read(&r, vec![0u8; 64]));
            assert_eq!(&buf[..n.unwrap()], b"after the drop", "{what}");
        }
    });
}

#[test]
fn eventfd_reads_dropped_then_signalled_lose_nothing() {
    each(|what, ring, when| {
        for round in 0..20 {
            let what = format!("{what}, round {round}");
            // SAFETY: eventfd takes no pointers.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            assert!(fd >= 0);
            // SAFETY: a fresh fd owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut w = support::soundness::dup_std(&fd);
            let efd = safer_ring::File::from_owned_fd(fd);
            arm_and_drop(ring, ring.read(&efd, vec![0u8; 8]), when, &what);
            w.write_all(&7u64.to_ne_bytes()).unwrap();
            let (n, buf) = must_arrive(ring, &what, ring.read(&efd, vec![0u8; 8]));
            assert_eq!(n.unwrap(), 8, "{what}");
            assert_eq!(
                u64::from_ne_bytes(buf[..8].try_into().unwrap()),
                7,
                "{what}"
            );
        }
    });
}
