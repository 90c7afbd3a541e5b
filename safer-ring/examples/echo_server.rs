//! TCP echo server: `cargo run --release --example echo_server -- --addr 127.0.0.1:7000 --backend auto`

#[path = "common/args.rs"]
mod args;

fn main() {
    let args = args::parse_or_exit("127.0.0.1:7000");
    let ring = args::ring(args.backend, 256);
    let listener = args::listen(&ring, &args.addr, "echo");
    ring.block_on(async {
        loop {
            let (stream, _peer) = match ring.accept(&listener).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let r = ring.clone(); // a RingRef: tasks do not keep the ring alive
            drop(ring.spawn(async move {
                let mut buf = Vec::with_capacity(16 * 1024);
                loop {
                    let (n, b) = r.recv(&stream, buf).await;
                    match n {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    // Everything that was read, however many sends it takes.
                    let (w, b) = r.send_all(&stream, b).await;
                    if w.is_err() {
                        break;
                    }
                    buf = b;
                }
            }));
        }
    });
}
