//! Panics at the callback points of docs/SOUNDNESS.md section 3 not covered elsewhere: a
//! buffer's `IoBuf` methods, its `set_init`, and a waker whose `clone` panics. Each must leave
//! nothing the kernel may still write into freed (canaries), and the ring usable.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{RawWaker, RawWakerVTable, Waker};

use safer_ring::{IoBuf, IoBufMut};
use support::soundness::*;

use crate::support;

/// A Vec-backed buffer whose methods panic on demand (honest otherwise).
struct Touchy {
    v: Vec<u8>,
    panic_in_ptr: bool,
    panic_in_set_init: bool,
}

static PTR_CALLED: AtomicBool = AtomicBool::new(false);

// SAFETY: delegates to Vec, whose heap memory does not move with the value.
unsafe impl IoBuf for Touchy {
    fn stable_ptr(&self) -> *const u8 {
        self.v.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.v.len()
    }
    fn bytes_total(&self) -> usize {
        self.v.capacity()
    }
}

// SAFETY: as above; `set_init` forwards to Vec's with the same guarantee.
unsafe impl IoBufMut for Touchy {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        PTR_CALLED.store(true, Ordering::SeqCst);
        assert!(!self.panic_in_ptr, "attack: stable_mut_ptr panics");
        self.v.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        assert!(!self.panic_in_set_init, "attack: set_init panics");
        // SAFETY: forwarded from the caller.
        unsafe { self.v.set_len(len) }
    }
}

fn touchy(panic_in_ptr: bool, panic_in_set_init: bool) -> Touchy {
    Touchy {
        v: Vec::with_capacity(SIZE),
        panic_in_ptr,
        panic_in_set_init,
    }
}

backend_test!(
    buffer_method_panic_before_submission_queues_nothing,
    |ring| {
        let (r, w) = ring.pipe().unwrap();
        let mut op = ring.read(&r, touchy(true, false));
        assert!(
            caught(|| poll_once(&mut op)).is_err(),
            "the buffer's panic propagates"
        );
        assert!(PTR_CALLED.load(Ordering::SeqCst));
        drop(op);
        assert_eq!(ring.in_flight(), 0, "nothing reached the kernel");
        // The data is still in the pipe for the next reader: no read was queued.
        dup_std(&w).write_all(b"next").unwrap();
        let (n, buf) = ring.block_on(ring.read(&r, vec![0u8; 8]));
        assert_eq!((n.unwrap(), &buf[..]), (4, &b"next"[..]));
    }
);

backend_test!(
    set_init_panic_after_completion_is_the_callers_alone,
    |ring| {
        let (r, w) = ring.pipe().unwrap();
        let mut op = Box::pin(ring.read(&r, touchy(false, true)));
        assert!(poll_once(&mut op).is_pending());
        dup_std(&w).write_all(&[0xAB; 16]).unwrap();
        // The kernel is done with the buffer when set_init runs; its panic unwinds through the
        // caller's poll and frees nothing the kernel still holds.
        let r1 = caught(|| ring.block_on(op.as_mut()));
        assert!(r1.is_err());
        assert_eq!(ring.in_flight(), 0);
        ring.block_on(ring.nop()).unwrap();
    }
);

static CLONE_PANICS: AtomicBool = AtomicBool::new(false);

fn raw() -> RawWaker {
    RawWaker::new(std::ptr::null(), &VTABLE)
}
static VTABLE: RawWakerVTable = RawWakerVTable::new(
    |_| {
        assert!(
            !CLONE_PANICS.load(Ordering::SeqCst),
            "attack: waker clone panics"
        );
        raw()
    },
    |_| {},
    |_| {},
    |_| {},
);

backend_test!(waker_clone_panic_at_submission_leaks_never_frees, |ring| {
    let (r, w) = ring.pipe().unwrap();
    // SAFETY: (harness) the vtable functions ignore the data pointer; wake and drop do nothing.
    let waker = unsafe { Waker::from_raw(raw()) };
    CLONE_PANICS.store(true, Ordering::SeqCst);
    let mut op = ring.read(&r, Vec::with_capacity(SIZE));
    let p = caught(|| poll_with(&mut op, &waker));
    CLONE_PANICS.store(false, Ordering::SeqCst);
    assert!(p.is_err(), "the clone's panic propagates");
    drop(op); // may leak its buffer (the push was cut short), never free it early
    let fresh = fresh_allocs(8);
    dup_std(&w).write_all(&[0xAB; SIZE]).unwrap();
    let _ = drive(&ring, 10);
    assert_eq!(scribbled(&fresh), 0, "the kernel wrote into freed memory");
    // The ring works on.
    dup_std(&w).write_all(b"more").unwrap();
    let (n, _) = ring.block_on(ring.read(&r, Vec::with_capacity(SIZE * 2)));
    assert!(n.unwrap() > 0);
});
