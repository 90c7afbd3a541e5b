//! The example servers, driven by real clients (std sockets) on both backends. Needs the
//! example binaries, which `cargo test` builds next to the tests (skipped where they are not,
//! e.g. in the kernel matrix).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[macro_use]
#[path = "support/mod.rs"]
mod support;

/// Whether the example binary exists. `cargo test` builds the examples next to the tests, so
/// outside the kernel matrix (which ships test binaries only) a missing one is a failure, not a
/// skip: these tests must not pass without running.
fn example_built(bin: &std::path::Path) -> bool {
    if bin.exists() {
        return true;
    }
    assert!(
        std::env::var_os("SAFER_RING_IN_MATRIX").is_some(),
        "example binary {} not built (run the tests with cargo test, which builds it)",
        bin.display()
    );
    support::skip(format_args!(
        "example binary {} not in the kernel matrix",
        bin.display()
    ));
    false
}

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
fn start(name: &str, backend: &str, extra: &[&str]) -> Option<(Server, SocketAddr)> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("examples").join(name);
    if !example_built(&bin) {
        return None;
    }
    let mut child = Command::new(&bin)
        .args(["--addr", "127.0.0.1:0", "--backend", backend])
        .args(extra)
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
        support::skip(format_args!("{name} --backend {backend}: {}", line.trim()));
        return None;
    };
    Some((server, addr.parse().unwrap()))
}

#[test]
fn echo_server_echoes_every_byte() {
    const TOTAL: usize = 10 << 20;
    let data: Vec<u8> = (0..TOTAL).map(|i| (i * 13 % 251) as u8).collect();
    for backend in ["io_uring", "epoll"] {
        let Some((_server, addr)) = start("echo_server", backend, &[]) else {
            continue;
        };
        let c = TcpStream::connect(addr).unwrap();
        // A hang bound: 10 MiB through a debug build on an emulated CPU takes a while.
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
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

/// Runs `copy_file SRC DST --backend B`; `None` when the binary was not built.
fn copy_file(
    src: &std::path::Path,
    dst: &std::path::Path,
    backend: &str,
) -> Option<std::process::Output> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("examples").join("copy_file");
    if !example_built(&bin) {
        return None;
    }
    Some(
        Command::new(bin)
            .arg(src)
            .arg(dst)
            .args(["--backend", backend])
            .output()
            .unwrap(),
    )
}

fn tmp(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("safer-ring-ex-{tag}-{}", std::process::id()))
}

#[test]
fn copy_file_keeps_holes_and_refuses_what_it_cannot_copy() {
    use std::os::unix::fs::MetadataExt;
    for backend in ["io_uring", "epoll"] {
        let (src, dst) = (
            tmp(&format!("sparse-{backend}")),
            tmp(&format!("copy-{backend}")),
        );
        {
            let f = std::fs::File::create(&src).unwrap();
            f.set_len(4 << 20).unwrap();
            use std::os::unix::fs::FileExt;
            f.write_all_at(&[1u8; 4096], 1 << 20).unwrap();
            f.write_all_at(&[2u8; 4096], 3 << 20).unwrap();
        }
        let Some(out) = copy_file(&src, &dst, backend) else {
            return;
        };
        let msg = String::from_utf8_lossy(&out.stderr);
        if msg.contains("error: io_uring") || msg.contains("BackendUnavailable") {
            support::skip(format_args!("{backend}: {msg}"));
            continue;
        }
        assert!(out.status.success(), "{backend}: {msg}");
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
        let m = std::fs::metadata(&dst).unwrap();
        assert_eq!(m.len(), 4 << 20);
        assert!(
            m.blocks() * 512 < 1 << 20,
            "{backend}: the copy is dense: {} bytes allocated",
            m.blocks() * 512
        );

        // Onto itself: refused before anything is truncated.
        let out = copy_file(&src, &src, backend).unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("are the same file"));
        assert_eq!(std::fs::metadata(&src).unwrap().len(), 4 << 20);

        // A FIFO: refused with the reason (and not opened: that would block).
        let fifo = tmp(&format!("fifo-{backend}"));
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo takes nothing else.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let out = copy_file(&fifo, &dst, backend).unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("is a FIFO, not a regular file"));

        // A /proc file reports size 0 and still has contents.
        let out = copy_file(std::path::Path::new("/proc/version"), &dst, backend).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copied = std::fs::read(&dst).unwrap();
        assert!(!copied.is_empty());
        assert_eq!(copied, std::fs::read("/proc/version").unwrap());
        for p in [&src, &dst, &fifo] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Everything the server sends until it closes (or 5 s pass).
/// Connections waiting in `addr`'s listen queues (all of a SO_REUSEPORT group), from
/// /proc/net/tcp: a listening socket's rx_queue is its accept queue's length.
fn accept_queue(addr: std::net::SocketAddr) -> usize {
    let port = format!(":{:04X}", addr.port());
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let listening = f.get(3) == Some(&"0A") && f.get(1)?.ends_with(&port);
            let rx = f.get(4)?.split(':').nth(1)?;
            listening.then(|| usize::from_str_radix(rx, 16).ok())?
        })
        .sum()
}

fn read_until_close(c: &mut TcpStream) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("the server closes the connection");
    got
}

#[test]
fn http_hello_answers_pipelined_requests_and_refuses_bad_ones() {
    let resp_count = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .matches("HTTP/1.1 200 OK")
            .count()
    };
    for backend in ["io_uring", "epoll"] {
        let Some((_server, addr)) = start("http_hello", backend, &["--idle-ms", "300"]) else {
            continue;
        };
        // Three pipelined requests in one write, the last asking to close.
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n\
              GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(resp_count(&read_until_close(&mut c)), 3, "{backend}");

        // A head that never ends: 431 once it passes 8 KiB, then close (no unbounded buffer).
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nX-Big: ").unwrap();
        let _ = c.write_all(&[b'a'; 16 * 1024]);
        let got = read_until_close(&mut c);
        assert!(
            got.starts_with(b"HTTP/1.1 431 "),
            "{backend}: {:?}",
            String::from_utf8_lossy(&got)
        );

        // Malformed request line and header: 400, then close.
        for bad in [
            &b"NONSENSE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        ] {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(bad).unwrap();
            let got = read_until_close(&mut c);
            assert!(
                got.starts_with(b"HTTP/1.1 400 "),
                "{backend}: {:?}",
                String::from_utf8_lossy(&got)
            );
        }

        // An idle connection is closed after --idle-ms.
        let mut c = TcpStream::connect(addr).unwrap();
        let t = std::time::Instant::now();
        assert!(read_until_close(&mut c).is_empty());
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{backend}: closed too early"
        );
    }
}

#[test]
fn http_hello_shuts_down_gracefully_on_sigterm() {
    for backend in ["io_uring", "epoll"] {
        let Some((mut server, addr)) = start("http_hello", backend, &["--threads", "2"]) else {
            continue;
        };
        // A request under way when the signal comes: the server accepted the connection
        // (its listen queue is empty again), not merely had 50 ms to.
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
        let t = std::time::Instant::now();
        while accept_queue(addr) > 0 {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{backend}: the connection was never accepted"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: kill takes no pointers; the pid is our child's.
        let killed = unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
        assert_eq!(killed, 0);
        let signalled = std::time::Instant::now();
        // No longer accepting, soon (a loaded machine may take a while to run the server).
        while TcpStream::connect(addr).is_ok() {
            assert!(
                signalled.elapsed() < Duration::from_secs(30),
                "{backend}: still accepting 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The open connection finishes its request.
        c.write_all(b"Connection: close\r\n\r\n").unwrap();
        let got = read_until_close(&mut c);
        assert!(
            got.starts_with(b"HTTP/1.1 200 OK"),
            "{backend}: {:?}",
            String::from_utf8_lossy(&got)
        );
        // Then the process exits before its 5 s grace period (counted from the signal) runs
        // out: the one bound that tells "done when idle" from "waited for the grace".
        let status = loop {
            if let Some(s) = server.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(5),
                "{backend}: did not exit before the grace period ended"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "{backend}: {status}");
    }
}
