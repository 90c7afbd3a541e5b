//! `Ring`: creation (backend choice), driving, and drop (cancel and drain).

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use crate::backend::{AnyBackend, Backend, EpollBackend, IoUringBackend, SetupReport};
use crate::config::{BackendKind, SaferRingConfig};
use crate::driver::executor::{Executor, WakeShared};
use crate::driver::{Driver, DriverCell, DriverRef};
use crate::enhanced::{FeatureStats, PathTaken, ProgressiveEnhancementConfig, Stats};
use crate::error::{Result, SaferRingError};
use crate::features::{self, AvailableFeatures, Feature, FeatureReport};
use crate::io::SharedFd;

/// A single-threaded completion ring: io_uring where the kernel allows it, epoll otherwise.
///
/// Operations are methods returning lazy futures that own their buffers and hand them back
/// with the result. `Ring` is neither `Send` nor `Sync`; share it between local tasks with `Rc`.
///
/// # Examples
/// ```
/// use safer_ring::Ring;
/// let ring = Ring::new(32)?;
/// let (r, w) = ring.pipe()?;
/// ring.block_on(async {
///     let (n, _buf) = ring.write(&w, b"ping".to_vec()).await;
///     assert_eq!(n?, 4);
///     let (n, buf) = ring.read(&r, Vec::with_capacity(16)).await;
///     assert_eq!(n?, 4);
///     assert_eq!(buf, b"ping");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `Ring` stays on its thread (compile-fail checks; `tests/ui` has the borrow-checker ones):
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(safer_ring::Ring::new(8).unwrap());
/// ```
/// ```compile_fail
/// fn assert_sync<T: Sync>(_: &T) {}
/// assert_sync(&safer_ring::Ring::new(8).unwrap());
/// ```
/// I/O types share their fd with in-flight operations through an `Rc`, so they stay too:
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// let ring = safer_ring::Ring::new(8).unwrap();
/// let (r, _w) = ring.pipe().unwrap();
/// assert_send(r);
/// ```
pub struct Ring {
    shared: RingRef,
}

/// A handle to a [`Ring`](crate::Ring) for tasks and helpers: every operation of the ring, through a cheap
/// clone (`ring.clone()` on a `Ring` or a `RingRef`) that does **not** keep the ring running.
///
/// The [`Ring`](crate::Ring) returned by [`Ring::new`](crate::Ring::new) owns the ring: when it is dropped, every task is
/// dropped, every operation cancelled (and drained), and the ring's fds closed, whatever
/// `RingRef`s tasks or other code still hold. After that, operations through a `RingRef` fail
/// with `BrokenPipe`, `spawn` drops the task (its handle reports `Cancelled`), and `block_on`
/// panics. So a task that needs the ring takes a `RingRef`, not an `Rc<Ring>` (which, held by a
/// task of that ring, would keep both alive forever).
///
/// ```
/// use safer_ring::Ring;
/// let ring = Ring::new(8)?;
/// let r = ring.clone(); // a RingRef
/// let task = ring.spawn(async move { r.nop().await });
/// ring.block_on(task)??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RingRef(Rc<Core>);

/// What a ring is; shared by its owner and its `RingRef`s.
struct Core {
    exec: Executor,
    driver: DriverCell,
    info: RingInfo,
    native: Cell<AvailableFeatures>,
    /// The backend's fd mode, read on every op (`SharedFd::prepare`) without borrowing the driver.
    nonblocking: bool,
    ring_index: Option<u32>,
    enhancement: ProgressiveEnhancementConfig,
    stats: Stats,
    /// The detection this ring was built from: the process cache, or its own detection when
    /// the configuration turns the cache off.
    report: Cow<'static, FeatureReport>,
    /// The owning `Ring` was dropped: tasks gone, operations drained, fds closed.
    closed: Cell<bool>,
    /// `register_buffers` was called (one pool per ring, on every backend alike).
    has_fixed_pool: Cell<bool>,
    /// The driver's chore queue, reachable while the driver is borrowed.
    chores: crate::driver::Chores,
    /// Where other rings' messages land (the driver holds it too, as its `Inbox`).
    mailbox: std::sync::Arc<crate::enhanced::Mailbox>,
}

impl crate::driver::task::AbortTask for Core {
    fn abort_task(&self, id: usize, waker: &std::task::Waker) -> bool {
        self.exec.abort_task(id, waker)
    }
}

impl std::ops::Deref for Ring {
    type Target = RingRef;
    fn deref(&self) -> &RingRef {
        &self.shared
    }
}

/// One feature as seen by one ring; see [`Ring::feature_info`](crate::RingRef::feature_info).
///
/// # Examples
/// ```
/// use safer_ring::Feature;
/// # let ring = safer_ring::Ring::new(8)?;
/// let info = ring.feature_info(Feature::SendZeroCopy);
/// assert_eq!(info.feature, Feature::SendZeroCopy);
/// println!("offered: {}, used: {}", info.backend_offers, info.native);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureInfo {
    /// The feature.
    pub feature: Feature,
    /// The first mainline kernel with it.
    pub required: crate::KernelVersion,
    /// What it does.
    pub description: &'static str,
    /// The detection verdict and its evidence.
    pub status: features::FeatureStatus,
    /// Whether this ring's backend can offer it (io_uring: detected and not demoted).
    pub backend_offers: bool,
    /// Whether this ring uses it.
    pub native: bool,
}

/// What a ring runs on and why.
///
/// # Examples
/// ```
/// # let ring = safer_ring::Ring::new(8)?;
/// let info = ring.info();
/// println!("{:?} ({})", info.backend, info.fallback_reason.as_deref().unwrap_or("io_uring works"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RingInfo {
    /// The backend in use (never `Auto`).
    pub backend: BackendKind,
    /// Why io_uring is not in use, when it is not.
    pub fallback_reason: Option<String>,
    /// io_uring setup outcome (flags granted, features), when on io_uring.
    pub setup: Option<SetupReport>,
}

impl Ring {
    /// A ring with `entries` submission-queue entries and the default configuration
    /// (backend: `SAFER_RING_BACKEND`, else io_uring if it works, else epoll).
    ///
    /// # Errors
    /// [`SaferRingError::InvalidConfig`] for 0 or more than 32768 entries; see
    /// [`Ring::with_config`](crate::Ring::with_config).
    ///
    /// # Examples
    /// ```
    /// let ring = safer_ring::Ring::new(64)?;
    /// println!("running on {:?}", ring.backend());
    /// assert!(safer_ring::Ring::new(0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(entries: u32) -> Result<Ring> {
        Ring::with_config(SaferRingConfig::default().entries(entries))
    }

    /// A ring built from `cfg`.
    ///
    /// # Errors
    /// Invalid configuration values (named in the error), an invalid `SAFER_RING_BACKEND` or
    /// `SAFER_RING_FEATURES`, or, when io_uring was explicitly requested, the kernel's refusal.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{BackendKind, Ring, SaferRingConfig};
    /// // epoll works everywhere; io_uring would fail here if the kernel refused it.
    /// let ring = Ring::with_config(SaferRingConfig::default().entries(16).backend(BackendKind::Epoll))?;
    /// assert_eq!(ring.backend(), BackendKind::Epoll);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_config(mut cfg: SaferRingConfig) -> Result<Ring> {
        let choice = cfg.validate()?;
        cfg.enhancement = cfg.enhancement.with_env()?;
        let shared =
            WakeShared::new().map_err(|e| SaferRingError::io("creating the wake eventfd", e))?;
        let report = features::FeatureDetector::new()
            .use_cache(cfg.enhancement.detection_cache)
            .detect();
        let (mut backend, info) = open_backend(&cfg, choice, shared.eventfd.as_raw_fd(), &report)?;
        let stats = Stats::default();
        if let AnyBackend::Uring(b) = &mut backend {
            b.count_enters(stats.enters());
        }
        let mut backend = backend.with_faults(&cfg);
        debug_assert_eq!(backend.kind(), info.backend);
        match &info.setup {
            Some(s) => tracing::info!(
                backend = %info.backend,
                coop_taskrun = s.coop_taskrun,
                single_issuer = s.single_issuer,
                defer_taskrun = s.defer_taskrun,
                features = format_args!("{:#x}", s.features),
                "safer-ring ring created"
            ),
            None => {
                tracing::info!(backend = %info.backend, reason = info.fallback_reason.as_deref().unwrap_or(""), "safer-ring ring created")
            }
        }
        let mut native = decide_native(&cfg, &info, &report)?;
        if let Some(u) = backend.as_uring_mut() {
            u.use_native(&mut native);
        }
        // MSG_RING targets this ring through a duplicate of its fd (see enhanced::msg_ring).
        let target_fd = match info.backend {
            BackendKind::IoUring => crate::kernel::sys::dup_fd(backend.pollable_fd()).ok(),
            _ => None,
        };
        let mailbox = crate::enhanced::Mailbox::new(target_fd);
        let mut driver = Driver::new(
            backend,
            cfg.submit_policy,
            cfg.drain_timeout,
            mailbox.clone(),
        );
        let mut ring_index = None;
        if native.contains(Feature::RegisteredRingFd) {
            match driver.register_ring_fd() {
                Ok(i) => ring_index = Some(i),
                Err(e) => {
                    let wanted = cfg.enhancement.wish(Feature::RegisteredRingFd) == Some(true);
                    if wanted && cfg.enhancement.strict {
                        return Err(SaferRingError::RegistrationFailed {
                            what: "the ring fd",
                            source: e,
                        });
                    }
                    // Detection registered one for real, so this refusal is about this
                    // thread or ring (e.g. the 16 slots per thread are taken): this ring
                    // keeps the plain fd, other rings are not affected.
                    tracing::warn!(
                        error = %e,
                        "registering the ring fd failed; this ring uses the plain fd"
                    );
                    native.remove(Feature::RegisteredRingFd);
                }
            }
        }
        let (on, off): (Vec<Feature>, Vec<Feature>) =
            Feature::all().partition(|f| native.contains(*f));
        // Opt-in features the kernel has but nobody asked for: say how to get them.
        let opt_in: Vec<&str> = off
            .iter()
            .filter(|f| f.opt_in() && info.backend == BackendKind::IoUring)
            .filter(|f| report.available.contains(**f) && !features::is_demoted(**f))
            .map(|f| f.name())
            .collect();
        tracing::info!(
            backend = %info.backend,
            native = ?on.iter().map(|f| f.name()).collect::<Vec<_>>(),
            fallback = ?off.iter().map(|f| f.name()).collect::<Vec<_>>(),
            available_on_request = ?opt_in,
            "safer-ring progressive enhancement"
        );
        let exec = Executor::new(shared);
        driver.set_own_waker(exec.waker());
        let core = Core {
            chores: driver.chores().clone(),
            mailbox,
            native: Cell::new(native),
            nonblocking: driver.wants_nonblocking(),
            enhancement: cfg.enhancement.clone(),
            stats,
            exec,
            driver: DriverCell::new(driver),
            ring_index,
            info,
            closed: Cell::new(false),
            has_fixed_pool: Cell::new(false),
            report,
        };
        Ok(Ring {
            shared: RingRef(Rc::new(core)),
        })
    }

    /// Like [`Ring::with_config`](crate::Ring::with_config); named for what it always does: detect the kernel's features
    /// (cached process-wide unless the configuration turns the cache off), decide per feature
    /// whether to use it, and log one line saying what is native and what falls back.
    ///
    /// # Errors
    /// As [`Ring::with_config`](crate::Ring::with_config), plus [`SaferRingError::UnsupportedFeature`] in strict mode.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};
    /// // Never use zero-copy send on this ring, whatever the kernel offers.
    /// let enh = ProgressiveEnhancementConfig::default().feature(Feature::SendZeroCopy, Some(false));
    /// let ring = Ring::new_with_detection(SaferRingConfig::default().enhancement(enh))?;
    /// assert!(!ring.uses_native(Feature::SendZeroCopy));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_with_detection(cfg: SaferRingConfig) -> Result<Ring> {
        Ring::with_config(cfg)
    }
}

impl RingRef {
    /// Whether the owning [`Ring`](crate::Ring) was dropped (operations then fail with `BrokenPipe`).
    ///
    /// # Examples
    /// ```
    /// let ring = safer_ring::Ring::new(8)?;
    /// let r = ring.clone(); // a RingRef
    /// assert!(!r.is_closed());
    /// drop(ring);
    /// assert!(r.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.0.closed.get()
    }

    /// The index of this ring's registered fd (Linux 5.18+), used for every `io_uring_enter`;
    /// `None` on epoll, on older kernels, or when configured off.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{BackendKind, Ring, SaferRingConfig};
    /// let ring = Ring::with_config(SaferRingConfig::default().backend(BackendKind::Epoll))?;
    /// assert_eq!(ring.registered_ring_fd(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn registered_ring_fd(&self) -> Option<u32> {
        self.0.ring_index
    }

    /// The features this ring uses natively (after configuration and run-time demotion).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// for f in ring.features().iter() {
    ///     println!("native here: {}", f.name());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn features(&self) -> AvailableFeatures {
        self.0.native.get()
    }

    /// Whether this ring takes the native path for `feature`.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{BackendKind, Feature, Ring, SaferRingConfig};
    /// let ring = Ring::with_config(SaferRingConfig::default().backend(BackendKind::Epoll))?;
    /// assert!(!ring.uses_native(Feature::MultiShotAccept)); // epoll: always the fallback
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uses_native(&self, feature: Feature) -> bool {
        self.0.native.get().contains(feature)
    }

    /// Whether the backend of this ring can offer `feature` at all (io_uring: detected and not
    /// demoted; epoll: never). [`Ring::uses_native`](crate::RingRef::uses_native) adds the configuration's say.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::{BackendKind, Feature, Ring, SaferRingConfig};
    /// let ring = Ring::new(8)?;
    /// if ring.backend() == BackendKind::Epoll {
    ///     assert!(!ring.backend_offers(Feature::MultiShotAccept));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backend_offers(&self, feature: Feature) -> bool {
        self.driver().offers(feature)
    }

    /// Everything known about `feature` here: its table row, the detection verdict with its
    /// evidence, and whether this ring uses it.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let info = ring.feature_info(safer_ring::Feature::MultiShotAccept);
    /// println!("{} (Linux {}+): native here: {}", info.description, info.required, info.native);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn feature_info(&self, feature: Feature) -> FeatureInfo {
        FeatureInfo {
            feature,
            required: feature.required_kernel_version(),
            description: feature.description(),
            status: *self.0.report.status(feature),
            backend_offers: self.backend_offers(feature),
            native: self.uses_native(feature),
        }
    }

    /// How often and how long `feature` ran natively and through its fallback on this ring.
    ///
    /// The unit is the feature's decision: one operation for most features. For
    /// [`Feature::RegisteredRingFd`] it is one `io_uring_enter` call, native when it named the
    /// ring by its registered index and fallback when by its fd (times are not measured; epoll
    /// rings make no enter calls and count none). Each
    /// [`recv_enhanced`](crate::RingRef::recv_enhanced) counts once, under the feature that
    /// chose its path: [`Feature::MultiShotRecv`] for the multishot tier, else
    /// [`Feature::BufferRings`] (native: one buffer-select recv; fallback: a plain recv).
    ///
    /// # Examples
    /// ```
    /// use safer_ring::Feature;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let listener = ring.bind_tcp("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// ring.block_on(async {
    ///     let mut conns = ring.accept_multiple(&listener);
    ///     conns.next().await.expect("a connection")?;
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// let stats = ring.enhancement_stats(Feature::MultiShotAccept);
    /// assert_eq!(stats.native + stats.fallback, 1); // one accept, on whichever path ran
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enhancement_stats(&self, feature: Feature) -> FeatureStats {
        self.0.stats.get(feature)
    }

    /// Provided buffers (of the ring's receive group) handed out by completions and not yet
    /// given back to the kernel. For tests: a finished or dropped receive leaves none out.
    #[doc(hidden)]
    pub fn provided_buffers_out(&self) -> usize {
        self.driver().buffers_out()
    }

    pub(crate) fn record(&self, feature: Feature, path: PathTaken, took: Duration) {
        self.0.stats.record(feature, path, took);
    }

    /// This ring's backend cannot do `feature` (not a kernel verdict: no process-wide demotion).
    pub(crate) fn disable_native(&self, feature: Feature) {
        let mut n = self.0.native.get();
        n.remove(feature);
        self.0.native.set(n);
    }

    /// The kernel answered EINVAL to `feature`'s native path. Where detection could not see
    /// the feature (version table only), that is the kernel's verdict: demoted for the rest of
    /// the process. Where a probe, flag or real call confirmed it, the refusal is about this
    /// call or ring, so only this ring stops using it.
    pub(crate) fn demote(&self, feature: Feature, why: &str) {
        if self.0.report.status(feature).by_detection == Some(true) {
            tracing::warn!(
                feature = feature.name(),
                reason = why,
                "kernel rejected a feature detection confirmed; this ring uses its fallback"
            );
        } else {
            features::demote(feature, why);
        }
        self.disable_native(feature);
        self.0.stats.demoted(feature);
    }

    pub(crate) fn zero_copy_threshold(&self) -> usize {
        self.0.enhancement.zero_copy_threshold
    }

    pub(crate) fn mailbox(&self) -> std::sync::Arc<crate::enhanced::Mailbox> {
        self.0.mailbox.clone()
    }

    pub(crate) fn fallback_timeout(&self) -> Option<Duration> {
        self.0.enhancement.fallback_timeout
    }

    /// The backend in use and why.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let info = ring.info();
    /// if let Some(why) = &info.fallback_reason {
    ///     println!("on {:?} because {why}", info.backend);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> &RingInfo {
        &self.0.info
    }

    /// The backend in use.
    ///
    /// # Examples
    /// ```
    /// use safer_ring::BackendKind;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// match ring.backend() {
    ///     BackendKind::IoUring => println!("io_uring"),
    ///     other => println!("fallback: {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backend(&self) -> BackendKind {
        self.0.info.backend
    }

    /// Runs `fut` to completion on this thread, together with tasks from [`Ring::spawn`](crate::RingRef::spawn).
    /// Blocks in the kernel while nothing is runnable (no spinning).
    ///
    /// # Panics
    /// When called while this ring's `block_on` is already running (from inside a task or the
    /// future it runs): await the future there instead. A panic of `fut` or of a task
    /// propagates; the ring stays usable (the panicking task is dropped).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let answer = ring.block_on(async {
    ///     ring.nop().await?;
    ///     Ok::<_, std::io::Error>(42)
    /// })?;
    /// assert_eq!(answer, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        assert!(
            !self.is_closed(),
            "RingRef::block_on: the ring was dropped (its owning Ring is gone); nothing can drive it"
        );
        self.0.exec.block_on(fut, |wait, batch| {
            // The owning Ring was dropped by a task: nothing completes any more.
            assert!(
                !(wait && self.is_closed()),
                "RingRef::block_on: the ring was dropped while block_on ran and nothing can \
                 make progress"
            );
            let r = {
                let mut d = self.driver();
                let r = d.turn(wait, None);
                d.take_woken(batch);
                r
            };
            self.0.driver.reraise();
            r
        })
    }

    /// Spawns a task that runs during [`Ring::block_on`](crate::RingRef::block_on) and returns a handle to its output.
    ///
    /// The task's panic is caught at the task boundary and reported through the handle
    /// ([`JoinError::Panicked`](crate::JoinError)); the main future and the other tasks go on.
    /// Dropping the handle detaches the task; [`JoinHandle::abort`](crate::JoinHandle::abort)
    /// cancels it. Tasks still pending when the ring is dropped, or when the main future of
    /// `block_on` panics, are dropped (their operations cancelled).
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, tx) = ring.pipe()?;
    /// let r = ring.clone(); // tasks hold a RingRef
    /// let reader = ring.spawn(async move { r.read(&rx, Vec::with_capacity(8)).await.1 });
    /// ring.block_on(async {
    ///     let (n, _) = ring.write(&tx, b"hi".to_vec()).await;
    ///     n?;
    ///     assert_eq!(reader.await.expect("task"), b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F: Future + 'static>(&self, fut: F) -> crate::JoinHandle<F::Output> {
        let (mut handle, id) = self.0.exec.spawn(fut);
        let home: std::rc::Weak<Core> = Rc::downgrade(&self.0);
        handle.set_home(home, id);
        if self.is_closed() {
            // No one will run it: drop it now (its handle reports `Cancelled`).
            drop(self.0.exec.drop_tasks());
        }
        handle
    }

    /// Operations the kernel may still be working on (including those of dropped futures).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let (rx, _tx) = ring.pipe()?;
    /// // A read dropped after being polled once stays in flight (its buffer with the ring) until
    /// // the kernel confirms the cancel.
    /// let timed_out = ring.block_on(ring.timeout(Duration::from_millis(5), ring.read(&rx, vec![0; 8])));
    /// assert!(timed_out.is_err());
    /// while ring.in_flight() > 0 {
    ///     ring.block_on(ring.nop())?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn in_flight(&self) -> usize {
        self.driver().in_flight()
    }

    /// Submits queued operations and delivers available completions without blocking, then
    /// wakes the tasks whose operations completed.
    ///
    /// # Errors
    /// A failed `io_uring_enter` / `epoll_wait`. Operations already queued stay in flight
    /// (their buffers stay with the ring) and are submitted by a later call.
    ///
    /// # Examples
    /// ```
    /// # let ring = safer_ring::Ring::new(8)?;
    /// let mut op = std::pin::pin!(ring.nop());
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// let _ = op.as_mut().poll(&mut cx); // queued
    /// loop {
    ///     ring.poll_completions()?; // submits and reaps without blocking
    ///     if let std::task::Poll::Ready(res) = op.as_mut().poll(&mut cx) {
    ///         break res?;
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_completions(&self) -> io::Result<()> {
        self.turn(false)
    }

    /// One driver turn; the wakers and destructors it collected run after the borrow ends, and
    /// the first panic among them is re-raised here.
    #[inline]
    pub(crate) fn turn(&self, wait: bool) -> io::Result<()> {
        let r = self.driver().turn(wait, None);
        self.0.driver.reraise();
        r
    }

    /// The executor's identity, which its tasks' ops compare (see `driver/budget.rs`).
    #[inline]
    pub(crate) fn exec_id(&self) -> *const () {
        self.0.exec.id()
    }

    /// The driver, borrowed; see `driver/cell.rs` for what dropping the borrow runs.
    #[inline]
    pub(crate) fn driver(&self) -> DriverRef<'_> {
        self.0.driver.borrow()
    }

    /// The driver's chore queue, without borrowing the driver.
    pub(crate) fn chore_queue(&self) -> &crate::driver::ChoreQueue {
        &self.0.chores
    }

    /// The driver from a destructor: never panics (`None` if busy: the caller queues a chore).
    pub(crate) fn driver_in_drop(&self) -> Option<DriverRef<'_>> {
        self.0.driver.borrow_in_drop()
    }

    pub(crate) fn nonblocking_fds(&self) -> bool {
        self.0.nonblocking
    }

    /// Claims this ring's one buffer pool; false if it was taken.
    pub(crate) fn claim_fixed_pool(&self) -> bool {
        !self.0.has_fixed_pool.replace(true)
    }

    /// Whether the configuration asked for `feature` in strict mode (a refusal is an error).
    pub(crate) fn strict_about(&self, feature: Feature) -> bool {
        let e = &self.0.enhancement;
        e.strict && e.wish(feature) == Some(true)
    }

    pub(crate) fn prepare(&self, fd: &SharedFd) -> io::Result<()> {
        fd.prepare(self.nonblocking_fds())
    }
}

/// The backend for `choice`: io_uring when it works (and, for `Auto`, serves every core
/// operation), else epoll, with the reason.
fn open_backend(
    cfg: &SaferRingConfig,
    choice: BackendKind,
    wake: std::os::fd::RawFd,
    report: &FeatureReport,
) -> Result<(AnyBackend, RingInfo)> {
    let epoll = |reason: String| -> Result<(AnyBackend, RingInfo)> {
        let b = EpollBackend::new(wake, cfg.blocking).map_err(|source| {
            SaferRingError::BackendUnavailable {
                backend: BackendKind::Epoll,
                source,
            }
        })?;
        let info = RingInfo {
            backend: BackendKind::Epoll,
            fallback_reason: Some(reason),
            setup: None,
        };
        Ok((AnyBackend::Epoll(b), info))
    };
    if choice == BackendKind::Epoll {
        return epoll("epoll requested by configuration".into());
    }
    match IoUringBackend::new(
        cfg,
        wake,
        report.available,
        report.inputs.opcodes.as_deref(),
    ) {
        Ok(b) => match features::io_uring_serves_core_ops(report) {
            // Auto: a kernel whose io_uring lacks core opcodes (before 5.6/5.11) gets epoll.
            Err(why) if choice == BackendKind::Auto => epoll(why),
            _ => {
                let info = RingInfo {
                    backend: BackendKind::IoUring,
                    fallback_reason: None,
                    setup: Some(b.report()),
                };
                Ok((AnyBackend::Uring(Box::new(b)), info))
            }
        },
        Err(e) if choice == BackendKind::IoUring => {
            if e.raw_os_error() == Some(libc::ENOMEM) {
                return Err(SaferRingError::RingMemoryLimit {
                    entries: cfg.entries,
                    memlock_limit: crate::kernel::sys::memlock_limit(),
                });
            }
            Err(SaferRingError::BackendUnavailable {
                backend: BackendKind::IoUring,
                source: e,
            })
        }
        Err(e) => epoll(unavailable_reason(&e)),
    }
}

/// Which features a new ring uses natively: detected (real call > probe > flags > version),
/// not demoted, wanted by the configuration, and for setup flags actually granted.
fn decide_native(
    cfg: &SaferRingConfig,
    info: &RingInfo,
    report: &FeatureReport,
) -> Result<AvailableFeatures> {
    let mut available = match info.backend {
        BackendKind::IoUring => report.available,
        _ => AvailableFeatures::empty(),
    };
    if let Some(s) = info.setup {
        for (f, granted) in [
            (Feature::CoopTaskrun, s.coop_taskrun),
            (Feature::SingleIssuer, s.single_issuer),
            (Feature::DeferTaskrun, s.defer_taskrun),
        ] {
            if !granted {
                available.remove(f);
            }
        }
    }
    let mut native = AvailableFeatures::empty();
    for f in Feature::all() {
        if features::is_demoted(f) {
            available.remove(f);
        }
        let forced = info.backend == BackendKind::IoUring && cfg.enhancement.forced(f);
        if cfg.enhancement.should_use_feature(f, &available) || forced {
            native.insert(f);
        } else if cfg.enhancement.wish(f) == Some(true) {
            if cfg.enhancement.strict {
                return Err(SaferRingError::UnsupportedFeature {
                    feature: f,
                    required: f.required_kernel_version(),
                    detected: report.inputs.version,
                    backend: info.backend,
                });
            }
            tracing::warn!(feature = f.name(), backend = %info.backend, "feature requested but unavailable; using its fallback");
        }
    }
    Ok(native)
}

/// A short, actionable reason why io_uring could not be set up.
pub(crate) fn unavailable_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => "io_uring_setup: ENOSYS (kernel built without io_uring or older than 5.1)".into(),
        Some(libc::EPERM) => "io_uring_setup: EPERM (blocked by seccomp, e.g. Docker's default profile, or kernel.io_uring_disabled)".into(),
        Some(libc::EACCES) => "io_uring_setup: EACCES (blocked by a security policy)".into(),
        Some(libc::ENOMEM) => format!(
            "io_uring_setup: ENOMEM (RLIMIT_MEMLOCK is {} bytes; kernels before 5.12 charge rings to it)",
            crate::kernel::sys::memlock_limit()
        ),
        _ => format!("io_uring_setup: {e}"),
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let core = &self.shared.0;
        core.closed.set(true);
        // Messages sent from now on fail instead of piling up; queued fds are closed.
        core.mailbox.close();
        // Tasks first: their ops become orphans. A task's destructor may panic; the others
        // are still dropped and the ring still drains before that panic continues.
        let panic = core.exec.drop_tasks();
        // Cancel and drain (or leak) everything, close the backend's fds; the orphans' user
        // code runs as the borrow ends.
        core.driver.borrow().close();
        // A kept panic of a waker or buffer destructor that no turn re-raised is dropped with
        // the ring (the panic hook already reported it when it happened); a task destructor's
        // panic happened in this drop and continues from here.
        drop(core.driver.take_panic());
        if let Some(p) = panic
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(p);
        }
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("info", &self.shared.0.info)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RingRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingRef")
            .field("info", &self.0.info)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
