//! accept_multiple under fd exhaustion: EMFILE is reported, and the stream keeps serving once
//! fds are available again. It lowers this process's RLIMIT_NOFILE: serialized with the other
//! tests of this binary.

use std::time::Duration;

use safer_ring::{BackendKind, Feature, SaferRingConfig};

use crate::support;

fn set_nofile(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: 1 << 20,
    };
    // SAFETY: `lim` is a live rlimit the kernel only reads.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if r != 0 {
        // The hard limit may be lower than 1 << 20: keep it.
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the live local.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
        let lim = libc::rlimit {
            rlim_cur: n.min(cur.rlim_max),
            rlim_max: cur.rlim_max,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

fn run(cfg: SaferRingConfig) {
    let Some(ring) = support::ring_with(cfg) else {
        return;
    };
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let base = support::fd_count() as u64;
    ring.block_on(async {
        let mut stream = ring.accept_multiple(&listener);
        // Room for the clients' sockets but not for the accepted ones.
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        // The limit bounds fd numbers: cap it at the highest open fd, then fill the holes.
        let max_fd = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap();
        set_nofile(max_fd + 1);
        let mut fillers = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            fillers.push(f);
        }
        let err = stream.next().await.unwrap().unwrap_err();
        drop(fillers);
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        set_nofile(base + 64);
        // Same stream, still serving: the pending connections are accepted now.
        for _ in 0..clients.len() {
            let s = stream.next().await.unwrap().unwrap();
            drop(s);
        }
        ring.sleep(Duration::from_millis(1)).await.unwrap();
    });
}

#[test]
fn emfile_is_reported_and_the_stream_keeps_serving() {
    let _serial = support::serial();
    run(SaferRingConfig::default().backend(BackendKind::IoUring));
    run(support::uring_wishing(
        Feature::MultiShotAccept,
        Some(false),
    ));
    run(SaferRingConfig::default().backend(BackendKind::Epoll));
}
