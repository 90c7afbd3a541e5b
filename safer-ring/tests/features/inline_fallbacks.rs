//! Ops that run as syscalls inline on io_uring when their opcode is off (forced with
//! `ProgressiveEnhancementConfig::feature(f, Some(false))`) must give exactly what the native
//! opcode and the epoll backend give: same values, same errors, for good and bad input.

use std::os::fd::{AsRawFd, OwnedFd};

use safer_ring::{
    BackendKind, Feature, File, OpenOptions, ProgressiveEnhancementConfig, Ring, SaferRingConfig,
};
use support::fds::outcome;

use crate::support;

const FEATURES: [Feature; 6] = [
    Feature::Fallocate,
    Feature::Ftruncate,
    Feature::Fadvise,
    Feature::SyncFileRange,
    Feature::SocketOp,
    Feature::BindListen,
];

fn all_off() -> SaferRingConfig {
    let e = FEATURES
        .iter()
        .fold(ProgressiveEnhancementConfig::default(), |e, f| {
            e.feature(*f, Some(false))
        });
    SaferRingConfig::default()
        .backend(BackendKind::IoUring)
        .enhancement(e)
}

fn cloexec(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFD takes no pointers.
    let f = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    f >= 0 && f & libc::FD_CLOEXEC != 0
}

fn outcomes(ring: &Ring, tag: &str) -> Vec<String> {
    let path = support::TempPath::new(tag);
    let ro_path = support::TempPath::new(tag);
    std::fs::write(&ro_path.0, b"read only").unwrap();
    let sock_dir = support::TempPath::new(tag);
    std::fs::create_dir(&sock_dir.0).unwrap();
    let mut out = Vec::new();
    let rw = OpenOptions::new().read(true).write(true).create(true);
    ring.block_on(async {
        let f = ring.open(&path.0, &rw).await.unwrap();
        let ro = ring
            .open(&ro_path.0, &OpenOptions::new().read(true))
            .await
            .unwrap();
        let (pr, _pw) = std::io::pipe().unwrap();
        let pipe = File::from_owned_fd(OwnedFd::from(pr));
        let size = || std::fs::metadata(&path.0).map(|m| m.len()).ok();
        let mut push = |what: &str, r: std::io::Result<()>| {
            out.push(format!("{what}: {}", outcome(&r)));
        };

        push("fallocate 4096", ring.fallocate(&f, 0, 0, 4096).await);
        push(&format!("  size {:?}", size()), Ok(()));
        push(
            "fallocate keep size",
            ring.fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, 0, 1 << 20)
                .await,
        );
        push(&format!("  size {:?}", size()), Ok(()));
        push("fallocate len 0", ring.fallocate(&f, 0, 0, 0).await);
        push(
            "fallocate bad mode",
            ring.fallocate(&f, 0x7f00, 0, 10).await,
        );
        push("fallocate read-only", ring.fallocate(&ro, 0, 0, 10).await);
        push("fallocate pipe", ring.fallocate(&pipe, 0, 0, 10).await);
        push(
            "fallocate past i64",
            ring.fallocate(&f, 0, i64::MAX as u64, 1).await,
        );
        push(
            "fallocate overflow",
            ring.fallocate(&f, 0, u64::MAX, 2).await,
        );

        push("set_len 100", ring.set_len(&f, 100).await);
        push(&format!("  size {:?}", size()), Ok(()));
        push("set_len 0", ring.set_len(&f, 0).await);
        push(&format!("  size {:?}", size()), Ok(()));
        push("set_len read-only", ring.set_len(&ro, 1).await);
        push("set_len pipe", ring.set_len(&pipe, 1).await);
        push("set_len 2^62", ring.set_len(&f, 1 << 62).await);
        push(
            "set_len past i64",
            ring.set_len(&f, i64::MAX as u64 + 1).await,
        );

        push(
            "fadvise dontneed",
            ring.fadvise(&f, 0, 0, libc::POSIX_FADV_DONTNEED).await,
        );
        push("fadvise bad advice", ring.fadvise(&f, 0, 0, 99).await);
        push(
            "fadvise pipe",
            ring.fadvise(&pipe, 0, 0, libc::POSIX_FADV_NORMAL).await,
        );
        push(
            "fadvise past i64",
            ring.fadvise(&f, i64::MAX as u64, 1, 0).await,
        );

        let w = libc::SYNC_FILE_RANGE_WRITE;
        push("sync_file_range", ring.sync_file_range(&f, 0, 0, w).await);
        push(
            "sync_file_range bad flags",
            ring.sync_file_range(&f, 0, 0, 0xff).await,
        );
        push(
            "sync_file_range pipe",
            ring.sync_file_range(&pipe, 0, 0, w).await,
        );
        push(
            "sync_file_range read-only",
            ring.sync_file_range(&ro, 0, 0, w).await,
        );

        let s = ring.socket(libc::AF_INET, libc::SOCK_STREAM, 0).await;
        let s_ok = s.as_ref().map(cloexec);
        push(
            &format!("socket inet stream (cloexec {s_ok:?})"),
            s.map(drop),
        );
        let s = ring
            .socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK, 0)
            .await;
        push("socket unix dgram nonblock", s.map(drop));
        push(
            "socket bad domain",
            ring.socket(9999, libc::SOCK_STREAM, 0).await.map(drop),
        );
        push(
            "socket bad type",
            ring.socket(libc::AF_INET, 0xf, 0).await.map(drop),
        );
        push(
            "socket bad flag",
            ring.socket(libc::AF_INET, libc::SOCK_STREAM | 0x100000, 0)
                .await
                .map(drop),
        );
        push(
            "socket bad protocol",
            ring.socket(libc::AF_INET, libc::SOCK_STREAM, 17)
                .await
                .map(drop),
        );

        let l = ring
            .listen_tcp("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let taken = l.local_addr().unwrap();
        push(
            "listen_tcp on a taken port",
            ring.listen_tcp(taken).await.map(drop),
        );
        push(
            "listen_tcp on a foreign address",
            ring.listen_tcp("192.0.2.1:0".parse().unwrap())
                .await
                .map(drop),
        );
        let sp = sock_dir.0.join("s");
        let u = ring.listen_unix(&sp).await;
        push(
            "listen_unix",
            u.as_ref()
                .map(drop)
                .map_err(|e| std::io::Error::new(e.kind(), e.to_string())),
        );
        push(
            "listen_unix existing",
            ring.listen_unix(&sp).await.map(drop),
        );
        push(
            "listen_unix missing dir",
            ring.listen_unix(sock_dir.0.join("no/s")).await.map(drop),
        );
        push(
            "listen_unix long path",
            ring.listen_unix("/tmp/".to_string() + &"x".repeat(120))
                .await
                .map(drop),
        );
        push(
            "listen_unix NUL",
            ring.listen_unix("/tmp/a\0b").await.map(drop),
        );
        drop(u);
        let _ = std::fs::remove_file(&sp);
    });
    out
}

#[test]
fn syscall_fallback_matches_native_and_epoll() {
    let epoll = outcomes(&support::ring(BackendKind::Epoll).unwrap(), "attack-fb-e");
    println!("epoll: {epoll:#?}");
    let Some(uring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let native = outcomes(&uring, "attack-fb-n");
    let off = support::ring_with(all_off()).unwrap();
    for f in FEATURES {
        assert!(!off.uses_native(f), "{f:?} is off");
    }
    let fallback = outcomes(&off, "attack-fb-o");
    assert_eq!(
        fallback, epoll,
        "io_uring running the syscalls inline and epoll differ"
    );
    assert_eq!(native, epoll, "native opcodes and epoll differ");
}

// recvmsg/sendmsg that would block, on io_uring natively, with SendRecvMsg off and on epoll:
// they wait for the peer. Note: SendRecvMsg is not in `SYSCALL_FALLBACK`
// (backend/opcodes.rs), so turning it off still pushes the opcode; only a kernel without
// IORING_OP_RECVMSG (before 5.3, io_uring forced) runs it inline, where `run_fallback` turns
// MSG_DONTWAIT's EAGAIN into an error instead of waiting. This kernel cannot show that case.
#[test]
fn inline_msg_ops_wait_like_native_ones() {
    let mut all = Vec::new();
    let cfgs = [
        (
            "native",
            SaferRingConfig::default().backend(BackendKind::IoUring),
        ),
        (
            "off",
            support::uring_wishing(Feature::SendRecvMsg, Some(false)),
        ),
        (
            "epoll",
            SaferRingConfig::default().backend(BackendKind::Epoll),
        ),
    ];
    for (name, cfg) in cfgs {
        let r = support::soundness::within(std::time::Duration::from_secs(60), move || {
            let Some(ring) = support::ring_with(cfg) else {
                return "skipped".to_string();
            };
            let (a, b) = ring.unix_datagram_pair().unwrap();
            let r = ring.clone();
            ring.block_on(async {
                let sender = ring.spawn(async move {
                    let _ = r.sleep(std::time::Duration::from_millis(30)).await;
                    r.send_msg(&a, b"late".to_vec(), safer_ring::ops::MsgOut::new())
                        .await
                        .0
                        .map(drop)
                });
                let (m, buf) = ring.recv_msg(&b, Vec::with_capacity(8), 0).await;
                let s = sender.await.unwrap();
                format!(
                    "recv {} {buf:?}, send {}",
                    outcome(&m.map(|m| m.len)),
                    outcome(&s)
                )
            })
        });
        all.push(format!("{name}: {r:?}"));
    }
    println!("{all:#?}");
    for s in &all {
        let ok = s.contains("recv Ok(4) [108, 97, 116, 101], send Ok(())") || s.contains("skipped");
        assert!(ok, "{all:#?}");
    }
}
