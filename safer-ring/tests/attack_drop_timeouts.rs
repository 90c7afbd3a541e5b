//! Attack on the documented alternative to dropping a receive: `op.timeout(d)`, whose result
//! and buffer come back. Racing its deadline against arriving data, thousands of times, must
//! lose no byte: a receive that timed out took nothing, one that took bytes hands them back.
//! (Dropping instead, e.g. `ring.timeout(d, recv)`, may lose what arrived before the drop, as
//! documented; that is not checked here.)

mod attack_drop_util;
mod common;
mod soundness_util;

use std::io::Write;
use std::time::{Duration, Instant};

use attack_drop_util::rings;

const COUNT: u64 = 3000;

#[test]
fn receives_racing_their_timeouts_lose_no_byte() {
    let mut failed = Vec::new();
    for (name, ring) in rings() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let b = safer_ring::UnixStream::from(b);
        let writer = std::thread::spawn(move || {
            let mut a = a;
            for i in 0..COUNT {
                a.write_all(&i.to_le_bytes()).unwrap();
                if i % 4 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        });
        let mut got = Vec::with_capacity(COUNT as usize * 8);
        let (mut timeouts, mut rounds) = (0u32, 0u32);
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < COUNT as usize * 8 && Instant::now() < deadline {
            rounds += 1;
            // Deadlines from 10 to 160 µs: many fire while bytes arrive.
            let d = Duration::from_micros(10 + u64::from(rounds % 16) * 10);
            let (n, buf) = ring.block_on(ring.recv(&b, vec![0u8; 24]).timeout(d));
            match n {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => timeouts += 1,
                Err(e) => panic!("{name}: {e}"),
            }
        }
        writer.join().unwrap();
        eprintln!("{name}: {rounds} receives, {timeouts} timed out");
        let want: Vec<u8> = (0..COUNT).flat_map(|i| i.to_le_bytes()).collect();
        if got != want {
            let first_bad = got.iter().zip(&want).position(|(g, w)| g != w);
            failed.push(format!(
                "{name}: {} of {} bytes came, first difference at {first_bad:?}",
                got.len(),
                want.len()
            ));
        }
        assert!(timeouts > 0, "{name}: no deadline raced the data");
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
