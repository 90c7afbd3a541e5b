//! hyper 1.x serving HTTP/1.1 on a ring through `ring.compat(stream)`, on both backends:
//! keep-alive clients and a pipelining one (std threads speaking raw HTTP/1.1) get every
//! answer in order and every connection future returns `Ok`; a client that sends half a head
//! is cut off by `header_read_timeout` (serviced by `RingTimer`); hyper's client over the
//! adapter talks to the server on the same ring.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use safer_ring::hyper::RingTimer;
use safer_ring::{Ring, TcpListener};

use crate::support;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
/// For every connection but the one that is to be cut off: hyper's head timer restarts after
/// each answer, and a client thread on a slow or loaded machine can take longer than
/// `HEADER_TIMEOUT` to send its next request.
const NO_CUT: Duration = Duration::from_secs(600);

/// Answers with the request's path, so that a client can tell which request was answered.
async fn echo_path(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from(
        req.uri().path().to_owned(),
    ))))
}

type Outcomes = Rc<RefCell<Vec<Result<(), hyper::Error>>>>;

/// Accepts `conns` connections and serves each with hyper in a task (heads cut off after
/// `head_timeout`); their outcomes land in the returned list.
fn serve(ring: &Ring, listener: TcpListener, conns: usize, head_timeout: Duration) -> Outcomes {
    let outcomes: Outcomes = Rc::default();
    let (r, out) = (safer_ring::RingRef::clone(ring), outcomes.clone());
    let timer = RingTimer::new(ring);
    drop(ring.spawn(async move {
        for _ in 0..conns {
            let (stream, _) = r.accept(&listener).await.expect("accept");
            let conn = http1::Builder::new()
                .timer(timer.clone())
                .header_read_timeout(head_timeout)
                .serve_connection(r.compat(stream), service_fn(echo_path));
            let out = out.clone();
            drop(r.spawn(async move {
                let res = conn.await;
                out.borrow_mut().push(res);
            }));
        }
    }));
    outcomes
}

/// Drives the ring until `n` connections ended (at most 30 s).
fn wait_for(ring: &Ring, outcomes: &Outcomes, n: usize) {
    assert!(
        drive_until(ring, || outcomes.borrow().len() >= n),
        "only {} of {n} connections ended",
        outcomes.borrow().len()
    );
}

/// Drives the ring until `done` (at most 30 s); whether it came.
fn drive_until(ring: &Ring, done: impl Fn() -> bool) -> bool {
    ring.block_on(ring.timeout(Duration::from_secs(30), async {
        while !done() {
            let _ = ring.sleep(Duration::from_millis(5)).await;
        }
    }))
    .is_ok()
}

/// Reads one response: (status, body).
fn response(r: &mut BufReader<TcpStream>) -> Result<(u16, String), String> {
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("status line: {e}"))?;
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut len = 0;
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| format!("header: {e}"))?;
        if line == "\r\n" {
            break;
        }
        if let Some((_, v)) = line
            .split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            len = v
                .trim()
                .parse()
                .map_err(|_| format!("bad length {line:?}"))?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn request(path: &str, close: bool) -> String {
    let conn = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{conn}\r\n")
}

/// `m` requests one after the other on one connection; the last asks to close, and the
/// server must then close.
fn keep_alive_client(addr: SocketAddr, id: usize, m: usize) -> Result<(), String> {
    let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    for j in 0..m {
        let path = format!("/c{id}/r{j}");
        w.write_all(request(&path, j + 1 == m).as_bytes())
            .map_err(|e| e.to_string())?;
        let (status, body) = response(&mut r)?;
        if (status, body.as_str()) != (200, path.as_str()) {
            return Err(format!("{path}: got {status} {body:?}"));
        }
    }
    expect_eof(&mut r)
}

/// `m` requests in one write; the answers must come in order.
fn pipelining_client(addr: SocketAddr, m: usize) -> Result<(), String> {
    let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let all: String = (0..m)
        .map(|j| request(&format!("/p/r{j}"), j + 1 == m))
        .collect();
    (&s).write_all(all.as_bytes()).map_err(|e| e.to_string())?;
    for j in 0..m {
        let (status, body) = response(&mut r)?;
        if (status, body.as_str()) != (200, format!("/p/r{j}").as_str()) {
            return Err(format!("pipelined answer {j}: got {status} {body:?}"));
        }
    }
    expect_eof(&mut r)
}

fn expect_eof(r: &mut BufReader<TcpStream>) -> Result<(), String> {
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => Ok(()),
        Ok(_) => Err(format!("unexpected bytes after the last answer: {rest:?}")),
        Err(e) => Err(format!("server did not close after Connection: close: {e}")),
    }
}

backend_test!(keep_alive_and_pipelined_clients, |ring| {
    const CLIENTS: usize = 4;
    const REQUESTS: usize = 25;
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let outcomes = serve(&ring, listener, CLIENTS + 1, NO_CUT);
    let mut clients: Vec<_> = (0..CLIENTS)
        .map(|i| std::thread::spawn(move || keep_alive_client(addr, i, REQUESTS)))
        .collect();
    clients.push(std::thread::spawn(move || pipelining_client(addr, 16)));
    wait_for(&ring, &outcomes, CLIENTS + 1);
    for c in clients {
        c.join().unwrap().unwrap();
    }
    for o in outcomes.borrow().iter() {
        assert!(o.is_ok(), "a connection ended with a hyper error: {o:?}");
    }
});

backend_test!(half_a_head_is_cut_off_by_header_read_timeout, |ring| {
    // Two listeners on the ring, so that only the slow connection has the short head timer
    // (the normal one's keeps running beside it on the same ring, armed for `NO_CUT`).
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let slow_listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let (addr, slow_addr) = (
        listener.local_addr().unwrap(),
        slow_listener.local_addr().unwrap(),
    );
    let outcomes = serve(&ring, listener, 1, NO_CUT);
    let slow_outcomes = serve(&ring, slow_listener, 1, HEADER_TIMEOUT);
    // A normal client on the other connection is unaffected.
    let normal = std::thread::spawn(move || keep_alive_client(addr, 0, 3));
    let slow = std::thread::spawn(move || {
        // Before connecting: hyper's timer cannot start earlier than this.
        let start = Instant::now();
        let mut s = TcpStream::connect(slow_addr).unwrap();
        // Far beyond the 30 s of `wait_for`: the read ends because the server closed.
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: te").unwrap();
        let mut rest = Vec::new();
        // Cut off: EOF (hyper may answer 408 first), or a reset.
        let end = s.read_to_end(&mut rest).map(|_| ());
        (start.elapsed(), end, rest)
    });
    wait_for(&ring, &outcomes, 1);
    wait_for(&ring, &slow_outcomes, 1);
    // Keep turning: the dropped connection's recv is cancelled through the ring, and its
    // socket closes only once that completion is reaped (the fd outlives every op naming it).
    // A server's ring keeps turning; this test's ring turns only while it is driven.
    assert!(
        drive_until(&ring, || slow.is_finished()),
        "the cut-off connection's socket stayed open"
    );
    normal.join().unwrap().unwrap();
    let (took, end, rest) = slow.join().unwrap();
    assert!(
        match &end {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        },
        "the slow client's read ended with {end:?}, not by the server's close"
    );
    assert!(
        rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
        "unexpected answer {:?}",
        String::from_utf8_lossy(&rest)
    );
    // The timeout counts from when hyper started to read the head (after the accept). No
    // upper bound on `took` beyond `wait_for`'s: how late a timer fires is the machine's.
    assert!(
        took >= HEADER_TIMEOUT,
        "closed after {took:?}, before the timeout"
    );
    let ok = outcomes.borrow();
    assert!(
        ok[0].is_ok(),
        "the normal connection ended with {:?}",
        ok[0]
    );
    let slow = slow_outcomes.borrow();
    let err = slow[0].as_ref().unwrap_err();
    assert!(
        err.is_timeout(),
        "the slow connection ended with {err:?}, not a timeout"
    );
});

/// A client that closes as soon as it has its answer, while the ring thread is busy right
/// after hyper wrote that answer (here: another task blocking for 100 ms; in a server: other
/// connections). The connection must end `Ok` (hyper: EOF on an idle connection).
///
/// On epoll this failed with "connection closed before message completed": the epoll
/// backend performs the send inside `poll_write` (the client gets the answer at once) but the
/// send's completion only arrives with the next turn, the same turn that brings the client's
/// EOF; hyper polls its read before its flush, so it sees EOF while its answer still looks
/// unflushed (mid-message). The adapter therefore holds an EOF back until its own write in
/// flight has finished (see `Compat::poll_fill`); before it did, epoll failed this every time.
fn peer_closes_right_after_the_answer(ring: Ring) {
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let hog_listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let (addr, hog_addr) = (
        listener.local_addr().unwrap(),
        hog_listener.local_addr().unwrap(),
    );
    let outcomes = serve(&ring, listener, 1, NO_CUT);
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut hog = TcpStream::connect(hog_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        go_rx.recv().unwrap();
        // Both land while the ring thread is blocked: one turn wakes hyper, then the hog.
        s.write_all(request("/x", false).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        hog.write_all(b"h").unwrap();
        let mut r = BufReader::new(s);
        let answer = response(&mut r);
        drop(r); // close at once
        answer
    });
    let r = ring.clone();
    ring.block_on(async {
        let (hog, _) = r.accept(&hog_listener).await.unwrap();
        let r2 = r.clone();
        drop(r.spawn(async move {
            let _ = r2.recv(&hog, vec![0; 1]).await;
            std::thread::sleep(Duration::from_millis(100)); // busy after hyper's poll
        }));
        let _ = r.sleep(Duration::from_millis(50)).await; // hyper and the hog wait on reads
        go_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(100)); // the ring thread is busy
    });
    wait_for(&ring, &outcomes, 1);
    assert_eq!(client.join().unwrap().unwrap(), (200, "/x".to_owned()));
    let o = &outcomes.borrow()[0];
    assert!(o.is_ok(), "the connection ended with {o:?}");
}

backend_test!(
    peer_closes_right_after_the_answer_is_a_clean_close,
    |ring| { peer_closes_right_after_the_answer(ring) }
);

#[test]
fn peer_closes_right_after_the_answer_with_eager_submission() {
    let cfg = safer_ring::SaferRingConfig::default()
        .entries(64)
        .backend(safer_ring::BackendKind::Epoll)
        .submit_policy(safer_ring::SubmitPolicy::Eager);
    peer_closes_right_after_the_answer(support::ring_with(cfg).unwrap())
}

backend_test!(hyper_client_on_the_same_ring, |ring| {
    use http_body_util::{BodyExt, Empty};
    const REQUESTS: usize = 20;
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let outcomes = serve(&ring, listener, 1, NO_CUT);
    let r = safer_ring::RingRef::clone(&ring);
    let client = ring.block_on(async {
        let stream = r.connect_tcp(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(r.compat(stream))
            .await
            .unwrap();
        let conn = r.spawn(conn);
        for j in 0..REQUESTS {
            let path = format!("/h/r{j}");
            let mut req = Request::get(path.as_str());
            if j + 1 == REQUESTS {
                req = req.header("connection", "close"); // the server closes first
            }
            let resp = send
                .send_request(req.body(Empty::<Bytes>::new()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, path.as_bytes());
        }
        drop(send);
        conn.await.unwrap() // ends when the server closed
    });
    wait_for(&ring, &outcomes, 1);
    assert!(client.is_ok(), "client connection: {client:?}");
    let o = &outcomes.borrow()[0];
    assert!(o.is_ok(), "server connection: {o:?}");
});
