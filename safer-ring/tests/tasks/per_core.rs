//! `PerCore`: N rings on N threads serving one port through SO_REUSEPORT listeners, stopped
//! together by one `Shutdown` (both backends).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use safer_ring::{BackendKind, PerCore, SaferRingConfig, Shutdown};

use crate::support;

#[test]
fn two_rings_share_a_port_and_stop_together() {
    for kind in [BackendKind::IoUring, BackendKind::Epoll] {
        if support::ring(kind).is_none() {
            continue;
        }
        let served: Arc<Mutex<HashMap<std::thread::ThreadId, usize>>> = Arc::default();
        let s2 = served.clone();
        let running = PerCore::new(2)
            .pin_threads(true)
            .config(SaferRingConfig::default().backend(kind))
            .serve(
                "127.0.0.1:0".parse().unwrap(),
                move |ring, listener, stop| {
                    let served = s2.clone();
                    async move {
                        let r = ring.clone();
                        let acceptor = ring.spawn(async move {
                            while let Ok((conn, _)) = r.accept(&listener).await {
                                *served
                                    .lock()
                                    .unwrap()
                                    .entry(std::thread::current().id())
                                    .or_default() += 1;
                                let r2 = r.clone();
                                drop(r.spawn(async move {
                                    let (n, b) = r2.recv(&conn, Vec::with_capacity(16)).await;
                                    if n.is_ok() {
                                        let _ = r2.send_all(&conn, b).await;
                                    }
                                }));
                            }
                        });
                        stop.wait().await;
                        acceptor.abort();
                    }
                },
            )
            .unwrap();
        let addr = running.local_addr();
        for i in 0..40 {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let msg = format!("hi {i}");
            c.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0u8; msg.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
        let t = Instant::now();
        running.shutdown();
        running.join().unwrap();
        // A hang, not speed: the rings stop when woken, so only a lost wake-up lasts this long.
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{kind}: shutdown took {:?}",
            t.elapsed()
        );
        let served = served.lock().unwrap();
        assert_eq!(served.values().sum::<usize>(), 40);
        assert_eq!(
            served.len(),
            2,
            "{kind}: connections spread over both rings: {served:?}"
        );
    }
}

#[test]
fn shutdown_wakes_every_waiter_once_triggered() {
    let s = Shutdown::new();
    let ring = support::ring(BackendKind::Epoll).unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            ring.spawn(async move { s.wait().await })
        })
        .collect();
    let s2 = s.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        s2.trigger();
    });
    ring.block_on(async {
        for w in waiters {
            w.await.unwrap();
        }
    });
    t.join().unwrap();
    assert!(s.is_triggered());
    ring.block_on(s.wait()); // already triggered: at once
}
