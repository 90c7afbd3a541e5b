//! Minimal HTTP/1.1 keep-alive server answering every request with `Hello, World!`.
//! Pipelined requests are answered in order.
//!
//! `cargo run --release --example http_hello -- --addr 127.0.0.1:8080 --backend auto`

#[path = "common/args.rs"]
mod args;

use std::rc::Rc;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: safer-ring\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// Length of the first complete request in `buf` (headers plus Content-Length body), and
/// whether it asked to close the connection.
fn next_request(buf: &[u8]) -> Option<(usize, bool)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut body = 0;
    let mut close =
        head.starts_with("GET / HTTP/1.0") && !head.to_ascii_lowercase().contains("keep-alive");
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            body = v.parse().ok()?;
        } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    (buf.len() >= end + body).then_some((end + body, close))
}

async fn serve(ring: Rc<safer_ring::Ring>, stream: safer_ring::TcpStream) {
    let mut inbuf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        let (n, c) = ring.recv(&stream, chunk).await;
        chunk = c;
        match n {
            Ok(0) | Err(_) => return,
            Ok(_) => inbuf.extend_from_slice(&chunk),
        }
        let mut used = 0;
        let mut close = false;
        while let Some((len, c)) = next_request(&inbuf[used..]) {
            out.extend_from_slice(RESPONSE);
            used += len;
            if c {
                close = true;
                break;
            }
        }
        inbuf.drain(..used);
        if !out.is_empty() {
            let (w, o) = ring.send(&stream, out).await;
            out = o;
            match w {
                Ok(n) if n == out.len() => out.clear(),
                Ok(n) => {
                    // Short send: push the rest before reading more.
                    out.drain(..n);
                    while !out.is_empty() {
                        let (w, o) = ring.send(&stream, out).await;
                        out = o;
                        match w {
                            Ok(n) => drop(out.drain(..n)),
                            Err(_) => return,
                        }
                    }
                }
                Err(_) => return,
            }
        }
        if close {
            return;
        }
    }
}

fn main() {
    let args = args::parse_or_exit("127.0.0.1:8080");
    let ring = Rc::new(args::ring(args.backend, 512));
    let listener = ring.bind_tcp(&args.addr).unwrap_or_else(|e| {
        eprintln!("error: cannot bind {}: {e}", args.addr);
        std::process::exit(1);
    });
    eprintln!(
        "http on {} ({})",
        listener.local_addr().unwrap(),
        ring.backend()
    );
    ring.block_on(async {
        loop {
            match ring.accept(&listener).await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    ring.spawn(serve(ring.clone(), stream));
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    });
}
