//! `Compat` through futures-io's `AsyncRead`/`AsyncBufRead`/`AsyncWrite` and the
//! `futures::io` helpers, on both backends.

use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use safer_ring::Compat;

backend_test!(echo_through_futures_io, |ring| {
    ring.block_on(async {
        let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = ring.connect_tcp(addr).await.unwrap();
        let (server, _) = ring.accept(&listener).await.unwrap();
        // The server echoes with futures::io::copy over split halves: small adapter buffers
        // make it take many rounds.
        let server = Compat::with_capacity(ring.clone(), server, 1000, 1500).unwrap();
        let echo = ring.spawn(async move {
            let (reader, mut writer) = server.split();
            let n = futures_util::io::copy(reader, &mut writer).await.unwrap();
            writer.close().await.unwrap();
            n
        });
        let mut client = ring.compat(client);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + (i >> 9)) as u8).collect();
        let mut got = Vec::new();
        for part in data.chunks(40_000) {
            client.write_all(part).await.unwrap();
            client.flush().await.unwrap();
            let mut back = vec![0u8; part.len()];
            client.read_exact(&mut back).await.unwrap();
            got.extend_from_slice(&back);
        }
        client.close().await.unwrap();
        let mut tail = Vec::new();
        client.read_to_end(&mut tail).await.unwrap();
        assert!(tail.is_empty(), "{} bytes after the echo", tail.len());
        assert_eq!(echo.await.unwrap(), data.len() as u64);
        assert!(got == data, "echo differs");
    });
});

backend_test!(lines_through_futures_io, |ring| {
    ring.block_on(async {
        let (a, b) = ring.unix_pair().unwrap();
        let (mut a, mut b) = (ring.compat(a), ring.compat(b));
        a.write_all(b"one\ntwo\nthree").await.unwrap();
        a.close().await.unwrap();
        let mut line = String::new();
        let mut lines = Vec::new();
        while b.read_line(&mut line).await.unwrap() > 0 {
            lines.push(std::mem::take(&mut line));
        }
        assert_eq!(lines, ["one\n", "two\n", "three"]);
        // After close, writes fail with the kernel's EPIPE, at the latest on flush.
        let e = async {
            a.write_all(b"x").await?;
            a.flush().await
        }
        .await
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    });
});
