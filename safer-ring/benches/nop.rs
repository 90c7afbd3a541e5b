//! NOP throughput, safer-ring's safe API vs the raw `io-uring` crate, in alternating rounds.
//! The shapes are in `common/nops.rs` (shared with `peers/benches/nop.rs`, which adds tokio-uring).
//!
//! `cargo bench --bench nop` prints the table; `.../nop-<hash> profile <variant> <rounds>`
//! runs one variant alone (for callgrind: see README "Performance").

mod common;

use common::nops::{batched_round, join_all_round, raw_ring, raw_round, safe_ring, spawned_round};
use common::{Clock, Variant};
use safer_ring::BackendKind;

fn main() {
    let mut raw32 = raw_ring();
    let mut raw8 = raw_ring();
    let uring = safe_ring(BackendKind::IoUring);
    let epoll = safe_ring(BackendKind::Epoll).expect("epoll ring");
    let mut v = vec![Variant::new("raw io-uring, batch 32", || {
        raw_round(&mut raw32, 32)
    })];
    if let Some(r) = &uring {
        v.push(Variant::new("io_uring hand-batched 32", || {
            batched_round(r)
        }));
        v.push(Variant::new("io_uring 32 spawned tasks", || {
            spawned_round(r)
        }));
        v.push(Variant::new("io_uring join_all 32", || {
            join_all_round(r, 32)
        }));
    } else {
        eprintln!("io_uring unavailable: safe io_uring variants skipped");
    }
    v.push(Variant::new("epoll hand-batched 32", || {
        batched_round(&epoll)
    }));
    v.push(Variant::new("epoll 32 spawned tasks", || {
        spawned_round(&epoll)
    }));
    let mut v8 = vec![Variant::new("raw io-uring, batch 8", || {
        raw_round(&mut raw8, 8)
    })];
    if let Some(r) = &uring {
        v8.push(Variant::new("io_uring join_all 8", || join_all_round(r, 8)));
    }
    if let Some((name, n)) = common::profile_args() {
        let in_v8 = v8.iter().any(|x| x.name == name);
        let ok = if in_v8 {
            common::profile(&mut v8, &name, n)
        } else {
            common::profile(&mut v, &name, n)
        };
        std::process::exit(if ok { 0 } else { 2 });
    }
    common::compare(
        "NOP, 64 Ki per round, ratio to raw batch 32",
        Clock::Thread,
        &mut v,
    );
    common::compare("NOP, ratio to raw batch 8", Clock::Thread, &mut v8);
}
