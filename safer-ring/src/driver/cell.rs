//! The one place the driver is borrowed, and where the user code it collected runs.
//!
//! The driver never runs user code (wakers, buffer destructors, the `Drop` of a `Wake` type,
//! an orphaned op's completion) while it is borrowed: it records that work in its
//! [`Later`] list. Every borrow goes through a [`DriverRef`]; dropping it releases the
//! `RefCell` borrow first and only then runs what was collected, so user code always finds
//! the driver free (it may drop ops, start new ones, or drive the ring). A panic in user code
//! is caught and kept while the rest of the list still runs, and re-raised only at the end of a
//! driver turn ([`DriverCell::reraise`]: `poll_completions`, `block_on`, `drive_on_tokio`),
//! where nothing is in hand. Never at another borrow: its caller may hold something it just
//! took out of the driver, the mailbox or an I/O object (a completion, an accepted or passed
//! fd, a doorbell it owes) that unwinding would lose; and never in a destructor
//! ([`DriverCell::borrow_in_drop`]): a `Drop` on the op path must not panic.
//! See docs/SOUNDNESS.md.

use std::any::Any;
use std::cell::{Cell, RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Waker;

use super::{Driver, Orphan};

/// User code the driver found while borrowed, to run once the borrow is released.
pub(crate) enum Later {
    /// Wake a task whose op completed.
    Wake(Waker),
    /// Drop a waker (its last reference may run a `Wake` type's `Drop`).
    Drop(Waker),
    /// An orphaned op finished: build and drop its output (the caller's buffer, an accepted fd).
    Complete(Box<dyn Orphan>, i32, u32),
}

impl Later {
    fn run(self) {
        match self {
            Later::Wake(w) => w.wake(),
            Later::Drop(w) => drop(w),
            Later::Complete(o, res, flags) => o.complete(res, flags),
        }
    }
}

/// The driver plus the panic a destructor could not raise.
pub(crate) struct DriverCell {
    driver: RefCell<Driver>,
    panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Whether `panic` holds one (read on every borrow, so kept apart).
    panicked: Cell<bool>,
}

/// A borrow of the driver; dropping it runs the user code collected meanwhile.
pub(crate) struct DriverRef<'a> {
    cell: &'a DriverCell,
    guard: Option<RefMut<'a, Driver>>,
}

impl DriverCell {
    pub(crate) fn new(driver: Driver) -> DriverCell {
        DriverCell {
            driver: RefCell::new(driver),
            panic: Cell::new(None),
            panicked: Cell::new(false),
        }
    }

    /// Borrows the driver. User code never runs while it is borrowed, so the borrow is free
    /// here whenever user code calls in; a `tracing` subscriber that calls back into the ring
    /// from inside a log call is the one exception, and gets this panic (which leaks, never
    /// frees, what the kernel may use: see docs/SOUNDNESS.md).
    #[inline]
    pub(crate) fn borrow(&self) -> DriverRef<'_> {
        match self.driver.try_borrow_mut() {
            Ok(guard) => DriverRef {
                cell: self,
                guard: Some(guard),
            },
            Err(_) => panic!(
                "safer-ring: the ring was re-entered while it was driving (from a tracing subscriber?)"
            ),
        }
    }

    /// Borrows the driver from a destructor: `None` instead of panicking if it is busy (the
    /// caller then leaks).
    pub(crate) fn borrow_in_drop(&self) -> Option<DriverRef<'_>> {
        let guard = self.driver.try_borrow_mut().ok()?;
        Some(DriverRef {
            cell: self,
            guard: Some(guard),
        })
    }

    /// Re-raises the first panic kept from user code, if any (not while unwinding).
    #[inline]
    pub(crate) fn reraise(&self) {
        if self.panicked.get() && !std::thread::panicking() {
            self.panicked.set(false);
            if let Some(p) = self.panic.take() {
                resume_unwind(p);
            }
        }
    }

    /// Runs `work` with the driver free. Each item runs even if an earlier one panicked; the
    /// first panic is kept for [`DriverCell::reraise`].
    /// The chores that work leaves (a destructor emptying a file-table slot, cancelling a
    /// multishot op) are done right after, so nothing waits for a next turn that may not come.
    pub(crate) fn run(&self, mut work: Vec<Later>) {
        loop {
            for item in work.drain(..) {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| item.run())) {
                    match self.panic.take() {
                        None => self.panic.set(Some(p)),
                        first => self.panic.set(first), // later payloads are dropped
                    }
                    self.panicked.set(true);
                }
            }
            let Ok(mut d) = self.driver.try_borrow_mut() else {
                break;
            };
            d.do_chores();
            if !d.has_later() {
                // Hand the allocation back so the next turn does not allocate.
                d.reuse_later(work);
                break;
            }
            work = d.take_later();
        }
    }

    /// The panic kept from user code, if any (a dropped ring drops it).
    pub(crate) fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        self.panicked.set(false);
        self.panic.take()
    }
}

impl Deref for DriverRef<'_> {
    type Target = Driver;
    #[inline]
    fn deref(&self) -> &Driver {
        self.guard.as_ref().expect("borrowed until dropped")
    }
}

impl DerefMut for DriverRef<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Driver {
        self.guard.as_mut().expect("borrowed until dropped")
    }
}

impl Drop for DriverRef<'_> {
    #[inline]
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        if guard.has_later() {
            release_and_run(self.cell, guard);
        }
    }
}

#[cold]
fn release_and_run(cell: &DriverCell, mut guard: RefMut<'_, Driver>) {
    // While unwinding, user code must not run (a second panic aborts): it stays queued for the
    // next borrow.
    if std::thread::panicking() {
        return;
    }
    let work = guard.take_later();
    drop(guard);
    cell.run(work);
}
