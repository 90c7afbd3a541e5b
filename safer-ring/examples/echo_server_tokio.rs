//! The echo server on a one-thread tokio runtime (epoll), the baseline `echo_server` is
//! measured against (scripts/server-cpu-per-request.sh echo):
//! `cargo run --release --example echo_server_tokio -- --addr 127.0.0.1:7001`

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:7001".to_string();
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            _ => {
                eprintln!("error: bad argument {a:?} (--addr HOST:PORT)");
                std::process::exit(2);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind(&addr).await.unwrap();
        eprintln!("echo (tokio, one thread) on {}", l.local_addr().unwrap());
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
