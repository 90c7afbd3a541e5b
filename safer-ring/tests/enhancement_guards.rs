//! Guards for lines of the seed that an audit (issue 21, part 5) could break without any test
//! noticing: each test here fails, in bounded time, when the line it names is broken. The real
//! kernel where it can show the behaviour; mock kernels (`features::decide`) for kernels this
//! host cannot be.
//!
//! Demotion is process-wide and cannot be undone, so it is rationed in this binary: exactly two
//! tests demote, each a feature no other test here relies on.
//! - `einval_demotes_a_version_only_feature_for_the_process`: `CancelByFd` (version-detected,
//!   consulted by nothing in safer-ring);
//! - `a_second_demotion_is_not_logged_again`: `ReadMultishot` (detected and reported only).
//!
//! Every other test leaves every feature undemoted when the code is right; one that would
//! demote only under a broken line may disturb others then, which is fine: it fails anyway.

#[macro_use]
#[path = "support/mod.rs"]
mod support;

use support as common;

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use safer_ring::features::{self, AvailableFeatures, DetectionInputs, KernelVersion};
use safer_ring::{BackendKind, Feature, ProgressiveEnhancementConfig, Ring, SaferRingConfig};

/// Ends the whole test process if it is still running `limit` after creation (dropping the
/// guard disarms it): a test whose ring machinery itself hangs still fails, in bounded time.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn new(what: &'static str, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("{what}: still running after {limit:?}; aborting the test process");
                std::process::abort();
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

// ---- 1. enhanced/stats.rs: the times in `enhancement_stats` --------------------------------

/// `record` adds each operation's time to its path's total (`native_time`, `fallback_time`):
/// two naps of 20 and 30 ms add up to at least 50 ms on the path taken (a total that is only
/// the last one, or nothing, falls short), and the other path's time stays zero.
#[test]
fn native_and_fallback_times_add_up() {
    const NAPS: [Duration; 2] = [Duration::from_millis(20), Duration::from_millis(30)];
    let total: Duration = NAPS.iter().sum();
    let f = Feature::SendZeroCopy;
    let run = |ring: &Ring| {
        for nap in NAPS {
            let (res, ()) = ring.block_on(ring.execute_with_fallback(
                f,
                (),
                |b| async move { (ring.sleep(nap).await, b) },
                |b| async move { (ring.sleep(nap).await, b) },
            ));
            res.unwrap();
        }
        ring.enhancement_stats(f)
    };
    for ring in common::fallback_rings(f) {
        let s = run(&ring);
        assert_eq!((s.native, s.fallback), (0, 2), "{}: {s:?}", ring.backend());
        assert!(s.fallback_time >= total, "{}: {s:?}", ring.backend());
        assert_eq!(s.native_time, Duration::ZERO, "{s:?}");
    }
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(f) {
        common::skip("the native half needs SEND_ZC (Linux 6.0)");
        return;
    }
    let s = run(&ring);
    assert_eq!((s.native, s.fallback), (2, 0), "{s:?}");
    assert!(s.native_time >= total, "{s:?}");
    assert_eq!(s.fallback_time, Duration::ZERO, "{s:?}");
}

/// `RegisteredRingFd`'s counts come from the backend's enter counters (`Stats::get`): enters
/// through the registered fd are native, through the plain fd the fallback.
#[test]
fn ring_fd_stats_count_enters_on_each_path() {
    let f = Feature::RegisteredRingFd;
    let Some(on) = common::ring(BackendKind::IoUring) else {
        return;
    };
    let off = common::ring_with(common::uring_wishing(f, Some(false)).entries(64)).unwrap();
    for ring in [&on, &off] {
        for _ in 0..5 {
            ring.block_on(ring.nop()).unwrap();
        }
    }
    let s = off.enhancement_stats(f);
    assert_eq!(off.registered_ring_fd(), None);
    assert!(s.fallback >= 5 && s.native == 0, "plain fd: {s:?}");
    if on.registered_ring_fd().is_none() {
        common::skip("registered ring fds need Linux 5.18");
        return;
    }
    let s = on.enhancement_stats(f);
    assert!(s.native >= 5 && s.fallback == 0, "registered fd: {s:?}");
}

// ---- 2. ring.rs: setup flags the configuration turns off are not native --------------------

/// `decide_native` drops a setup flag the ring did not get (`if !granted { remove }`): turning
/// COOP_TASKRUN, SINGLE_ISSUER or DEFER_TASKRUN off in the configuration takes it out of the
/// native set although detection found it.
#[test]
fn setup_flags_turned_off_are_not_native() {
    let Some(base) = common::ring(BackendKind::IoUring) else {
        return;
    };
    let cases = [
        (
            Feature::CoopTaskrun,
            SaferRingConfig::default().coop_taskrun(false),
        ),
        (
            Feature::SingleIssuer,
            SaferRingConfig::default()
                .single_issuer(false)
                .defer_taskrun(false),
        ),
        (
            Feature::DeferTaskrun,
            SaferRingConfig::default().defer_taskrun(false),
        ),
    ];
    let mut checked = 0;
    for (f, cfg) in cases {
        if !base.uses_native(f) {
            common::skip(format_args!("{f}: not granted on this kernel"));
            continue;
        }
        let ring = common::ring_with(cfg.entries(64).backend(BackendKind::IoUring)).unwrap();
        let s = ring.info().setup.expect("an io_uring ring");
        let granted = match f {
            Feature::CoopTaskrun => s.coop_taskrun,
            Feature::SingleIssuer => s.single_issuer,
            _ => s.defer_taskrun,
        };
        assert!(!granted, "{f}: turned off, yet set up");
        assert!(!ring.uses_native(f), "{f}: not granted, still native");
        assert!(!ring.features().contains(f), "{f}");
        assert!(!ring.feature_info(f).native, "{f}");
        checked += 1;
    }
    if checked == 3 {
        // The rest of the native set is untouched.
        let ring = common::ring_with(
            SaferRingConfig::default()
                .coop_taskrun(false)
                .backend(BackendKind::IoUring),
        )
        .unwrap();
        assert!(ring.uses_native(Feature::SingleIssuer));
        assert!(ring.uses_native(Feature::DeferTaskrun));
    }
}

// ---- 3. enhanced/fallback.rs: the error rules of `execute_with_fallback` -------------------

/// Runs `execute_with_fallback(f)` with a native path failing with `err`; returns the result,
/// whether the fallback ran, and the buffer.
fn native_fails(ring: &Ring, f: Feature, err: io::Error) -> (io::Result<usize>, bool, Vec<u8>) {
    let fell_back = Cell::new(false);
    let (res, buf) = ring.block_on(ring.execute_with_fallback(
        f,
        vec![1u8, 2, 3],
        |b| async move { (Err(err), b) },
        |b: Vec<u8>| {
            fell_back.set(true);
            async move { (Ok(b.len()), b) }
        },
    ));
    (res, fell_back.get(), buf)
}

/// A feature detection confirmed (SEND_ZC by the probe): the kernel's EINVAL is about this
/// call, not the feature. It comes back unchanged, without the fallback; the feature stays
/// native for the ring and undemoted for the process.
#[test]
fn einval_on_a_detection_confirmed_feature_is_returned_unchanged() {
    let f = Feature::SendZeroCopy;
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(f) {
        common::skip("needs SEND_ZC (Linux 6.0)");
        return;
    }
    assert_eq!(ring.feature_info(f).status.by_detection, Some(true));
    let (res, fell_back, buf) = native_fails(&ring, f, einval());
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    assert!(!fell_back, "EINVAL on a confirmed feature ran the fallback");
    assert_eq!(buf, [1, 2, 3]);
    let s = ring.enhancement_stats(f);
    assert_eq!((s.native, s.fallback, s.demotions), (1, 0, 0), "{s:?}");
    assert!(ring.uses_native(f), "disabled for the ring");
    assert!(!features::is_demoted(f), "demoted for the process");
}

/// A version-only feature (CANCEL_FD, a flag on ASYNC_CANCEL): EINVAL is the kernel's only
/// word on it. The fallback runs once with the buffer, the ring stops using it, and it is
/// demoted for the process: a new ring does not use it either. The only test here that demotes
/// `CancelByFd`.
#[test]
fn einval_demotes_a_version_only_feature_for_the_process() {
    let f = Feature::CancelByFd;
    assert!(matches!(f.detection(), features::Detection::Version(_)));
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(f) {
        common::skip("CancelByFd needs Linux 5.19");
        return;
    }
    let (res, fell_back, buf) = native_fails(&ring, f, einval());
    assert_eq!(res.unwrap(), 3);
    assert!(fell_back);
    assert_eq!(buf, [1, 2, 3]);
    let s = ring.enhancement_stats(f);
    assert_eq!((s.native, s.fallback, s.demotions), (0, 1, 1), "{s:?}");
    assert!(!ring.uses_native(f));
    assert!(features::is_demoted(f));
    let next = common::ring(BackendKind::IoUring).unwrap();
    assert!(!next.uses_native(f), "demoted for the process");
}

/// Any other error of a version-only feature's native path is the operation's own: returned
/// unchanged, no fallback, no demotion (`BatchedSubmissions`: nothing consults it, so even a
/// wrong demotion here would disturb no other test).
#[test]
fn other_errors_of_a_version_only_feature_pass_through() {
    let f = Feature::BatchedSubmissions;
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    assert!(ring.uses_native(f), "io_uring itself");
    let (res, fell_back, _) = native_fails(&ring, f, io::Error::from_raw_os_error(libc::EBADF));
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert!(!fell_back);
    let s = ring.enhancement_stats(f);
    assert_eq!((s.native, s.fallback, s.demotions), (1, 0, 0), "{s:?}");
    assert!(ring.uses_native(f) && !features::is_demoted(f));
}

/// "Unsupported" in each of its three forms runs the fallback without demoting anything; a
/// fallback that fails then says why the native path was not used (`FallbackFailed`), keeping
/// the fallback error's kind. A fallback taken because the ring does not use the feature
/// returns its error unchanged.
#[test]
fn unsupported_falls_back_without_demotion() {
    let f = Feature::SendZeroCopy;
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(f) {
        common::skip("needs SEND_ZC (Linux 6.0)");
        return;
    }
    let typed = safer_ring::SaferRingError::UnsupportedFeature {
        feature: f,
        required: f.required_kernel_version(),
        detected: None,
        backend: BackendKind::IoUring,
    };
    let forms = [
        io::Error::new(io::ErrorKind::Unsupported, "no such thing"),
        io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        // Wrapped under another kind: only the typed error says "unsupported".
        io::Error::other(typed),
    ];
    for (i, err) in forms.into_iter().enumerate() {
        let (res, fell_back, buf) = native_fails(&ring, f, err);
        assert_eq!(res.unwrap(), 3, "form {i}");
        assert!(fell_back, "form {i}");
        assert_eq!(buf, [1, 2, 3]);
    }
    let s = ring.enhancement_stats(f);
    assert_eq!((s.native, s.fallback, s.demotions), (0, 3, 0), "{s:?}");
    assert!(ring.uses_native(f) && !features::is_demoted(f));

    let (res, buf) = ring.block_on(ring.execute_with_fallback(
        f,
        7u8,
        |b| async move {
            (
                Err::<(), _>(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
                b,
            )
        },
        |b| async move { (Err(io::Error::from_raw_os_error(libc::ECONNRESET)), b) },
    ));
    assert_eq!(buf, 7);
    let e = res.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    let inner = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<safer_ring::SaferRingError>());
    assert!(
        matches!(inner, Some(safer_ring::SaferRingError::FallbackFailed { feature, .. }) if *feature == f),
        "{e:?}"
    );

    let off = common::ring(BackendKind::Epoll).unwrap();
    let (res, _) = off.block_on(off.execute_with_fallback(
        f,
        (),
        |b| async move { (Ok(()), b) },
        |b| async move {
            (
                Err::<(), _>(io::Error::from_raw_os_error(libc::ECONNRESET)),
                b,
            )
        },
    ));
    let e = res.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{e:?}");
}

/// `RingRef::demote` for a feature detection confirmed (buffer rings, registered for real by
/// detection): a buffer-select recv the kernel answers EINVAL (injected) turns buffer rings off
/// for this ring only; the receive still gets its bytes, another ring still uses them, and
/// nothing is demoted for the process.
#[cfg(feature = "fault-injection")]
#[test]
fn einval_on_a_confirmed_feature_stays_with_its_ring() {
    use safer_ring::fault::{FaultPlan, OpClass};
    let f = Feature::BufferRings;
    if !features::is_available(f) {
        common::skip("buffer rings need Linux 5.19");
        return;
    }
    let pe = ProgressiveEnhancementConfig::default().feature(Feature::MultiShotRecv, Some(false));
    let cfg = SaferRingConfig::default()
        .entries(64)
        .backend(BackendKind::IoUring)
        .enhancement(pe);
    let plan = FaultPlan::new().fail(OpClass::RecvSelect, libc::EINVAL, 1);
    let ring = common::ring_with(cfg.clone().fault_plan(plan)).unwrap();
    let other = common::ring_with(cfg).unwrap();
    assert!(ring.uses_native(f) && other.uses_native(f));
    assert_eq!(ring.feature_info(f).status.by_detection, Some(true));
    let (a, b) = ring.unix_pair().unwrap();
    let got = ring.block_on(async {
        let (n, _) = ring.send(&a, b"refused once".to_vec()).await;
        n.unwrap();
        let (n, buf) = ring.recv_enhanced(&b, Vec::with_capacity(64)).await;
        n.unwrap();
        buf
    });
    assert_eq!(got, b"refused once");
    let s = ring.enhancement_stats(f);
    assert_eq!(s.demotions, 1, "{s:?}");
    assert!(!ring.uses_native(f), "still on for the ring");
    assert!(!features::is_demoted(f), "demoted for the process");
    assert!(other.uses_native(f));
}

// ---- 5. features/table.rs: `AvailableFeatures::remove` -------------------------------------

/// Removing a feature that is not in the set leaves it out (a toggle would put it in).
#[test]
fn removing_an_absent_feature_leaves_it_absent() {
    let mut set = AvailableFeatures::empty();
    set.remove(Feature::MsgRing);
    assert!(!set.contains(Feature::MsgRing) && set.is_empty());
    let mut set: AvailableFeatures = [Feature::SendZeroCopy].into_iter().collect();
    set.remove(Feature::MsgRing);
    set.remove(Feature::MsgRing);
    assert_eq!(set.iter().collect::<Vec<_>>(), [Feature::SendZeroCopy]);
    set.remove(Feature::SendZeroCopy);
    set.remove(Feature::SendZeroCopy);
    assert!(set.is_empty() && !set.contains(Feature::SendZeroCopy));
}

// ---- 6. features/: the core-opcode gate and the no-probe version floor ---------------------

/// `io_uring_serves_core_ops`: with a probe, every core opcode must be in it (whatever the
/// version says); without one, the version must be at least 5.11 (SHUTDOWN, the newest core
/// opcode); without either, no.
#[test]
fn core_opcode_gate_and_no_probe_version_floor() {
    use features::mock::MockKernel;
    use features::{CORE_OPCODES, decide, io_uring_serves_core_ops as serves};
    let v = |maj, min, patch| KernelVersion::new(maj, min, patch);
    for (version, ok) in [
        (v(5, 4, 0), false),
        (v(5, 10, 255), false),
        (v(5, 11, 0), true),
        (v(6, 18, 0), true),
    ] {
        let res = serves(&decide(DetectionInputs::version_only(version)));
        assert_eq!(res.is_ok(), ok, "{version} without a probe: {res:?}");
        if let Err(why) = res {
            assert!(why.contains("no opcode probe"), "{why}");
        }
    }
    // The presets without a probe (5.1, 5.4, 5.5) predate the floor; 6.8's probe has all.
    for k in MockKernel::all() {
        let res = serves(&decide(k.inputs.clone()));
        assert_eq!(
            res.is_ok(),
            k.inputs.opcodes.is_some(),
            "{}: {res:?}",
            k.name
        );
    }
    let mut unknown = DetectionInputs::version_only(v(6, 18, 0));
    unknown.version = None;
    assert!(serves(&decide(unknown)).is_err(), "no probe and no version");
    let mut blocked = DetectionInputs::version_only(v(6, 18, 0));
    blocked.io_uring = Err("blocked by seccomp".into());
    assert_eq!(serves(&decide(blocked)).unwrap_err(), "blocked by seccomp");
    // The probe overrules the version both ways: a 5.4 (say, a backport) whose probe has every
    // opcode passes; a 6.18 whose probe lacks any one core opcode does not.
    let mut backport = DetectionInputs::version_only(v(5, 4, 0));
    backport.opcodes = Some((0..=63).collect());
    assert!(serves(&decide(backport)).is_ok());
    assert!(!CORE_OPCODES.is_empty());
    for &missing in CORE_OPCODES {
        let mut inputs = DetectionInputs::version_only(v(6, 18, 0));
        inputs.opcodes = Some((0..=63).filter(|&o| o != missing).collect());
        let why = serves(&decide(inputs)).unwrap_err();
        let name = features::opcode_name(missing);
        assert!(
            why.ends_with(&format!("opcodes {name} on this kernel")),
            "{name}: {why}"
        );
    }
    // Linux 5.1's opcodes (NOP..POLL_REMOVE, 0..=7), had it had a probe, lack most core ones.
    let mut v5_1 = DetectionInputs::version_only(v(5, 1, 0));
    v5_1.opcodes = Some((0..=7).collect());
    assert!(serves(&decide(v5_1)).unwrap_err().contains("SENDMSG"));
}

/// The gate at ring creation (`open_backend`): in `auto` mode a kernel io_uring cannot be
/// shown to serve every core operation runs the ring on epoll, saying why; io_uring asked for
/// explicitly is used anyway. A kernel without a probe is judged by its version (this one
/// passes). Detection's syscalls fail on demand (`fault::fail_next`, this thread only) and the
/// rings detect afresh, so the process cache is untouched.
#[cfg(feature = "fault-injection")]
#[test]
fn rings_in_auto_mode_follow_the_core_opcode_gate() {
    use safer_ring::fault::{Syscall, fail_next};
    let detected = features::detected();
    if detected.io_uring_available().is_err() {
        common::skip("io_uring unavailable here");
        return;
    }
    let cfg = |b: BackendKind| {
        SaferRingConfig::default()
            .entries(8)
            .backend(b)
            .enhancement(ProgressiveEnhancementConfig::default().detection_cache(false))
    };
    let make = |b: BackendKind, no_version: bool| {
        fail_next(Syscall::IoUringProbe, libc::EPERM, 1);
        if no_version {
            fail_next(Syscall::Uname, libc::EPERM, 1);
        }
        let ring = Ring::with_config(cfg(b));
        fail_next(Syscall::IoUringProbe, 0, 0);
        fail_next(Syscall::Uname, 0, 0);
        ring.unwrap()
    };
    let floor_ok = detected
        .inputs
        .version
        .is_some_and(|v| v >= KernelVersion::new(5, 11, 0));
    let ring = make(BackendKind::Auto, false);
    assert_eq!(
        ring.backend() == BackendKind::IoUring,
        floor_ok,
        "no probe, version {:?}: {:?}",
        detected.inputs.version,
        ring.info().fallback_reason
    );
    let ring = make(BackendKind::Auto, true);
    assert_eq!(ring.backend(), BackendKind::Epoll);
    let why = ring.info().fallback_reason.clone().unwrap_or_default();
    assert!(
        why.contains("no opcode probe and no kernel version"),
        "{why}"
    );
    let ring = make(BackendKind::IoUring, true);
    assert_eq!(ring.backend(), BackendKind::IoUring, "asked for explicitly");
    ring.block_on(ring.nop()).unwrap();
}

// ---- 8. enhanced/accept_multi.rs: only a first completion's EINVAL demotes -----------------

/// An armed multishot accept that already accepted a connection and then answers EINVAL has
/// met a listener gone bad, not a kernel without the flag: the error is the stream's item and
/// nothing is demoted. The real kernel makes that EINVAL: a listener shut down for reading
/// leaves LISTEN, and the accept the wake-up retries fails with EINVAL.
#[test]
fn a_later_einval_of_multishot_accept_is_an_error_not_a_demotion() {
    let f = Feature::MultiShotAccept;
    let Some(ring) = common::ring(BackendKind::IoUring) else {
        return;
    };
    if !ring.uses_native(f) {
        common::skip("multishot accept needs Linux 5.19");
        return;
    }
    let _dog = Watchdog::new("later EINVAL of multishot accept", Duration::from_secs(120));
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let out = ring.block_on(ring.timeout(Duration::from_secs(30), async {
        let mut conns = ring.accept_multiple(&listener);
        let first = conns.next().await.unwrap().unwrap();
        assert!(conns.is_native());
        // SAFETY: shutdown(2) on the listener's live fd; no memory involved.
        let r = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RD) };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        let e = conns.next().await.unwrap().unwrap_err();
        drop(first);
        e
    }));
    let e = out.expect("the shut-down listener's multishot accept never completed");
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e:?}");
    let s = ring.enhancement_stats(f);
    assert_eq!((s.native, s.demotions), (1, 0), "{s:?}");
    assert!(ring.uses_native(f), "disabled for the ring");
    assert!(!features::is_demoted(f), "demoted for the process");
}

// ---- 9. features/cache.rs: a demotion is logged once ---------------------------------------

/// `features::demote` warns the first time a feature is demoted, never again. The only test
/// here that demotes `ReadMultishot`.
#[test]
fn a_second_demotion_is_not_logged_again() {
    let f = Feature::ReadMultishot;
    assert!(!features::is_demoted(f), "demoted before this test");
    let capture = common::capture::Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        features::demote(f, "first refusal");
        features::demote(f, "second refusal");
    });
    let lines: Vec<String> = capture
        .lines()
        .into_iter()
        .filter(|l| l.contains("ReadMultishot"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("first refusal"), "{lines:#?}");
    assert!(features::is_demoted(f));
}

// ---- 10. the fallback timeout of accept_multiple, in bounded time --------------------------

/// tests/enhanced.rs `fallback_timeout_reports_timed_out_and_goes_on` checks the same bound
/// but waits for it without limit: a broken bound hangs it. Here the single accept (multishot
/// off) on a listener nobody connects to must end with `TimedOut` within a generous 10 s,
/// on TCP and Unix listeners, on io_uring and epoll; the watchdog ends a hang of the ring
/// itself.
#[test]
fn fallback_timeout_ends_a_lonely_accept_in_bounded_time() {
    let _dog = Watchdog::new("fallback timeout", Duration::from_secs(120));
    let bound = Duration::from_millis(30);
    let pe = ProgressiveEnhancementConfig::default()
        .feature(Feature::MultiShotAccept, Some(false))
        .fallback_timeout(bound);
    let rings = [BackendKind::IoUring, BackendKind::Epoll]
        .into_iter()
        .filter_map(|b| {
            common::ring_with(
                SaferRingConfig::default()
                    .entries(64)
                    .backend(b)
                    .enhancement(pe.clone()),
            )
        });
    for ring in rings {
        let which = ring.backend();
        let tcp = ring.bind_tcp("127.0.0.1:0").unwrap();
        let path = common::TempPath::new("seed-guard-accept");
        let unix = ring.bind_unix(&path.0).unwrap();
        let kinds = ring.block_on(ring.timeout(Duration::from_secs(10), async {
            let t = std::time::Instant::now();
            let e_tcp = ring
                .accept_multiple(&tcp)
                .next()
                .await
                .unwrap()
                .unwrap_err();
            let e_unix = ring
                .accept_multiple(&unix)
                .next()
                .await
                .unwrap()
                .unwrap_err();
            (e_tcp.kind(), e_unix.kind(), t.elapsed())
        }));
        let (tcp_kind, unix_kind, took) = kinds.unwrap_or_else(|_| {
            panic!("{which}: the {bound:?} bound did not end an accept in 10 s")
        });
        assert_eq!(tcp_kind, io::ErrorKind::TimedOut, "{which} TCP");
        assert_eq!(unix_kind, io::ErrorKind::TimedOut, "{which} Unix");
        assert!(
            took >= bound * 2 - Duration::from_millis(10),
            "{which}: {took:?}"
        );
    }
}
