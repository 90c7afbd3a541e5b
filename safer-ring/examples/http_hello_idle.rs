//! Resident memory per idle keep-alive connection of an HTTP server (issue 13): opens `--conns`
//! (10 000) loopback connections to `--addr`, sends one request on each and reads its answer
//! (so the server holds a served, idle keep-alive connection), then reports the growth of the
//! server's VmRSS (`--pid`) per connection. Raises its own fd limit to fit.
//! scripts/idle-connections.sh runs it against http_hello and the tokio server.

use std::io::{Read, Write};
use std::net::TcpStream;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| fail(&format!("cannot read /proc/{pid}/status: {e}")));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| fail("no VmRSS line"))
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

/// Raises the soft fd limit to the hard one; fails if that is below `need`.
fn raise_nofile(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a valid rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            fail("getrlimit(RLIMIT_NOFILE) failed");
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            fail("setrlimit(RLIMIT_NOFILE) failed");
        }
    }
    if lim.rlim_cur < need {
        fail(&format!(
            "fd hard limit {} is below the {need} needed; raise it (ulimit -Hn)",
            lim.rlim_cur
        ));
    }
}

fn main() {
    let (mut addr, mut pid, mut conns) = (String::from("127.0.0.1:8080"), None, 10_000u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        match (a.as_str(), v) {
            ("--addr", Some(v)) => addr = v,
            ("--pid", Some(v)) => {
                pid = Some(
                    v.parse()
                        .unwrap_or_else(|_| fail(&format!("--pid {v:?}: not a pid"))),
                )
            }
            ("--conns", Some(v)) => {
                conns = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| fail(&format!("--conns {v:?}: expected a count > 0")))
            }
            _ => fail(&format!(
                "bad argument {a:?} (--addr HOST:PORT --pid SERVER_PID [--conns N])"
            )),
        }
    }
    let pid = pid.unwrap_or_else(|| fail("--pid SERVER_PID is required"));
    raise_nofile(conns + 64);
    let before = rss_kib(pid);
    let req = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut held = Vec::with_capacity(conns as usize);
    let mut buf = [0u8; 1024];
    for i in 0..conns {
        let mut s = TcpStream::connect(&addr)
            .unwrap_or_else(|e| fail(&format!("connection {i} to {addr}: {e}")));
        s.write_all(req.as_bytes())
            .unwrap_or_else(|e| fail(&format!("send on connection {i}: {e}")));
        // The answer ends with the body "Hello, World!".
        let mut got = Vec::new();
        while !got.ends_with(b"Hello, World!") {
            match s.read(&mut buf) {
                Ok(0) => fail(&format!("connection {i} closed before the answer")),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => fail(&format!("read on connection {i}: {e}")),
            }
        }
        held.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = rss_kib(pid);
    println!(
        "connections {conns} rss_before_kib {before} rss_after_kib {after} bytes_per_conn {}",
        (after.saturating_sub(before)) * 1024 / conns
    );
}
