//! Attacks on "`next_message` is cancel-safe: dropping it loses no message" where it is
//! least obviously so: an fd passed natively (MSG_RING into the file table) whose install op
//! is in flight when `next_message` is dropped. The fd must reach the next `next_message`,
//! and no copy of it may stay in the file table. Also a plain message posted after a drop.

use std::time::Duration;

use safer_ring::{BackendKind, Feature, Message, Ring, SaferRingConfig};
use support::soundness::poll_once;

use crate::support;

fn receivers() -> Vec<(&'static str, Ring)> {
    let opt_in = |cfg: SaferRingConfig| {
        let e = safer_ring::ProgressiveEnhancementConfig::default()
            .feature(Feature::MsgRingSendFd, Some(true));
        cfg.backend(BackendKind::IoUring).entries(64).enhancement(e)
    };
    let mut out = Vec::new();
    if let Some(r) = support::ring_with(opt_in(SaferRingConfig::default())) {
        out.push(("io_uring opted in", r));
    }
    if let Some(r) = support::ring_with(opt_in(SaferRingConfig::for_tokio())) {
        out.push(("io_uring-no-defer opted in", r));
    }
    out.push(("epoll", support::ring(BackendKind::Epoll).unwrap()));
    out
}

#[test]
fn an_fd_whose_next_message_was_dropped_mid_install_reaches_the_next_one() {
    let mut failed = Vec::new();
    for (name, ring) in receivers() {
        let handle = ring.handle();
        let mut dropped_mid_install = 0;
        for round in 0..20 {
            let what = format!("{name}, round {round}");
            let (pr, pw) = support::fds::pipe();
            let id = support::fds::identity(&pw);
            let to = handle.clone();
            std::thread::spawn(move || {
                let e = safer_ring::ProgressiveEnhancementConfig::default()
                    .feature(Feature::MsgRingSendFd, Some(true));
                let cfg = SaferRingConfig::default().enhancement(e);
                let sender = Ring::with_config(cfg).unwrap();
                sender
                    .block_on(sender.msg_ring(&to, Message::Fd(pw)))
                    .unwrap();
            })
            .join()
            .unwrap();
            // Land the arrival (a completion on this ring) without taking it.
            for _ in 0..10 {
                ring.poll_completions().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut first = Box::pin(ring.next_message());
            let fd = match poll_once(&mut first) {
                std::task::Poll::Ready(m) => m,
                std::task::Poll::Pending => {
                    dropped_mid_install += 1;
                    drop(first);
                    // The sender was joined: the fd was sent; the bound only ends a lost one.
                    match ring.block_on(ring.timeout(Duration::from_secs(30), ring.next_message()))
                    {
                        Ok(m) => m,
                        Err(_) => {
                            failed.push(format!("{what}: the fd never came after the drop"));
                            continue;
                        }
                    }
                }
            };
            let Message::Fd(fd) = fd else {
                failed.push(format!("{what}: data where an fd was sent"));
                continue;
            };
            if support::fds::identity(&fd) != id {
                failed.push(format!("{what}: another file came"));
            }
            drop(fd);
            let _ = support::soundness::drive(&ring, 3);
            if !support::fds::writers_closed(&pr) {
                failed.push(format!("{what}: a copy of the passed fd stayed somewhere"));
            }
        }
        eprintln!("{name}: dropped mid-install in {dropped_mid_install} of 20 rounds");
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn data_posted_after_a_dropped_next_message_reaches_the_next_one() {
    for (name, ring) in receivers() {
        let handle = ring.handle();
        for i in 0..20u64 {
            let mut first = Box::pin(ring.next_message());
            assert!(poll_once(&mut first).is_pending(), "{name}");
            drop(first);
            handle.post(i).unwrap();
            let what = format!("{name}: message {i}");
            let m = support::drops::must_arrive(&ring, &what, ring.next_message());
            assert!(matches!(m, Message::Data(d) if d == i), "{name}: {m:?}");
        }
    }
}
