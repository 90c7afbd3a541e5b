//! `Compat` through tokio's `AsyncRead`/`AsyncWrite` (no tokio runtime: the ring's own
//! `block_on` drives everything), on both backends, over real sockets and pipes.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use safer_ring::{Compat, CompatIo, Ring, RingRef, TcpStream};

use crate::support;

/// A connected loopback TCP pair (client, server): the handshake completes in the backlog, so
/// connecting first and accepting second needs no concurrency.
async fn tcp_pair(ring: &RingRef) -> (TcpStream, TcpStream) {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = ring.connect_tcp(addr).await.unwrap();
    let (server, _) = ring.accept(&listener).await.unwrap();
    (client, server)
}

/// Echoes through the traits until EOF, then shuts its write side down.
async fn echo<S: CompatIo>(mut io: Compat<S>) -> usize {
    let mut buf = vec![0u8; 3000];
    let mut total = 0;
    loop {
        let n = io.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        io.write_all(&buf[..n]).await.unwrap();
        total += n;
    }
    io.shutdown().await.unwrap();
    total
}

/// Deterministic bytes (xorshift), so a lost, repeated or reordered chunk shows.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern(seed | 1)
    }
    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

fn spawn_echo<S: CompatIo>(ring: &Ring, io: Compat<S>) -> safer_ring::JoinHandle<usize> {
    ring.spawn(echo(io))
}

backend_test!(tcp_echo_through_tokio_traits, |ring| {
    ring.block_on(async {
        let (client, server) = tcp_pair(&ring).await;
        let server = spawn_echo(&ring, ring.compat(server));
        let mut client = ring.compat(client);
        let mut sent = vec![0u8; 200_000];
        Pattern::new(7).fill(&mut sent);
        // Odd-sized writes and reads, so chunk boundaries never line up with the buffers'.
        let mut got = Vec::new();
        let mut chunk = [0u8; 1000];
        for part in sent.chunks(12_345) {
            client.write_all(part).await.unwrap();
            client.flush().await.unwrap();
            let mut want = part.len();
            while want > 0 {
                let n = client.read(&mut chunk[..want.min(777)]).await.unwrap();
                assert!(n > 0, "EOF before the echo came back");
                got.extend_from_slice(&chunk[..n]);
                want -= n;
            }
        }
        client.shutdown().await.unwrap();
        assert_eq!(
            client.read(&mut chunk).await.unwrap(),
            0,
            "EOF after the echo"
        );
        assert_eq!(server.await.unwrap(), sent.len());
        assert!(got == sent, "echo differs");
    });
});

backend_test!(unix_and_pipe_through_tokio_traits, |ring| {
    ring.block_on(async {
        let (a, b) = ring.unix_pair().unwrap();
        let server = spawn_echo(&ring, ring.compat(b));
        let mut a = ring.compat(a);
        a.write_all(b"hello\nworld\n").await.unwrap();
        a.shutdown().await.unwrap();
        // AsyncBufRead: lines straight from the adapter's buffer.
        let mut lines = a.lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("hello"));
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("world"));
        assert_eq!(lines.next_line().await.unwrap(), None);
        assert_eq!(server.await.unwrap(), 12);

        // Pipes: read and write at the fd's position; shutdown only flushes, EOF comes when
        // the write end is closed.
        let (r, w) = ring.pipe().unwrap();
        let (mut r, mut w) = (ring.compat(r), ring.compat(w));
        w.write_all(b"through a pipe").await.unwrap();
        w.shutdown().await.unwrap();
        let mut got = vec![0u8; 14];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"through a pipe");
        drop(w.into_inner().unwrap());
        assert_eq!(r.read(&mut got).await.unwrap(), 0);
    });
});

backend_test!(files_through_tokio_traits, |ring| {
    let path = support::TempPath::new("compat-file");
    ring.block_on(async {
        let opts = safer_ring::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true);
        let mut f = ring.compat(ring.open(&path.0, &opts).await.unwrap());
        let mut data = vec![0u8; 100_000];
        Pattern::new(3).fill(&mut data);
        f.write_all(&data).await.unwrap();
        f.flush().await.unwrap();
        assert_eq!(std::fs::read(&path.0).unwrap(), data);
        // The position is at the end: a read is EOF.
        assert_eq!(f.read(&mut [0u8; 10]).await.unwrap(), 0);
        let file = ring
            .open(&path.0, &opts.truncate(false).write(false))
            .await
            .unwrap();
        let mut back = Vec::new();
        ring.compat(file).read_to_end(&mut back).await.unwrap();
        assert!(back == data, "file read back differs");
    });
});

backend_test!(capacities_are_checked, |ring| {
    let (a, _b) = ring.unix_pair().unwrap();
    let e = Compat::with_capacity(ring.clone(), a, 0, 10).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("read capacity 0"), "{e}");
    let (a, _b) = ring.unix_pair().unwrap();
    let e = Compat::with_capacity(ring.clone(), a, 10, 1 << 33).unwrap_err();
    assert!(e.to_string().contains("write capacity 8589934592"), "{e}");
});

/// Bounds a test step, so a hang fails the test instead of stalling the suite. Generous: the
/// kernel matrix runs these debug builds under QEMU, where a loaded machine made 128 MiB of
/// copying take 77 s.
async fn bounded<F: std::future::Future>(ring: &RingRef, what: &str, fut: F) -> F::Output {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(180);
    match ring.timeout(LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("HANG: {what} did not finish within {LIMIT:?}"),
    }
}

// 64 MiB each way through `copy_bidirectional` between two adapter-wrapped sockets; the ends
// use raw ops (a writer and a reader task each), so only the adapter is under test. In the
// kernel matrix's QEMU guests (debug build, emulated CPU) 64 MiB each way took 77 s per
// kernel, so there it moves 16 MiB each way.
backend_test!(copy_bidirectional_64_mib_each_way, |ring| {
    let in_matrix = std::env::var_os("SAFER_RING_IN_MATRIX").is_some();
    let total: usize = if in_matrix { 16 << 20 } else { 64 << 20 };
    ring.block_on(async {
        let (left_end, left_proxy) = tcp_pair(&ring).await;
        let (right_proxy, right_end) = tcp_pair(&ring).await;
        let proxy = {
            let (mut a, mut b) = (ring.compat(left_proxy), ring.compat(right_proxy));
            ring.spawn(async move { tokio::io::copy_bidirectional(&mut a, &mut b).await })
        };
        let ends = [(left_end, 1, 2), (right_end, 2, 1)].map(|(end, send_seed, recv_seed)| {
            let end = std::rc::Rc::new(end);
            let writer = {
                let (ring, end) = (ring.clone(), end.clone());
                ring.clone().spawn(async move {
                    let mut pattern = Pattern::new(send_seed);
                    let mut buf = vec![0u8; 256 * 1024];
                    for _ in 0..total / buf.len() {
                        pattern.fill(&mut buf);
                        let (res, b) = ring.send_all(&*end, buf).await;
                        res.unwrap();
                        buf = b;
                    }
                    ring.shutdown(&*end, std::net::Shutdown::Write)
                        .await
                        .unwrap();
                })
            };
            let ring = ring.clone();
            let reader = ring.clone().spawn(async move {
                let mut pattern = Pattern::new(recv_seed);
                let (mut got, mut want) = (0usize, vec![0u8; 64 * 1024]);
                let mut buf = Vec::with_capacity(64 * 1024);
                loop {
                    let (res, b) = ring.recv(&*end, buf).await;
                    let n = res.unwrap();
                    if n == 0 {
                        break;
                    }
                    pattern.fill(&mut want[..n]);
                    assert!(b[..n] == want[..n], "byte {got}..{} differs", got + n);
                    got += n;
                    buf = b;
                }
                got
            });
            (writer, reader)
        });
        let [(w1, r1), (w2, r2)] = ends;
        bounded(&ring, "copy_bidirectional", async {
            w1.await.unwrap();
            w2.await.unwrap();
            assert_eq!(r1.await.unwrap(), total, "bytes left → right → left end");
            assert_eq!(r2.await.unwrap(), total);
            let (ab, ba) = proxy.await.unwrap().unwrap();
            assert_eq!((ab, ba), (total as u64, total as u64));
        })
        .await;
    });
});

// One poll_write accepts a whole 4 MiB buffer; the socket takes it in short writes, the next
// poll_write waits (backpressure), and flush completes only once the peer has read it all.
backend_test!(short_writes_backpressure_and_flush, |ring| {
    const BIG: usize = 4 << 20;
    ring.block_on(async {
        let (a, b) = ring.unix_pair().unwrap();
        let mut a = Compat::with_capacity(ring.clone(), a, 1024, BIG).unwrap();
        let mut data = vec![0u8; BIG];
        Pattern::new(11).fill(&mut data);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let accepted =
            tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(&mut a), &mut cx, &data);
        assert!(
            matches!(accepted, std::task::Poll::Ready(Ok(n)) if n == BIG),
            "{accepted:?}"
        );
        assert!(a.is_busy(), "a 4 MiB write cannot fit a socket buffer");
        let again = tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(&mut a), &mut cx, b"x");
        assert!(again.is_pending(), "a second write must wait: {again:?}");
        let flushed = tokio::io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut a), &mut cx);
        assert!(flushed.is_pending(), "nobody reads yet: {flushed:?}");
        let reader = {
            let ring = ring.clone();
            ring.clone().spawn(async move {
                let (res, got) = ring.read_exact(&b, Vec::with_capacity(BIG)).await;
                res.unwrap();
                got
            })
        };
        bounded(&ring, "flush", a.flush()).await.unwrap();
        assert!(!a.is_busy());
        let got = reader.await.unwrap();
        assert!(got == data, "the 4 MiB arrived changed");
    });
});

// EOF is reported as often as asked, and the write side still works after it (half close).
backend_test!(eof_and_half_close, |ring| {
    ring.block_on(async {
        let (client, server) = tcp_pair(&ring).await;
        let mut server = ring.compat(server);
        ring.send_all(&client, b"last words".to_vec())
            .await
            .0
            .unwrap();
        ring.shutdown(&client, std::net::Shutdown::Write)
            .await
            .unwrap();
        let mut got = String::new();
        server.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "last words");
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        server.write_all(b"reply").await.unwrap();
        server.shutdown().await.unwrap();
        server.shutdown().await.unwrap(); // a second shutdown is a no-op
        let (res, back) = ring.read_exact(&client, Vec::with_capacity(5)).await;
        res.unwrap();
        assert_eq!(back, b"reply");
        let (n, _) = ring.recv(&client, Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 0, "the peer sees EOF after shutdown");
        // Writing after shutdown is the kernel's EPIPE, reported by flush.
        server.write_all(b"too late").await.unwrap();
        let e = server.flush().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    });
});

/// Makes closing `s` send a RST (SO_LINGER with a zero timeout).
fn linger_zero(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a valid linger struct and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

// A peer reset is an error on the pending read and on later writes, never a hang.
backend_test!(peer_reset_is_an_error, |ring| {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    ring.block_on(async {
        let stream = ring.connect_tcp(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        let mut c = ring.compat(stream);
        let mut buf = [0u8; 16];
        let mut read = std::pin::pin!(c.read(&mut buf));
        // Get the read in flight, then reset the connection under it.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(read.as_mut().poll(&mut cx).is_pending());
        linger_zero(&peer);
        drop(peer);
        let e = bounded(&ring, "read after reset", read).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        let e = bounded(&ring, "write after reset", async {
            loop {
                if let Err(e) = c.write_all(&[1u8; 1000]).await {
                    break e;
                }
                if let Err(e) = c.flush().await {
                    break e;
                }
            }
        })
        .await;
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    });
});

// into_inner refuses (an error, not a panic) while a read is in flight or bytes wait unread.
backend_test!(into_inner_only_when_idle, |ring| {
    ring.block_on(async {
        let (a, b) = ring.unix_pair().unwrap();
        let mut c = ring.compat(a);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut buf = [0u8; 4];
        let mut rb = tokio::io::ReadBuf::new(&mut buf);
        let polled = tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut c), &mut cx, &mut rb);
        assert!(polled.is_pending());
        let e = c.into_inner().unwrap_err();
        assert!(e.to_string().contains("a read is in flight"), "{e}");
        let mut c = e.into_compat();
        ring.send_all(&b, b"abcdefgh".to_vec()).await.0.unwrap();
        assert_eq!(c.read(&mut buf).await.unwrap(), 4);
        assert_eq!(c.read_buffered(), b"efgh");
        let e = c.into_inner().unwrap_err();
        assert!(e.to_string().contains("waiting to be read"), "{e}");
        let (a, rest) = e.into_compat().into_parts().unwrap();
        assert_eq!(rest, b"efgh");
        // The stream works on without the adapter.
        ring.send_all(&b, b"more".to_vec()).await.0.unwrap();
        let (res, got) = ring.read_exact(&a, Vec::with_capacity(4)).await;
        res.unwrap();
        assert_eq!(got, b"more");
    });
});

/// The adapter inside a tokio runtime, the ring driven by `drive_on_tokio`, next to a tokio
/// socket: safer-ring's adapter on one end, tokio's TcpStream on the other.
fn on_tokio(kind: safer_ring::BackendKind) {
    let cfg = safer_ring::SaferRingConfig::for_tokio().backend(kind);
    let Some(ring) = support::ring_with(cfg) else {
        return;
    };
    let ring = std::rc::Rc::new(ring);
    support::on_local_tokio(async {
        let driver = ring.clone();
        tokio::task::spawn_local(async move { driver.drive_on_tokio().await.unwrap() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = ring.connect_tcp(addr).await.unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        let mut c = ring.compat(stream);
        let mut data = vec![0u8; 500_000];
        Pattern::new(5).fill(&mut data);
        let sent = data.clone();
        let writer = tokio::task::spawn_local(async move {
            c.write_all(&sent).await.unwrap();
            c.shutdown().await.unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "tokio's end got different bytes");
        peer.write_all(b"bye").await.unwrap();
        drop(peer);
        assert_eq!(writer.await.unwrap(), b"bye");
    });
}

#[test]
fn adapter_on_tokio_io_uring() {
    on_tokio(safer_ring::BackendKind::IoUring);
}

#[test]
fn adapter_on_tokio_epoll() {
    on_tokio(safer_ring::BackendKind::Epoll);
}
