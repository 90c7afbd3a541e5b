//! `bytes::Bytes` and `bytes::BytesMut` as operation buffers (feature `bytes`), on both backends:
//! loopback TCP send/recv and file write_at/read_at, byte for byte.

use bytes::{Bytes, BytesMut};
use safer_ring::{OpenOptions, Ring, RingRef, TcpStream};

use support::TempPath;

use crate::support;

/// A connected loopback pair: (client, server side).
async fn tcp_pair(ring: &Ring) -> (TcpStream, TcpStream) {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = RingRef::clone(ring);
    let accepted = ring.spawn(async move { r.accept(&listener).await.map(|(s, _)| s) });
    let client = ring.connect_tcp(addr).await.unwrap();
    (client, accepted.await.unwrap().unwrap())
}

/// Receives until `want` bytes came, each recv into a fresh `BytesMut` with spare capacity.
async fn recv_bytes(ring: &Ring, sock: &TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let (n, buf) = ring.recv(sock, BytesMut::with_capacity(want)).await;
        let n = n.unwrap();
        assert!(n > 0, "EOF after {} of {want} bytes", got.len());
        assert_eq!(
            buf.len(),
            n,
            "recv sets the BytesMut's length to the bytes received"
        );
        got.extend_from_slice(&buf);
    }
    got
}

backend_test!(send_bytes_recv_into_bytes_mut, |ring| {
    ring.block_on(async {
        let (client, server) = tcp_pair(&ring).await;
        let data: Bytes = (0..=255u8).cycle().take(10_000).collect::<Vec<_>>().into();
        let (n, back) = ring.send(&client, data.clone()).await;
        let n = n.unwrap();
        assert!(n > 0);
        assert_eq!(back, data, "the same Bytes comes back");
        assert_eq!(recv_bytes(&ring, &server, n).await, data[..n]);

        // A BytesMut that already holds data and has spare room: recv fills it from its start.
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"old");
        let (n, _) = ring.send(&client, Bytes::from_static(b"new data")).await;
        assert_eq!(n.unwrap(), 8);
        let (n, buf) = ring.recv(&server, buf).await;
        assert_eq!(n.unwrap(), 8);
        assert_eq!(&buf[..], b"new data");
        assert!(buf.capacity() >= 64, "the capacity is kept");
    });
});

backend_test!(a_sliced_bytes_sends_only_its_part, |ring| {
    ring.block_on(async {
        let (client, server) = tcp_pair(&ring).await;
        let whole = Bytes::from_static(b"<<<payload>>>");
        let part = whole.slice(3..10);
        let (n, back) = ring.send_all(&client, part).await;
        n.unwrap();
        assert_eq!(&back[..], b"payload");
        ring.shutdown(&client, std::net::Shutdown::Write)
            .await
            .unwrap();
        let (res, buf) = ring.read_exact(&server, BytesMut::with_capacity(7)).await;
        res.unwrap();
        assert_eq!(&buf[..], b"payload");
        let (n, _) = ring.recv(&server, BytesMut::with_capacity(16)).await;
        assert_eq!(n.unwrap(), 0, "nothing but the slice was sent");
    });
});

backend_test!(file_write_at_read_at_with_bytes, |ring| {
    let p = TempPath::new("bytes");
    let data: Bytes = (0..50_000u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    ring.block_on(async {
        let opts = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true);
        let file = ring.open(&p.0, &opts).await.unwrap();
        let (res, _) = ring.write_all_at(&file, data.slice(1000..), 1000).await;
        res.unwrap();
        let (res, _) = ring.write_all_at(&file, data.slice(..1000), 0).await;
        res.unwrap();
        let (res, buf) = ring
            .read_exact_at(&file, BytesMut::with_capacity(data.len()), 0)
            .await;
        res.unwrap();
        assert_eq!(buf.len(), data.len());
        assert!(buf[..] == data[..], "byte-exact round trip");
        // A read past the end fills only what is there.
        let (n, buf) = ring
            .read_at(&file, BytesMut::with_capacity(100), 49_990)
            .await;
        assert_eq!(n.unwrap(), 10);
        assert_eq!(&buf[..], &data[49_990..]);
        ring.close(file).await.unwrap();
    });
    assert_eq!(std::fs::read(&p.0).unwrap(), data);
});
