//! nop and sleep.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::RingRef;
use crate::backend::{OpKind, TimeoutSpec};
use crate::driver::op::{Op, OpData};

/// A no-op round trip through the backend; see [`Ring::nop`](crate::RingRef::nop).
///
/// # Examples
/// ```
/// use safer_ring::ops::Nop;
/// # let ring = safer_ring::Ring::new(8)?;
/// let op: safer_ring::Op<'_, Nop> = ring.nop();
/// ring.block_on(op)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Nop;

// SAFETY: no pointers, no fd.
unsafe impl OpData for Nop {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        OpKind::Nop
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// A timer; see [`Ring::sleep`](crate::RingRef::sleep) and [`Ring::sleep_until`](crate::RingRef::sleep_until).
///
/// # Examples
/// ```
/// use safer_ring::ops::Sleep;
/// # let ring = safer_ring::Ring::new(8)?;
/// let op: safer_ring::Op<'_, Sleep> = ring.sleep(std::time::Duration::from_millis(1));
/// ring.block_on(op)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sleep {
    spec: Box<TimeoutSpec>,
    /// For `sleep_until`: the relative timeout is computed when the op is submitted.
    deadline: Option<Instant>,
}

// SAFETY: the timespec is boxed (does not move with `self`).
unsafe impl OpData for Sleep {
    type Output = io::Result<()>;
    fn kind(&mut self) -> OpKind {
        if let Some(d) = self.deadline {
            self.spec.set(d.saturating_duration_since(Instant::now()));
        }
        OpKind::Timeout {
            ts: &self.spec.ts,
            dur: self.spec.dur,
        }
    }
    fn complete(self, res: io::Result<u32>, _: u32) -> io::Result<()> {
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl RingRef {
    /// Does nothing, through the kernel: measures the per-operation overhead.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// ring.block_on(ring.nop())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_nop")]
    pub fn nop(&self) -> Op<'_, Nop> {
        Op::new(self, Nop)
    }

    /// Completes after `dur` (a kernel timer on io_uring, a timerfd deadline on epoll).
    /// Durations beyond about 136 years are treated as that long.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let start = Instant::now();
    /// ring.block_on(ring.sleep(Duration::from_millis(10)))?;
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "io_uring_prep_timeout")]
    pub fn sleep(&self, dur: Duration) -> Op<'_, Sleep> {
        Op::new(
            self,
            Sleep {
                spec: TimeoutSpec::new(dur),
                deadline: None,
            },
        )
    }

    /// Completes at `deadline` (at once if it has passed). The time left is measured when the
    /// future is first polled, not when it is created.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// ring.block_on(ring.sleep_until(deadline))?;
    /// assert!(Instant::now() >= deadline);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sleep_until(&self, deadline: Instant) -> Op<'_, Sleep> {
        Op::new(
            self,
            Sleep {
                spec: TimeoutSpec::new(Duration::ZERO),
                deadline: Some(deadline),
            },
        )
    }

    /// Runs `fut` for at most `dur`: its output, or [`Elapsed`] (and `fut` is dropped, which
    /// cancels its operations) if the timer fires first. Works with any future; for a single
    /// operation, [`Op::timeout`](crate::Op::timeout) links the timer to it in the kernel.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, _tx) = ring.pipe()?;
    /// // Nothing is ever written: the read is cancelled after 20 ms, its buffer freed safely.
    /// let out = ring.block_on(ring.timeout(Duration::from_millis(20), ring.read(&rx, vec![0; 8])));
    /// assert!(out.is_err(), "Elapsed");
    /// let quick = ring.block_on(ring.timeout(Duration::from_secs(5), ring.nop()));
    /// assert!(matches!(quick, Ok(Ok(()))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn timeout<F: Future>(&self, dur: Duration, fut: F) -> Result<F::Output, Elapsed> {
        let mut fut = std::pin::pin!(fut);
        let mut timer = self.sleep(dur);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            // A timer that fails (it cannot, short of the ring going away) counts as expired.
            Pin::new(&mut timer).poll(cx).map(|_| Err(Elapsed(())))
        })
        .await
    }

    /// A stream of ticks every `period` (at most about 136 years), the first at once; see
    /// [`Interval`].
    ///
    /// # Errors
    /// `InvalidInput` for a zero period.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let mut every = ring.interval(Duration::from_millis(5))?;
    /// ring.block_on(async {
    ///     let first = every.tick().await?; // at once
    ///     let second = every.tick().await?;
    ///     assert!(second - first >= Duration::from_millis(5));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// assert!(ring.interval(Duration::ZERO).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn interval(&self, period: Duration) -> io::Result<Interval<'_>> {
        if period.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Ring::interval: the period must be longer than zero",
            ));
        }
        Ok(Interval {
            ring: self,
            next: Instant::now(),
            // Like every timer here, clamped (about 136 years): deadlines never overflow.
            period: period.min(crate::backend::MAX_TIMEOUT),
            missed: MissedTicks::Burst,
        })
    }
}

/// The deadline of [`Ring::timeout`](crate::RingRef::timeout) passed first.
///
/// # Examples
/// ```
/// use safer_ring::ops::Elapsed;
/// # let ring = safer_ring::Ring::new(8)?;
/// let never = std::future::pending::<()>();
/// let res: Result<(), Elapsed> = ring.block_on(ring.timeout(std::time::Duration::from_millis(1), never));
/// assert_eq!(res.unwrap_err().to_string(), "deadline has elapsed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// What an [`Interval`] does when ticks were missed (the task did not call `tick` for more
/// than a period).
///
/// # Examples
/// ```
/// use safer_ring::ops::MissedTicks;
/// # let ring = safer_ring::Ring::new(8)?;
/// let mut every = ring.interval(std::time::Duration::from_millis(1))?;
/// every.set_missed_ticks(MissedTicks::Delay); // after a stall, restart the period from now
/// ring.block_on(every.tick())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTicks {
    /// Fire the missed ticks at once, one per `tick` call, then keep the original schedule
    /// (the long-run rate stays one per period).
    #[default]
    Burst,
    /// Fire once now and schedule the next tick a full period after it (the schedule shifts).
    Delay,
    /// Fire once now and drop the missed ticks: the next one is the next multiple of the
    /// period on the original schedule.
    Skip,
}

/// Ticks every period; see [`Ring::interval`](crate::RingRef::interval).
///
/// # Examples
/// ```
/// use safer_ring::ops::Interval;
/// # let ring = safer_ring::Ring::new(8)?;
/// let mut every: Interval<'_> = ring.interval(std::time::Duration::from_millis(1))?;
/// ring.block_on(every.tick())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Interval<'r> {
    ring: &'r RingRef,
    next: Instant,
    period: Duration,
    missed: MissedTicks,
}

impl Interval<'_> {
    /// Sets what happens to missed ticks (default [`MissedTicks::Burst`]).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use safer_ring::MissedTicks;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let mut every = ring.interval(Duration::from_millis(5))?;
    /// every.set_missed_ticks(MissedTicks::Skip); // after a stall: no burst of late ticks
    /// ring.block_on(every.tick())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_missed_ticks(&mut self, missed: MissedTicks) {
        self.missed = missed;
    }

    /// The period.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let every = ring.interval(Duration::from_millis(250))?;
    /// assert_eq!(every.period(), Duration::from_millis(250));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for the next tick and returns the instant it was scheduled for.
    ///
    /// # Errors
    /// As [`Ring::sleep_until`](crate::RingRef::sleep_until) (the ring's timer failing).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let start = Instant::now();
    /// let mut every = ring.interval(Duration::from_millis(2))?;
    /// ring.block_on(async {
    ///     for _ in 0..3 {
    ///         every.tick().await?;
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// assert!(start.elapsed() >= Duration::from_millis(4)); // ticks at 0, 2 and 4 ms
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn tick(&mut self) -> io::Result<Instant> {
        let scheduled = self.next;
        self.ring.sleep_until(scheduled).await?;
        let now = Instant::now();
        self.next = match self.missed {
            MissedTicks::Burst => scheduled + self.period,
            MissedTicks::Delay if now > scheduled + self.period => now + self.period,
            MissedTicks::Skip if now > scheduled + self.period => {
                let behind = (now - scheduled).as_nanos() / self.period.as_nanos();
                let periods = u32::try_from(behind + 1).unwrap_or(u32::MAX);
                scheduled + self.period.saturating_mul(periods)
            }
            _ => scheduled + self.period,
        };
        Ok(scheduled)
    }
}
