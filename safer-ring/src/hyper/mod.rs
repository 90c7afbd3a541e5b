//! hyper 1.x on a ring (feature `hyper`): [`Compat`](crate::Compat) implements hyper's
//! `Read` and `Write` (serve `ring.compat(stream)`), a [`RingTimer`] drives hyper's timeouts
//! and a [`RingExecutor`] runs what hyper spawns.
//!
//! The crate depends on `hyper` without features (only `hyper::rt`); the application enables
//! the protocol it serves (`http1`, `server`, ...).

mod exec;
mod io;
mod timer;

pub use exec::RingExecutor;
pub use timer::{RingSleep, RingTimer};

impl ::hyper::rt::Timer for RingTimer {
    fn sleep(&self, duration: std::time::Duration) -> std::pin::Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(RingTimer::sleep(self, duration))
    }

    fn sleep_until(
        &self,
        deadline: std::time::Instant,
    ) -> std::pin::Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(RingTimer::sleep_until(self, deadline))
    }

    fn reset(
        &self,
        sleep: &mut std::pin::Pin<Box<dyn ::hyper::rt::Sleep>>,
        new_deadline: std::time::Instant,
    ) {
        match sleep.as_mut().downcast_mut_pin::<RingSleep>() {
            Some(ours) => ours.reset(new_deadline),
            // Another timer's sleep: replaced by one of ours.
            None => *sleep = Box::pin(RingTimer::sleep_until(self, new_deadline)),
        }
    }
}

impl ::hyper::rt::Sleep for RingSleep {}
