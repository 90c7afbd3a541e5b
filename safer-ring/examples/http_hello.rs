//! Minimal HTTP/1.1 keep-alive server answering every request with `Hello, World!`.
//! Pipelined requests are answered in order; a head over 8 KiB gets 431 and a malformed one
//! 400 (then the connection closes); idle connections close after `--idle-ms` (10 s).
//! `--threads N` runs N rings on N threads sharing the port (SO_REUSEPORT). SIGINT/SIGTERM stop
//! accepting, let open connections finish for up to 5 s, then exit.
//!
//! `cargo run --release --example http_hello -- --addr 127.0.0.1:8080 --backend auto`

#[path = "common/args.rs"]
mod args;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

#[path = "common/http.rs"]
mod http;

async fn serve(ring: safer_ring::RingRef, stream: safer_ring::TcpStream, idle: Duration) {
    // Between requests a connection holds no buffer: `recv_provided` lends the ring's provided
    // buffer (a multishot recv armed once per connection, 6.0+; readiness then a buffer of its
    // own elsewhere), `Conn` keeps only a split request, and each answer's buffer is freed
    // once sent (scripts/idle-connections.sh measures what an idle connection costs).
    let mut conn = http::Conn::default();
    // The idle timer is armed once and re-armed only when it fires early: a timeout per
    // request (`ring.timeout`) would cancel a kernel timer on every request.
    let mut last = Instant::now();
    let mut timer = ring.sleep_until(last + idle);
    loop {
        // In a block of its own: the receive's state is gone before the send's begins.
        let got = {
            let mut recv = std::pin::pin!(ring.recv_provided(&stream));
            loop {
                let got = std::future::poll_fn(|cx| {
                    if let Poll::Ready(v) = recv.as_mut().poll(cx) {
                        return Poll::Ready(Some(v));
                    }
                    Pin::new(&mut timer).poll(cx).map(|_| None)
                })
                .await;
                match got {
                    Some(v) => break v,
                    // A connection idle for `idle` is closed (dropping the recv is safe).
                    None if last.elapsed() >= idle => return,
                    None => timer = ring.sleep_until(last + idle),
                }
            }
        };
        last = Instant::now();
        let mut out = Vec::new();
        let close = match got {
            Ok(bytes) if !bytes.is_empty() => conn.feed(&bytes, &mut out),
            _ => return, // end of stream, or an error
        };
        if !out.is_empty() && ring.send_all(&stream, out).await.0.is_err() {
            return;
        }
        if close {
            // Boxed: a closing connection's state (~1 KB) is not part of every idle one's.
            return Box::pin(linger(&ring, &stream)).await;
        }
    }
}

/// Closes gracefully: stop sending, then read and discard what the client still sends (up to
/// a second), so closing does not reset the connection (RST) before it read our answer.
async fn linger(ring: &safer_ring::RingRef, stream: &safer_ring::TcpStream) {
    let _ = ring.shutdown(stream, std::net::Shutdown::Write).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match ring.timeout(left, ring.recv_provided(stream)).await {
            Ok(Ok(b)) if !b.is_empty() => {}
            _ => return,
        }
    }
}

/// One ring's server: accept until `stop`, then let open connections finish for up to
/// `GRACE` before the ring's drop cancels what is left.
async fn serve_all(
    ring: safer_ring::RingRef,
    listener: safer_ring::TcpListener,
    stop: safer_ring::Shutdown,
    idle: Duration,
) {
    let active = Rc::new(Cell::new(0usize));
    let (r, a) = (ring.clone(), active.clone());
    let acceptor = ring.spawn(async move {
        loop {
            match r.accept(&listener).await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (r2, a2) = (r.clone(), a.clone());
                    a2.set(a2.get() + 1);
                    drop(r.spawn(async move {
                        serve(r2, stream, idle).await;
                        a2.set(a2.get() - 1);
                    }));
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    });
    stop.wait().await;
    acceptor.abort(); // stop accepting: the listener closes with the task
    let _ = ring
        .timeout(GRACE, async {
            while active.get() > 0 {
                let _ = ring.sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
}

const GRACE: Duration = Duration::from_secs(5);

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts) and returns a
/// signalfd that reads them.
fn termination_signals() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: sigset_t is plain old data, filled by sigemptyset/sigaddset on a live local;
    // pthread_sigmask and signalfd read it; a non-negative signalfd is a fresh fd we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

fn main() {
    let args = args::parse_or_exit("127.0.0.1:8080");
    // `--idle-ms N`: close connections idle that long (default 10 s); `--threads N`: rings on
    // N threads sharing the port through SO_REUSEPORT (default 1).
    let (mut idle, mut threads) = (Duration::from_secs(10), 1);
    let mut rest = args.rest.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--idle-ms", Some(ms)) => idle = Duration::from_millis(ms),
            ("--threads", Some(n)) if n > 0 => threads = n as usize,
            _ => args::usage_error(&format!(
                "bad argument {flag:?} (--idle-ms MS, --threads N)"
            )),
        }
    }
    let signals = termination_signals().unwrap_or_else(|e| {
        eprintln!("error: signalfd: {e}");
        std::process::exit(1);
    });
    let addr = args.addr.parse().unwrap_or_else(|e| {
        args::usage_error(&format!("--addr {}: {e}", args.addr));
    });
    let running = safer_ring::PerCore::new(threads)
        .config(args::config(args.backend, 512))
        .serve(addr, move |ring, listener, stop| {
            serve_all(ring, listener, stop, idle)
        })
        .unwrap_or_else(|e| {
            eprintln!("error: cannot serve on {addr}: {e}");
            std::process::exit(1);
        });
    eprintln!(
        "http on {} ({}, {threads} thread(s))",
        running.local_addr(),
        args.backend
    );
    // SIGINT or SIGTERM: stop accepting, let open connections finish (up to GRACE), exit.
    let mut info = [0u8; 128]; // struct signalfd_siginfo
    let _ = std::io::Read::read(&mut &signals, &mut info);
    eprintln!("http: shutting down");
    running.shutdown();
    if let Err(e) = running.join() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
