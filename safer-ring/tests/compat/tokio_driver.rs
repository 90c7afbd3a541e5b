//! The ring inside a tokio current-thread runtime, driven through AsyncFd (feature `tokio`).

use std::rc::Rc;
use std::time::Duration;

use safer_ring::{BackendKind, Ring, SaferRingConfig};

use crate::support;

fn run_on_tokio(kind: BackendKind) {
    let Some(ring) = support::ring_with(SaferRingConfig::for_tokio().backend(kind)) else {
        return;
    };
    let ring = Rc::new(ring);
    support::on_local_tokio(async {
        let driver = ring.clone();
        tokio::task::spawn_local(async move { driver.drive_on_tokio().await.unwrap() });
        // Socket round trip with the reader waiting first: needs a real wakeup from the kernel.
        let (a, b) = ring.unix_pair().unwrap();
        let r2 = ring.clone();
        let reader = tokio::task::spawn_local(async move {
            let (n, buf) = r2.recv(&b, Vec::with_capacity(16)).await;
            (n.unwrap(), buf)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (n, _) = ring.send(&a, b"tokio".to_vec()).await;
        assert_eq!(n.unwrap(), 5);
        let (n, buf) = reader.await.unwrap();
        assert_eq!((n, &buf[..]), (5, &b"tokio"[..]));
        // A ring timer and a tokio timer side by side.
        ring.sleep(Duration::from_millis(10)).await.unwrap();
        for _ in 0..100 {
            ring.nop().await.unwrap();
        }
    });
}

#[test]
fn io_uring_on_tokio() {
    run_on_tokio(BackendKind::IoUring);
}

#[test]
fn epoll_on_tokio() {
    run_on_tokio(BackendKind::Epoll);
}

#[test]
fn default_ring_is_refused_with_advice() {
    let Some(ring) = support::ring(BackendKind::IoUring) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if ring
        .info()
        .setup
        .is_some_and(|s| s.coop_taskrun || s.defer_taskrun)
    {
        let e = rt.block_on(ring.drive_on_tokio()).unwrap_err();
        assert!(e.to_string().contains("for_tokio"), "{e}");
    }
    drop(Ring::new(4).unwrap());
}
