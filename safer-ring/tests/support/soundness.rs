//! Helpers for the attack tests: polling by hand, catching panics, bounding hangs, a
//! thread-local "victim" op that wakers and destructors can drop, and the use-after-free probe.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use safer_ring::{AcceptStream, Ring, TcpStream};

/// Size of the victim buffers (and of the fresh allocations that should reuse them).
pub const SIZE: usize = 512;

pub fn poll_with<F: Future + Unpin>(fut: &mut F, w: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(w))
}

pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_with(fut, Waker::noop())
}

/// Polls `fut` once (noop waker, which submits an op) and reports whether it is still pending.
pub fn pending<F: Future + Unpin>(fut: &mut F) -> bool {
    poll_once(fut).is_pending()
}

pub fn poll_next_with(
    s: &mut AcceptStream<'_>,
    w: &Waker,
) -> Poll<Option<std::io::Result<TcpStream>>> {
    futures_core::Stream::poll_next(Pin::new(s), &mut Context::from_waker(w))
}

/// A second handle to `fd` that std can use (dup, so ownership stays separate).
pub fn dup_std(fd: &impl AsRawFd) -> std::fs::File {
    // SAFETY: dup takes no pointers.
    let d = unsafe { libc::dup(fd.as_raw_fd()) };
    assert!(d >= 0);
    // SAFETY: `d` is a fresh fd owned by nobody else.
    unsafe { std::fs::File::from_raw_fd(d) }
}

pub fn panic_msg(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".into())
}

/// Runs `f`; `Err(panic message)` if it panicked.
pub fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_msg(&*p))
}

/// Runs `f` on a new thread (rings are !Send: create them inside `f`). `Err` if it panicked or
/// did not finish within `limit`; a hung thread is leaked.
pub fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(caught(f));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(p)) => Err(format!("panicked: {p}")),
        Err(_) => Err(format!("HANG: did not finish within {limit:?}")),
    }
}

/// Polls `fut` (noop waker) and the ring until it is ready or `limit` passes.
pub fn run_for<F: Future + Unpin>(ring: &Ring, fut: &mut F, limit: Duration) -> Option<F::Output> {
    let t = Instant::now();
    loop {
        if let Poll::Ready(v) = poll_once(fut) {
            return Some(v);
        }
        if t.elapsed() > limit {
            return None;
        }
        let _ = ring.poll_completions();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Drives the ring: `n` non-blocking turns, then a waiting turn (block_on a nop). Panics
/// escaping the driver are caught and returned.
pub fn drive(ring: &Ring, n: usize) -> Vec<String> {
    let mut panics = Vec::new();
    for _ in 0..n {
        if let Err(p) = caught(|| ring.poll_completions()) {
            panics.push(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Err(p) = caught(|| ring.block_on(async { ring.nop().await })) {
        panics.push(p);
    }
    panics
}

/// `n` fresh zeroed allocations of SIZE bytes. malloc + fill, not `vec![0; SIZE]`: glibc's
/// calloc bypasses the per-thread cache, so it would not hand back a chunk just freed.
#[allow(clippy::slow_vector_initialization)] // deliberately not calloc, see above
pub fn fresh_allocs(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut v = Vec::with_capacity(SIZE);
            v.resize(SIZE, 0);
            v
        })
        .collect()
}

/// How many of `fresh` something other than us wrote into.
pub fn scribbled(fresh: &[Vec<u8>]) -> usize {
    fresh.iter().filter(|v| v.iter().any(|&b| b != 0)).count()
}

/// The use-after-free probe: right after a victim buffer may have been freed, allocate fresh
/// SIZE-byte buffers (the allocator reuses the freed chunk), make the kernel complete the
/// victim's read (SIZE bytes of 0xAB into `victim_writer`'s pipe), drive the ring, and count
/// the fresh buffers the kernel wrote into. 0 is the only sound answer.
pub fn uaf_probe(ring: &Ring, victim_writer: &impl AsRawFd) -> usize {
    let fresh = take_fresh().unwrap_or_else(|| fresh_allocs(8));
    dup_std(victim_writer).write_all(&[0xAB; SIZE]).unwrap();
    let _ = drive(ring, 20);
    scribbled(&fresh)
}

thread_local! {
    static VICTIM: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    static FRESH: RefCell<Option<Vec<Vec<u8>>>> = const { RefCell::new(None) };
}

/// Allocates the probe's fresh buffers when dropped, also while unwinding: declared before a
/// victim, it runs right after the victim's buffer is freed, before anything else (the panic
/// machinery, the test harness's output capture) can take the chunk. `uaf_probe` uses them.
pub struct FreshOnDrop;

/// The buffers the last `FreshOnDrop` allocated, if not yet taken.
pub fn take_fresh() -> Option<Vec<Vec<u8>>> {
    FRESH.with(|f| f.borrow_mut().take())
}

impl Drop for FreshOnDrop {
    fn drop(&mut self) {
        let fresh = fresh_allocs(8);
        FRESH.with(|f| *f.borrow_mut() = Some(fresh));
    }
}

/// Parks `op` (typically an in-flight `Op<'static, _>`) where a waker or destructor can drop it.
pub fn set_victim(op: impl Any) {
    VICTIM.with(|v| v.borrow_mut().push(Box::new(op)));
}

pub fn victim_alive() -> bool {
    VICTIM.with(|v| !v.borrow().is_empty())
}

/// Drops the parked victim (outside the thread-local's borrow).
pub fn drop_victim() {
    let _fresh = FreshOnDrop;
    let taken = VICTIM.with(|v| std::mem::take(&mut *v.borrow_mut()));
    drop(taken);
}

struct FnWake(fn());

impl Wake for FnWake {
    fn wake(self: Arc<Self>) {
        (self.0)()
    }
}

pub fn waker_fn(f: fn()) -> Waker {
    Waker::from(Arc::new(FnWake(f)))
}

/// A waker whose wake() drops the victim op.
pub fn dropping_waker() -> Waker {
    waker_fn(drop_victim)
}

/// A waker whose wake() panics.
pub fn panicking_waker() -> Waker {
    waker_fn(|| panic!("attack: this waker panics"))
}

/// Leaks `ring` for a `&'static Ring` (so its ops are `'static` and can be parked).
pub fn leak(ring: Ring) -> &'static Ring {
    Box::leak(Box::new(ring))
}

/// A waker whose `Drop` (run when its last reference goes) panics.
pub struct PanicOnDrop;

impl Wake for PanicOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("attack: this waker's Drop panics");
    }
}

/// Leaves a panic kept in `ring`'s driver: an in-flight op whose waker's last reference is the
/// ring's is dropped; the waker's Drop panics inside `Op::drop`, which keeps the panic.
pub fn keep_a_panic(ring: &safer_ring::RingRef) {
    let (xr, _xw) = ring.pipe().unwrap();
    let mut x = ring.read(&xr, Vec::with_capacity(16));
    let w = Waker::from(Arc::new(PanicOnDrop));
    assert!(poll_with(&mut x, &w).is_pending());
    drop(w);
    drop(x);
}

/// A Vec-backed buffer (honest `IoBuf` impls) whose destructor runs `on_drop`: user code the
/// ring runs when it drops an orphaned op's buffer.
pub struct OnDropBuf(pub Vec<u8>, pub fn());

impl Drop for OnDropBuf {
    fn drop(&mut self) {
        (self.1)()
    }
}

// SAFETY: delegates to the Vec, whose heap memory is stable until drop.
unsafe impl safer_ring::IoBuf for OnDropBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.len()
    }
    fn bytes_total(&self) -> usize {
        self.0.capacity()
    }
}

// SAFETY: as above.
unsafe impl safer_ring::IoBufMut for OnDropBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.set_len(len) }
    }
}
