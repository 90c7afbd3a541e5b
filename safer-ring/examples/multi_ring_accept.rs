//! One acceptor ring hands connections to N worker rings (one per core) through `RingHandle`s
//! (IORING_OP_MSG_RING where the kernel has it); each worker serves echo on its own thread.
//!
//! `cargo run --release --example multi_ring_accept -- --addr 127.0.0.1:7100 [--workers N] [--max-conns N]`

#[path = "common/args.rs"]
mod args;

use std::rc::Rc;
use std::sync::mpsc;

use safer_ring::{Feature, Message, RingRef, TcpStream};

async fn echo(ring: RingRef, stream: TcpStream) {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let (n, b) = ring.recv(&stream, buf).await;
        if !matches!(n, Ok(n) if n > 0) {
            return;
        }
        let (w, b) = ring.send_all(&stream, b).await;
        if w.is_err() {
            return;
        }
        buf = b;
    }
}

fn flag(rest: &[String], name: &str) -> Option<usize> {
    rest.iter()
        .position(|a| a == name)
        .and_then(|i| rest.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args = args::parse_or_exit("127.0.0.1:7100");
    let workers = flag(&args.rest, "--workers")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let max_conns = flag(&args.rest, "--max-conns");
    let backend = args.backend;

    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..workers)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let ring = args::ring(backend, 256);
                tx.send(ring.handle()).unwrap();
                let active = Rc::new(std::cell::Cell::new(0usize));
                ring.block_on(async {
                    loop {
                        match ring.next_message().await {
                            Message::Fd(fd) => {
                                let (r, a) = (ring.clone(), active.clone());
                                a.set(a.get() + 1);
                                drop(ring.spawn(async move {
                                    echo(r, TcpStream::from_owned_fd(fd)).await;
                                    a.set(a.get() - 1);
                                }));
                            }
                            Message::Data(u64::MAX) => break, // shutdown: finish open connections
                            Message::Data(_) => {}
                        }
                    }
                    while active.get() > 0 {
                        ring.sleep(std::time::Duration::from_millis(5))
                            .await
                            .unwrap();
                    }
                });
                eprintln!("worker {i} done");
            })
        })
        .collect();
    let handles: Vec<_> = rx.iter().take(workers).collect();

    let ring = args::ring(backend, 256);
    let listener = args::listen(&ring, &args.addr, "echo");
    eprintln!(
        "{workers} workers, MSG_RING native: {}, multishot accept native: {}",
        ring.uses_native(Feature::MsgRing),
        ring.uses_native(Feature::MultiShotAccept)
    );
    ring.block_on(async {
        let mut conns = ring.accept_multiple(&listener);
        let mut n = 0usize;
        while max_conns.is_none_or(|m| n < m) {
            match conns.next().await {
                Some(Ok(stream)) => {
                    let fd = stream
                        .into_owned_fd()
                        .expect("no op holds a fresh connection");
                    ring.msg_ring(&handles[n % workers], Message::Fd(fd))
                        .await
                        .unwrap();
                    n += 1;
                }
                Some(Err(e)) => eprintln!("accept: {e}"), // e.g. EMFILE: keep serving
                None => break,
            }
        }
        for h in &handles {
            ring.msg_ring(h, Message::Data(u64::MAX)).await.unwrap();
        }
    });
    // Connections travel as fds: through the workers' queues, or with IORING_MSG_SEND_FD +
    // FIXED_FD_INSTALL when opted in (SAFER_RING_FEATURES=+MsgRingSendFd) and the kernel has both.
    let s = ring.enhancement_stats(Feature::MsgRingSendFd);
    eprintln!(
        "handed off connections: native fd passing {} / through the queue {}",
        s.native, s.fallback
    );
    for t in threads {
        let _ = t.join();
    }
}
