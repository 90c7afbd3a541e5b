//! Third adversarial review (findings failed on commit 21986f2, fixed since): drive_on_tokio across the owner's teardown.

use std::time::Duration;

use safer_ring::{BackendKind, SaferRingConfig};
use support::soundness::*;

use crate::support;

/// FINDING: `drive_on_tokio` documents `BrokenPipe` once the owning Ring is dropped, but a
/// drive future that is parked (waiting for the ring fd) when the Ring is dropped with nothing
/// in flight is never woken: it hangs forever. `Driver::close` does not wake the submit waker
/// (only `cancel` does, so only rings with ops in flight wake it), and the registered fd is a
/// dup that keeps the ring alive, so it never turns readable either.
#[test]
fn drive_on_tokio_notices_ring_drop_when_idle() {
    let mut all = Vec::new();
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring_with(SaferRingConfig::for_tokio().backend(kind)) else {
                return Ok(());
            };
            support::on_local_tokio(async move {
                let r = ring.clone();
                let drv = tokio::task::spawn_local(async move { r.drive_on_tokio().await });
                ring.nop().await.unwrap(); // the drive task runs and parks
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(ring);
                match tokio::time::timeout(Duration::from_secs(20), drv).await {
                    Ok(Ok(Err(e))) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    Ok(other) => Err(format!("unexpected: {other:?}")),
                    Err(_) => {
                        Err("drive_on_tokio still parked 20 s after its ring was dropped".into())
                    }
                }
            })
        });
        all.push(format!("{kind:?}: {r:?}"));
    }
    assert!(all.iter().all(|x| x.ends_with("Ok(Ok(()))")), "{all:?}");
}

/// HELD UP: with an op in flight when the Ring is dropped, the drive task is woken and ends
/// with BrokenPipe; the op's future, polled afterwards under tokio, completes (ECANCELED) and
/// returns its buffer.
#[test]
fn drive_on_tokio_with_op_in_flight_across_drop() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        let r = within(Duration::from_secs(30), move || {
            let Some(ring) = support::ring_with(SaferRingConfig::for_tokio().backend(kind)) else {
                return Ok(());
            };
            support::on_local_tokio(async move {
                let r = ring.clone();
                let drv = tokio::task::spawn_local(async move { r.drive_on_tokio().await });
                let rr = ring.clone();
                let (rx, _tx) = rr.pipe().unwrap();
                let reader = tokio::task::spawn_local(async move {
                    let (n, buf) = rr.read(&rx, Vec::with_capacity(8)).await;
                    (n.map_err(|e| e.to_string()), buf.capacity())
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(ring);
                let rd = tokio::time::timeout(Duration::from_secs(20), reader)
                    .await
                    .map_err(|_| "reader hung".to_string())?
                    .unwrap();
                let dv = tokio::time::timeout(Duration::from_secs(20), drv)
                    .await
                    .map_err(|_| "driver hung".to_string())?
                    .unwrap();
                if dv.is_ok() || rd.0.is_ok() {
                    return Err(format!("{dv:?} {rd:?}"));
                }
                Ok(())
            })
        });
        assert_eq!(r, Ok(Ok(())), "{kind:?}");
    }
}
