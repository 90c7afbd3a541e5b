//! The example servers, driven by real clients (std sockets) on both backends. Needs the
//! example binaries, which `cargo test` builds next to the tests (skipped where they are not,
//! e.g. in the kernel matrix).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running example, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts example `name` on an ephemeral port with `backend`; `None` (with a SKIP line) when the
/// binary was not built or the backend is not available here.
fn start(name: &str, backend: &str) -> Option<(Server, SocketAddr)> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("examples").join(name);
    if !bin.exists() {
        eprintln!("SKIP: example binary {} not built", bin.display());
        return None;
    }
    let mut child = Command::new(&bin)
        .args(["--addr", "127.0.0.1:0", "--backend", backend])
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the example");
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    // "echo on 127.0.0.1:PORT (io_uring)", or "error: ..." when the backend is unavailable.
    let Some(addr) = line.split(" on ").nth(1).and_then(|r| r.split(' ').next()) else {
        eprintln!("SKIP: {name} --backend {backend}: {}", line.trim());
        return None;
    };
    Some((server, addr.parse().unwrap()))
}

#[test]
fn echo_server_echoes_every_byte() {
    const TOTAL: usize = 10 << 20;
    let data: Vec<u8> = (0..TOTAL).map(|i| (i * 13 % 251) as u8).collect();
    for backend in ["io_uring", "epoll"] {
        let Some((_server, addr)) = start("echo_server", backend) else {
            continue;
        };
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = c.try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
        // Read late, so the server's socket buffers fill and its sends come up short (before
        // send_all, the example dropped the rest of each short send).
        std::thread::sleep(Duration::from_millis(300));
        let mut back = vec![0u8; TOTAL];
        (&c).read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(
            back == data,
            "{backend}: the echo differs from what was sent"
        );
    }
}
