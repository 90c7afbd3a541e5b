//! Sockets and pipes over loopback: accept, connect, send, recv, shutdown, concurrency.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::support;

backend_test!(tcp_accept_connect_send_recv, |ring| {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    ring.block_on(async {
        let connect = ring.connect_tcp(addr);
        let accept = ring.accept(&listener);
        let (client, accepted) = join(connect, accept).await;
        let (client, (server, peer)) = (client.unwrap(), accepted.unwrap());
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
        let (n, _) = ring.send(&client, b"ping".to_vec()).await;
        assert_eq!(n.unwrap(), 4);
        let (n, buf) = ring.recv(&server, Vec::with_capacity(64)).await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!(buf, b"ping");
        ring.shutdown(&client, std::net::Shutdown::Write)
            .await
            .unwrap();
        let (n, _) = ring.recv(&server, Vec::with_capacity(64)).await;
        assert_eq!(n.unwrap(), 0, "EOF after shutdown");
    });
});

backend_test!(connect_refused, |ring| {
    // Bind then drop a listener to get a port nobody listens on.
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    ring.block_on(async {
        let e = ring.connect_tcp(addr).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    });
});

backend_test!(concurrent_read_and_write_on_one_socket, |ring| {
    let ring = Rc::new(ring);
    let (a, b) = ring.unix_pair().unwrap();
    let (a, b) = (Rc::new(a), Rc::new(b));
    // A recv is parked on `a` while a send on `a` must still go through.
    let got = Rc::new(Cell::new(0usize));
    let task = {
        let (ring2, a2, got2) = (ring.clone(), a.clone(), got.clone());
        ring.spawn(async move {
            let (n, buf) = ring2.recv(&*a2, Vec::with_capacity(16)).await;
            assert_eq!(&buf[..], b"reply");
            got2.set(n.unwrap());
        })
    };
    ring.block_on(async {
        let (n, _) = ring.send(&*a, b"request".to_vec()).await;
        assert_eq!(n.unwrap(), 7);
        let (n, buf) = ring.recv(&*b, Vec::with_capacity(16)).await;
        assert_eq!((n.unwrap(), &buf[..]), (7, &b"request"[..]));
        let (n, _) = ring.send(&*b, b"reply".to_vec()).await;
        assert_eq!(n.unwrap(), 5);
        task.await.unwrap();
    });
    assert_eq!(got.get(), 5);
});

backend_test!(many_sequential_ops_on_one_fd, |ring| {
    let (r, w) = ring.pipe().unwrap();
    ring.block_on(async {
        for i in 0..500u32 {
            let (n, _) = ring.write(&w, i.to_le_bytes().to_vec()).await;
            assert_eq!(n.unwrap(), 4);
            let (n, buf) = ring.read(&r, Vec::with_capacity(4)).await;
            assert_eq!(n.unwrap(), 4);
            assert_eq!(u32::from_le_bytes(buf[..].try_into().unwrap()), i);
        }
    });
});

backend_test!(pipe_read_waits_for_data, |ring| {
    let ring = Rc::new(ring);
    let (r, w) = ring.pipe().unwrap();
    let ring2 = ring.clone();
    // Taken before the writer's timer can start, so a stall in between cannot fail the check.
    let t = std::time::Instant::now();
    let writer = ring.spawn(async move {
        ring2
            .sleep(std::time::Duration::from_millis(20))
            .await
            .unwrap();
        let (n, _) = ring2.write(&w, b"late".to_vec()).await;
        n.unwrap();
    });
    ring.block_on(async {
        let (n, buf) = ring.read(&r, Vec::with_capacity(8)).await;
        assert_eq!((n.unwrap(), &buf[..]), (4, &b"late"[..]));
        assert!(t.elapsed() >= std::time::Duration::from_millis(15));
        writer.await.unwrap();
    });
});

backend_test!(many_connections_echo, |ring| {
    let ring = Rc::new(ring);
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    const N: usize = 50;
    let tasks = Rc::new(support::Tasks::default());
    {
        let (ring2, tasks2) = (ring.clone(), tasks.clone());
        tasks.spawn(&ring, async move {
            for _ in 0..N {
                let (s, _) = ring2.accept(&listener).await.unwrap();
                let r3 = ring2.clone();
                tasks2.spawn(&ring2, async move {
                    let mut buf = Vec::with_capacity(1024);
                    loop {
                        let (n, b) = r3.recv(&s, buf).await;
                        let n = n.unwrap();
                        if n == 0 {
                            break;
                        }
                        let (w, b) = r3.send(&s, b).await;
                        assert_eq!(w.unwrap(), n);
                        buf = b;
                    }
                });
            }
        });
    }
    let done = Rc::new(Cell::new(0));
    for i in 0..N {
        let (ring2, done) = (ring.clone(), done.clone());
        tasks.spawn(&ring, async move {
            let c = ring2.connect_tcp(addr).await.unwrap();
            let msg = format!("hello {i}").into_bytes();
            let (n, _) = ring2.send(&c, msg.clone()).await;
            assert_eq!(n.unwrap(), msg.len());
            let (n, buf) = ring2.recv(&c, Vec::with_capacity(64)).await;
            assert_eq!(&buf[..n.unwrap()], &msg[..]);
            done.set(done.get() + 1);
        });
    }
    ring.block_on(async {
        while done.get() < N {
            tasks.check();
            ring.sleep(std::time::Duration::from_millis(1))
                .await
                .unwrap();
        }
    });
});

/// Polls two futures concurrently (tests only need this one combinator).
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    use std::future::poll_fn;
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}
