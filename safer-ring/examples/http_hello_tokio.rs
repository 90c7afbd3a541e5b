//! The same hello-world server on a one-thread tokio runtime (epoll), as the baseline that
//! `http_hello` is measured against: `cargo run --release --example http_hello_tokio -- --addr 127.0.0.1:8081`

#[path = "common/http.rs"]
mod http;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve(mut s: tokio::net::TcpStream) {
    let _ = s.set_nodelay(true);
    // The same buffer sizes as http_hello's.
    let (mut conn, mut chunk, mut out) = (
        http::Conn::default(),
        vec![0u8; 2048],
        Vec::with_capacity(512),
    );
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let close = conn.feed(&chunk[..n], &mut out);
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
        if close {
            return;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8081".to_string();
    while let Some(a) = args.next() {
        if a == "--addr" {
            addr = args.next().expect("--addr needs HOST:PORT");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind(&addr).await.unwrap();
        eprintln!("http (tokio, one thread) on {}", l.local_addr().unwrap());
        loop {
            if let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s));
            }
        }
    });
}
