//! Hello world over hyper 1.x (HTTP/1.1, keep-alive) on one ring: each connection is
//! `ring.compat(stream)` served by hyper in a task of the ring, with a `RingTimer` so that
//! hyper's `header_read_timeout` applies (a client that does not finish its head in time is
//! cut off). Connection errors are printed. The backend: `--backend`, else
//! `SAFER_RING_BACKEND`, else io_uring where it works.
//!
//! `cargo run --release --features hyper --example hyper_server -- --addr 127.0.0.1:8080
//! [--backend epoll] [--header-timeout-ms 5000]`

#[path = "common/args.rs"]
mod args;

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use safer_ring::hyper::RingTimer;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("Server", "safer-ring")
        .header("Content-Type", "text/plain")
        .body(Full::new(Bytes::from_static(b"Hello, World!")))
        .unwrap_or_default())
}

fn main() {
    let args = args::parse_or_exit("127.0.0.1:8080");
    let mut header_timeout = Duration::from_secs(5);
    let mut rest = args.rest.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--header-timeout-ms", Some(ms)) if ms > 0 => {
                header_timeout = Duration::from_millis(ms)
            }
            _ => args::usage_error(&format!(
                "bad argument {flag:?} (--header-timeout-ms MS, more than 0)"
            )),
        }
    }
    let ring = args::ring(args.backend, 512);
    let listener = args::listen(&ring, &args.addr, "hyper http");
    let timer = RingTimer::new(&ring);
    ring.block_on(async {
        loop {
            let stream = match ring.accept(&listener).await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = http1::Builder::new()
                .timer(timer.clone())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(ring.compat(stream), service_fn(hello));
            drop(ring.spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("connection: {e}");
                }
            }));
        }
    })
}
