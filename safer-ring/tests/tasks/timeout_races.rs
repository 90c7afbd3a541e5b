//! Attack on the documented alternative to dropping a receive: `op.timeout(d)`, whose result
//! and buffer come back. Racing its deadline against arriving data, a thousand times per ring,
//! must lose no byte: a receive that timed out took nothing, one that took bytes hands them back.
//! (Dropping instead, e.g. `ring.timeout(d, recv)`, may lose what arrived before the drop, as
//! documented; that is not checked here.)
//!
//! The race is made by construction, not by the machine's speed: each round the reader arms (and
//! submits) a receive with deadline `d`, then tells a writer thread to send one message, so the data arrives
//! one thread wake-up after the receive was armed. `d` follows a staircase (longer after a
//! timeout, shorter after data) and settles where the deadline and the arrival coincide, on a
//! fast host or a slow emulated guest alike; both outcomes must be seen many times.

use std::io::{ErrorKind, Write};
use std::sync::mpsc;
use std::time::Duration;

use support::drops::rings;
use support::soundness::poll_once;

use crate::support;

/// Rounds per ring, and how often each outcome must have been seen before a ring is done.
const ROUNDS: u64 = 1000;
const MIN_EACH: u32 = 100;
/// The staircase can reach both ends (1 µs: nothing can arrive; 1 s: a wake-up always has) in
/// a few dozen rounds, so a ring that has not seen both outcomes by then never will.
const MAX_ROUNDS: u64 = 20 * ROUNDS;
const D_MIN: Duration = Duration::from_micros(1);
const D_MAX: Duration = Duration::from_secs(1);

#[test]
fn receives_racing_their_timeouts_lose_no_byte() {
    let mut failed = Vec::new();
    for (name, ring) in rings() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let b = safer_ring::UnixStream::from(b);
        let (go, turns) = mpsc::channel::<u64>();
        let writer = std::thread::spawn(move || {
            let mut a = a;
            for i in turns {
                a.write_all(&i.to_le_bytes()).unwrap();
            }
        });
        let mut got = Vec::with_capacity(ROUNDS as usize * 8);
        let (mut timeouts, mut data) = (0u32, 0u32);
        let mut d = Duration::from_micros(50);
        let mut round = 0u64;
        while round < ROUNDS || timeouts < MIN_EACH || data < MIN_EACH {
            assert!(
                round < MAX_ROUNDS,
                "{name}: the race never happened: {timeouts} timeouts, {data} receives with \
                 data in {round} rounds, deadline now {d:?}"
            );
            // Armed (and on io_uring submitted) before the writer is told to send.
            let mut op = ring.recv(&b, vec![0u8; 24]).timeout(d);
            assert!(
                poll_once(&mut op).is_pending(),
                "{name}: data before it was sent"
            );
            ring.poll_completions().unwrap();
            go.send(round).unwrap();
            let (n, buf) = ring.block_on(op);
            match n {
                Ok(0) => panic!("{name}: EOF in round {round}"),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    data += 1;
                    d = (d * 4 / 5).max(D_MIN);
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    timeouts += 1;
                    d = (d * 5 / 4).min(D_MAX);
                }
                Err(e) => panic!("{name}: round {round}: {e}"),
            }
            // The rest of this round's message, by receives with a deadline no machine reaches
            // (10 s): after a timeout, all of it, which the timed-out receive must have left in
            // the socket. A message that never comes was taken by a receive that lost it.
            round += 1;
            while got.len() < round as usize * 8 {
                let recv = ring
                    .recv(&b, vec![0u8; 24])
                    .timeout(Duration::from_secs(10));
                match ring.block_on(recv) {
                    (Ok(n), buf) if n > 0 => got.extend_from_slice(&buf[..n]),
                    (r, _) => {
                        failed.push(format!("{name}: round {}: message lost ({r:?})", round - 1));
                        break;
                    }
                }
            }
            if got.len() != round as usize * 8 {
                break; // lost, or more than was sent: reported below
            }
        }
        drop(go);
        writer.join().unwrap();
        eprintln!("{name}: {round} receives, {timeouts} timed out, deadline settled at {d:?}");
        let want: Vec<u8> = (0..round).flat_map(|i| i.to_le_bytes()).collect();
        if got != want {
            let first_bad = got.iter().zip(&want).position(|(g, w)| g != w);
            failed.push(format!(
                "{name}: {} of {} bytes came, first difference at {first_bad:?}",
                got.len(),
                want.len()
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
