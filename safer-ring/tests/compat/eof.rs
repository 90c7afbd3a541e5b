//! EOF waits for the adapter's own write in flight (see `Compat::poll_fill`), without losing a
//! wakeup when the reading and the writing are done by different tasks (`tokio::io::split`):
//! the read side polls the write to finish it, so the writer must still be woken, and the
//! reader when the writer finishes it.

use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZE: usize = 4 << 20;

backend_test!(
    split_halves_see_eof_after_their_write_and_both_finish,
    |ring| {
        let ring = Rc::new(ring);
        let (a, b) = ring.unix_pair().unwrap();
        let (mut rd, mut wr) = tokio::io::split(ring.compat(a));
        // The peer reads everything, then closes: its EOF reaches `rd` while `wr`'s last write
        // may still be in flight.
        let peer = {
            let r = ring.clone();
            ring.spawn(async move {
                let mut got = 0;
                let mut buf = Vec::with_capacity(64 * 1024);
                while got < SIZE {
                    buf.clear();
                    let (n, b2) = r.recv(&b, buf).await;
                    got += n.unwrap();
                    buf = b2;
                }
                drop(b);
                got
            })
        };
        let writer = ring.spawn(async move {
            let chunk = vec![5u8; 256 * 1024];
            for _ in 0..SIZE / chunk.len() {
                wr.write_all(&chunk).await.unwrap();
            }
            wr.flush().await.unwrap();
            wr
        });
        let reader = ring.spawn(async move {
            let mut rest = Vec::new();
            let n = rd.read_to_end(&mut rest).await.unwrap();
            (n, rd)
        });
        let (got, (n, _rd), _wr) = ring.block_on(async {
            let got = peer.await.unwrap();
            let r = reader.await.unwrap();
            let w = writer.await.unwrap();
            (got, r, w)
        });
        assert_eq!((got, n), (SIZE, 0), "{}", ring.backend());
    }
);
