//! Create and drop 1 000 rings whose tasks hold them (`RingRef`) and have operations in
//! flight: the process fd count returns to its start value. Counting the process's fds needs no
//! other test running beside it: serialized with the other tests of this binary.

use std::rc::Rc;
use std::time::Duration;

use crate::support;

#[test]
fn a_thousand_rings_with_busy_tasks_leak_no_fd() {
    let _serial = support::serial();
    for kind in [
        safer_ring::BackendKind::IoUring,
        safer_ring::BackendKind::Epoll,
    ] {
        let Some(probe) = support::ring(kind) else {
            continue;
        };
        drop(probe);
        let before = support::fd_count();
        for _ in 0..1000 {
            let ring = support::ring(kind).unwrap();
            let (r, w) = ring.pipe().unwrap();
            let (rr, w) = (ring.clone(), Rc::new(w));
            let w2 = w.clone();
            drop(ring.spawn(async move {
                let _w = w2;
                let _ = rr.read(&r, Vec::with_capacity(64)).await; // never completes
            }));
            let rr = ring.clone();
            drop(ring.spawn(async move {
                rr.sleep(Duration::from_secs(3600)).await.unwrap();
            }));
            ring.block_on(ring.nop()).unwrap();
            assert_eq!(ring.in_flight(), 2);
            drop(w);
        }
        assert_eq!(
            support::fd_count(),
            before,
            "{kind}: fds outlived their rings"
        );
    }
}
