//! Attacks on ring-level state: a failing io_uring_enter (defect 3) and a socket's multishot
//! recv state that is not tied to the ring that armed it (defect 5).

use std::io::Write;
use std::task::Poll;
use std::time::Duration;

use safer_ring::{BackendKind, Feature, Ring, SaferRingConfig, SubmitPolicy, UnixStream};
use support::soundness::*;

use crate::support;

/// Installs, for the calling thread only (and for good), a seccomp filter that fails every
/// non-waiting io_uring_enter (min_complete == 0) with ENOMEM. Waiting enters still work, so
/// the ring can later submit what is left in its SQ.
#[cfg(target_arch = "x86_64")]
fn fail_nonwaiting_io_uring_enter() {
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000; // EM_X86_64 | 64BIT | LE
    const NR: u32 = 0; // offsets into struct seccomp_data
    const ARCH: u32 = 4;
    const ARG2_LO: u32 = 16 + 2 * 8; // args[2] (min_complete), little-endian low word
    let ins = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let (ld, jeq, ret) = (
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        libc::BPF_RET | libc::BPF_K,
    );
    let enomem = libc::SECCOMP_RET_ERRNO | (libc::ENOMEM as u32 & libc::SECCOMP_RET_DATA);
    let mut prog = [
        ins(ld, ARCH, 0, 0),
        ins(jeq, AUDIT_ARCH_X86_64, 0, 4), // other arch: allow
        ins(ld, NR, 0, 0),
        ins(jeq, libc::SYS_io_uring_enter as u32, 0, 2), // other syscall: allow
        ins(ld, ARG2_LO, 0, 0),
        ins(jeq, 0, 1, 0), // min_complete == 0: fail
        ins(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
        ins(ret, enomem, 0, 0),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: plain prctl; seccomp reads `fprog` and the program it points to during the call.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &raw const fprog,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

#[derive(Debug)]
#[allow(dead_code)] // fields are reported through Debug
enum SubmitFailure {
    /// Correct: the op stayed pending while its SQE sat in the SQ (it is then dropped, i.e.
    /// orphaned, and the ring drop drains it).
    StayedPending,
    /// The bug: the buffer came back while the SQE was still queued; `scribbled` fresh
    /// allocations were written by the kernel when that SQE was submitted later.
    HandedBack { err: String, scribbled: usize },
}

/// Defect 3: io_uring_enter fails (ENOMEM) while an op's SQE is in the SQ. With
/// SubmitPolicy::Eager the op's first poll submits at once; the failure must not complete the
/// op with its buffer, because the SQE stays queued and a later enter submits it.
/// Correct: the op stays Pending. (The filter fails only non-waiting enters, so on the buggy
/// path a later waiting turn submits the stale SQE and the probe sees where the kernel wrote.)
#[cfg(target_arch = "x86_64")]
#[test]
fn submit_error_does_not_hand_back_a_queued_buffer() {
    let out = within(Duration::from_secs(60), || {
        let cfg = SaferRingConfig::default()
            .entries(64)
            .backend(BackendKind::IoUring)
            .submit_policy(SubmitPolicy::Eager)
            .drain_timeout(Duration::from_millis(100));
        let ring = support::ring_with(cfg)?;
        let (r, w) = ring.pipe().unwrap();
        let mut wf = dup_std(&w);
        let handle = ring.handle();
        fail_nonwaiting_io_uring_enter();
        let mut op = ring.read(&r, vec![0u8; SIZE]);
        Some(match poll_once(&mut op) {
            Poll::Pending => SubmitFailure::StayedPending,
            Poll::Ready((res, buf)) => {
                drop(op);
                {
                    let _fresh = FreshOnDrop; // allocates right after the buffer is freed
                    drop(buf);
                }
                let fresh = uaf_fresh();
                wf.write_all(&[0xAB; SIZE]).unwrap();
                // A waiting turn submits what is still queued; a post from another thread
                // ends the wait.
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    let _ = handle.post(1);
                });
                ring.block_on(ring.next_message());
                SubmitFailure::HandedBack {
                    err: format!("{:?}", res.err()),
                    scribbled: scribbled(&fresh),
                }
            }
        })
    });
    match out {
        Ok(None) => {} // SKIP printed
        Ok(Some(SubmitFailure::StayedPending)) => {}
        Ok(Some(bad)) => panic!(
            "a failed io_uring_enter handed back the buffer of an op still queued in the SQ: {bad:?}"
        ),
        Err(e) => panic!("{e}"),
    }
}

/// The fresh allocations `FreshOnDrop` made (for probes that drive the ring themselves).
fn uaf_fresh() -> Vec<Vec<u8>> {
    support::soundness::take_fresh().unwrap_or_else(|| fresh_allocs(8))
}

/// Both rings on io_uring with the native multishot recv, or None (SKIP printed).
fn two_multishot_rings() -> Option<(Ring, Ring)> {
    let a = support::ring(BackendKind::IoUring)?;
    let b = support::ring(BackendKind::IoUring)?;
    let native =
        |r: &Ring| r.uses_native(Feature::MultiShotRecv) && r.uses_native(Feature::BufferRings);
    if !(native(&a) && native(&b)) {
        support::skip("no native multishot recv");
        return None;
    }
    Some((a, b))
}

/// A bounded `recv_enhanced`: Err(panic), Ok(None) for no result in time, else the output.
type RecvOutcome = Result<Option<(std::io::Result<usize>, Vec<u8>)>, String>;

/// `recv_enhanced` on `ring`, bounded; panics are caught.
fn recv_on(ring: &Ring, s: &UnixStream) -> RecvOutcome {
    caught(|| {
        let mut f = Box::pin(ring.recv_enhanced(s, vec![0u8; 64]));
        run_for(ring, &mut f, Duration::from_secs(20))
    })
}

/// Correct outcomes of a recv that should yield `want`: those bytes, or a clear io::Error.
fn check(what: &str, got: RecvOutcome, want: &[u8]) {
    eprintln!(
        "{what}: {:?}",
        got.as_ref().map(|o| o
            .as_ref()
            .map(|(r, b)| (r.as_ref().ok(), String::from_utf8_lossy(b).into_owned())))
    );
    match got {
        Err(p) => panic!("{what}: panicked: {p}"),
        Ok(None) => panic!("{what}: no result within 20 s"),
        Ok(Some((Ok(n), buf))) => assert_eq!(
            &buf[..n],
            want,
            "{what}: got {:?}, expected {:?}",
            String::from_utf8_lossy(&buf[..n]),
            String::from_utf8_lossy(want)
        ),
        Ok(Some((Err(e), _))) => eprintln!("{what}: clear error (acceptable): {e}"),
    }
}

/// Defect 5: a socket's multishot recv armed on ring A is looked up by slot key on ring B,
/// where that key belongs to B's multishot recv on another socket.
/// Correct: B yields this socket's bytes in order, or a clear io::Error; never another
/// connection's bytes, never a panic.
#[test]
fn multishot_recv_on_second_ring_never_yields_foreign_bytes() {
    let Some((a, b)) = two_multishot_rings() else {
        return;
    };
    let (s, ps) = a.unix_pair().unwrap();
    let (s2, ps2) = b.unix_pair().unwrap();
    let (mut ps, mut ps2) = (dup_std(&ps), dup_std(&ps2));
    ps.write_all(b"first").unwrap();
    check("A: recv_enhanced(s)", recv_on(&a, &s), b"first"); // arms the multishot on A
    ps2.write_all(b"OTHER-1").unwrap();
    check("B: recv_enhanced(s2)", recv_on(&b, &s2), b"OTHER-1"); // arms one on B
    ps2.write_all(b"OTHER-2").unwrap();
    ps.write_all(b"second").unwrap();
    check("B: recv_enhanced(s)", recv_on(&b, &s), b"second");
}

/// Defect 5 (variant): ring A, which armed the socket's multishot recv, is dropped; then
/// `recv_enhanced` on ring B. Correct: the bytes, or a clear io::Error; no panic.
#[test]
fn multishot_recv_after_its_ring_dropped_does_not_panic() {
    let Some((a, b)) = two_multishot_rings() else {
        return;
    };
    let (s, ps) = a.unix_pair().unwrap();
    let mut ps = dup_std(&ps);
    ps.write_all(b"first").unwrap();
    check("A: recv_enhanced(s)", recv_on(&a, &s), b"first");
    drop(a);
    ps.write_all(b"second").unwrap();
    check(
        "B after A dropped: recv_enhanced(s)",
        recv_on(&b, &s),
        b"second",
    );
}
