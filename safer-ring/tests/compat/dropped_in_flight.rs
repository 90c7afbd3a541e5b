//! `Compat` dropped with operations in flight: the kernel must never touch memory the adapter
//! freed (kernel-write use-after-free probe), and a waker that changes between polls is the
//! one woken. Both backends.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use safer_ring::Compat;
use support::soundness::{FreshOnDrop, SIZE, dup_std, scribbled, take_fresh, uaf_probe};

use crate::support;

fn poll_read<S: safer_ring::CompatIo>(c: &mut Compat<S>, w: &Waker, buf: &mut [u8]) -> Poll<usize> {
    let mut rb = ReadBuf::new(buf);
    match Pin::new(c).poll_read(&mut Context::from_waker(w), &mut rb) {
        Poll::Ready(r) => {
            r.unwrap();
            Poll::Ready(rb.filled().len())
        }
        Poll::Pending => Poll::Pending,
    }
}

fn pipe_size(fd: &impl AsRawFd) -> usize {
    // SAFETY: F_GETPIPE_SZ takes no pointer.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(n > 0, "F_GETPIPE_SZ: {}", std::io::Error::last_os_error());
    n as usize
}

fn bytes_queued(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `n`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

// The adapter dropped while its read (into its own SIZE-byte buffer) is in the kernel: the
// buffer stays with the ring, so the kernel's later write lands in it, not in fresh memory.
backend_test!(dropped_mid_read, |ring| {
    let (r, w) = ring.pipe().unwrap();
    let mut c = Compat::with_capacity(ring.clone(), r, SIZE, SIZE).unwrap();
    assert!(poll_read(&mut c, Waker::noop(), &mut [0u8; 64]).is_pending());
    ring.poll_completions().unwrap();
    assert!(c.is_busy());
    let fresh_after = FreshOnDrop; // allocates right after the adapter's buffers go
    drop(c);
    drop(fresh_after);
    let hits = uaf_probe(&ring, &w);
    assert_eq!(
        hits, 0,
        "the kernel wrote into memory the dropped adapter freed"
    );
});

// The adapter dropped while its write waits for room in a full pipe: the bytes the kernel may
// still send come from the adapter's buffer, never from memory freed and reused (zeros).
backend_test!(dropped_mid_write, |ring| {
    let (r, w) = ring.pipe().unwrap();
    let cap = pipe_size(&w);
    dup_std(&w).write_all(&vec![0x11; cap]).unwrap();
    let mut c = Compat::with_capacity(ring.clone(), w, SIZE, SIZE).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let accepted = Pin::new(&mut c).poll_write(&mut cx, &[0xCD; SIZE]);
    assert!(matches!(accepted, Poll::Ready(Ok(SIZE))), "{accepted:?}");
    ring.poll_completions().unwrap();
    assert!(c.is_busy(), "the pipe is full: the write must be waiting");
    let fresh_after = FreshOnDrop;
    drop(c);
    drop(fresh_after);
    let fresh = take_fresh().unwrap();
    // Make room: a write the kernel still holds goes through now.
    let mut rd = dup_std(&r);
    let mut filler = vec![0u8; cap];
    rd.read_exact(&mut filler).unwrap();
    assert!(filler.iter().all(|&b| b == 0x11));
    let _ = support::soundness::drive(&ring, 20);
    let n = bytes_queued(&r);
    let mut rest = vec![0u8; n];
    rd.read_exact(&mut rest).unwrap();
    eprintln!("bytes of the dropped write that reached the pipe: {n}");
    assert!(n == 0 || n == SIZE, "a partial write of {n} bytes");
    assert!(
        rest.iter().all(|&b| b == 0xCD),
        "the kernel sent bytes from memory the dropped adapter freed"
    );
    assert_eq!(scribbled(&fresh), 0);
});

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

/// Drives the ring until `count` is woken (at most 30 s: a bound on a missed wake, far beyond
/// any machine's speed).
fn drive_until_woken(ring: &safer_ring::Ring, count: &Count) {
    let t = Instant::now();
    while count.0.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(30) {
        ring.poll_completions().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

// A read polled with waker A, then B: B is woken when data arrives.
backend_test!(read_wakes_the_latest_waker, |ring| {
    let (a, b) = ring.unix_pair().unwrap();
    let mut c = ring.compat(a);
    let (first, w1) = counting();
    let (second, w2) = counting();
    let mut buf = [0u8; 16];
    assert!(poll_read(&mut c, &w1, &mut buf).is_pending());
    ring.poll_completions().unwrap();
    assert!(poll_read(&mut c, &w2, &mut buf).is_pending());
    dup_std(&b).write_all(b"wake").unwrap();
    drive_until_woken(&ring, &second);
    assert!(
        second.0.load(Ordering::SeqCst) > 0,
        "the latest waker was not woken"
    );
    eprintln!("first waker woken {} times", first.0.load(Ordering::SeqCst));
    assert_eq!(poll_read(&mut c, &w2, &mut buf), Poll::Ready(4));
    assert_eq!(&buf[..4], b"wake");
});

// A flush polled with waker A, then B, while the write waits for room: B is woken.
backend_test!(flush_wakes_the_latest_waker, |ring| {
    let (r, w) = ring.pipe().unwrap();
    let cap = pipe_size(&w);
    dup_std(&w).write_all(&vec![0x11; cap]).unwrap();
    let mut c = ring.compat(w);
    let (first, w1) = counting();
    let (second, w2) = counting();
    let mut cx1 = Context::from_waker(&w1);
    assert!(matches!(
        Pin::new(&mut c).poll_write(&mut cx1, b"data"),
        Poll::Ready(Ok(4))
    ));
    assert!(Pin::new(&mut c).poll_flush(&mut cx1).is_pending());
    ring.poll_completions().unwrap();
    let mut cx2 = Context::from_waker(&w2);
    assert!(Pin::new(&mut c).poll_flush(&mut cx2).is_pending());
    dup_std(&r).read_exact(&mut vec![0u8; cap]).unwrap();
    drive_until_woken(&ring, &second);
    assert!(
        second.0.load(Ordering::SeqCst) > 0,
        "the latest waker was not woken"
    );
    eprintln!("first waker woken {} times", first.0.load(Ordering::SeqCst));
    assert!(matches!(
        Pin::new(&mut c).poll_flush(&mut cx2),
        Poll::Ready(Ok(()))
    ));
    let mut got = [0u8; 4];
    dup_std(&r).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"data");
});
