//! Load client for the echo servers: `--conns` connections (50), each sending `--size` bytes
//! (512) and reading them back, one message in flight per connection, for `--secs` seconds (4).
//! Prints `requests N`. Runs on safer-ring itself (one thread), whichever server it loads.
//! `cargo run --release --example echo_server_client -- --addr 127.0.0.1:7000`

#[path = "common/args.rs"]
mod args;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn main() {
    let a = args::parse_or_exit("127.0.0.1:7000");
    let (mut conns, mut size, mut secs) = (50usize, 512usize, 4u64);
    let mut rest = a.rest.iter();
    while let Some(flag) = rest.next() {
        let v = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), v) {
            ("--conns", Some(n)) if n > 0 => conns = n as usize,
            ("--size", Some(n)) if n > 0 => size = n as usize,
            ("--secs", Some(n)) if n > 0 => secs = n,
            _ => args::usage_error(&format!(
                "bad argument {flag:?} (--conns N, --size BYTES, --secs S; all > 0)"
            )),
        }
    }
    let ring = args::ring(a.backend, 256);
    let addr: std::net::SocketAddr = a
        .addr
        .parse()
        .unwrap_or_else(|e| args::usage_error(&format!("--addr {:?}: {e}", a.addr)));
    let done = Rc::new(Cell::new(0u64));
    let end = Instant::now() + Duration::from_secs(secs);
    ring.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let s = ring.connect_tcp(addr).await.unwrap_or_else(|e| {
                eprintln!("error: connect {addr}: {e}");
                std::process::exit(1);
            });
            let (r, done) = (ring.clone(), done.clone());
            tasks.push(ring.spawn(async move {
                let (mut out, mut buf) = (vec![7u8; size], Vec::with_capacity(size));
                while Instant::now() < end {
                    let (w, o) = r.send_all(&s, out).await;
                    out = o;
                    w.expect("send");
                    let mut got = 0;
                    while got < size {
                        buf.clear();
                        let (n, b) = r.recv(&s, buf).await;
                        buf = b;
                        match n.expect("recv") {
                            0 => panic!("the server closed the connection"),
                            n => got += n,
                        }
                    }
                    done.set(done.get() + 1);
                }
            }));
        }
        for t in tasks {
            t.await.expect("client task");
        }
    });
    println!("requests {}", done.get());
}
