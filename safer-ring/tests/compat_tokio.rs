//! `Compat` through tokio's `AsyncRead`/`AsyncWrite` (no tokio runtime: the ring's own
//! `block_on` drives everything), on both backends, over real sockets and pipes.

mod common;

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use safer_ring::{Compat, CompatIo, Ring, RingRef, TcpStream};

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
    let path = common::TempPath::new("compat-file");
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
