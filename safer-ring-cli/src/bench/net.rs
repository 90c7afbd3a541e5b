//! Loopback TCP: accepting connections, and streaming bytes one way.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use safer_ring::{Feature, Ring, TcpStream};

use super::{Run, Variant};

fn err(e: std::io::Error) -> String {
    e.to_string()
}

/// Connections accepted with `accept_multiple` while tasks on the same ring connect.
pub fn accept(v: Variant, scale: u64) -> Result<Run, String> {
    let n = 100 * scale;
    let ring = Rc::new(v.ring(Feature::MultiShotAccept)?);
    let listener = ring.bind_tcp("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let start = Instant::now();
    let failed = Rc::new(Cell::new(None));
    for _ in 0..n {
        let (r, failed) = (ring.clone(), failed.clone());
        ring.spawn(async move {
            if let Err(e) = r.connect_tcp(addr).await {
                failed.set(Some(e.to_string()));
            }
        });
    }
    ring.block_on(async {
        let mut conns = ring.accept_multiple(&listener);
        let mut open = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if let Some(e) = failed.take() {
                return Err(format!("connect: {e}"));
            }
            let c = conns.next().await.ok_or("the accept stream ended")?;
            open.push(c.map_err(err)?);
        }
        Ok(())
    })?;
    Ok(Run::new(
        &ring,
        &[Feature::MultiShotAccept],
        n,
        start.elapsed(),
    ))
}

/// A connected loopback pair on `ring` (connect completes from the listen backlog).
fn pair(ring: &Ring) -> Result<(TcpStream, TcpStream), String> {
    let listener = ring.bind_tcp("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let c = ring.block_on(ring.connect_tcp(addr)).map_err(err)?;
    let (a, _) = ring.block_on(ring.accept(&listener)).map_err(err)?;
    Ok((c, a))
}

const MIB: usize = 1 << 20;

/// Streams `16 × scale` MiB one way over loopback in 1 MiB sends; `enhanced_send` /
/// `enhanced_recv` pick `send_enhanced` / `recv_enhanced` on their side.
fn stream(
    v: Variant,
    f: &[Feature],
    scale: u64,
    enhanced_send: bool,
    enhanced_recv: bool,
) -> Result<Run, String> {
    let ring = Rc::new(v.ring(f[0])?);
    let (tx, rx) = pair(&ring)?;
    let total = 16 * scale as usize * MIB;
    let start = Instant::now();
    let r = ring.clone();
    ring.spawn(async move {
        let mut buf = vec![7u8; MIB];
        let mut sent = 0;
        while sent < total {
            let (n, b) = if enhanced_send {
                r.send_enhanced(&tx, buf).await
            } else {
                r.send(&tx, buf).await
            };
            buf = b;
            match n {
                Ok(n) => sent += n,
                Err(_) => return,
            }
        }
    });
    let got = ring.block_on(async {
        let mut got = 0;
        let mut buf = Vec::with_capacity(256 * 1024);
        while got < total {
            let (n, b) = if enhanced_recv {
                ring.recv_enhanced(&rx, buf).await
            } else {
                ring.recv(&rx, buf).await
            };
            buf = b;
            match n.map_err(err)? {
                0 => return Err("the sender stopped early".to_string()),
                n => got += n,
            }
        }
        Ok(got)
    })?;
    let took = start.elapsed();
    // Let the sender's last operations finish before the ring reports its stats.
    ring.block_on(ring.sleep(Duration::from_millis(1)))
        .map_err(err)?;
    Ok(Run::new(&ring, f, (got / MIB) as u64, took))
}

/// `send_enhanced` (zero-copy above the threshold where available) against plain `recv`.
pub fn send(v: Variant, scale: u64) -> Result<Run, String> {
    stream(v, &[Feature::SendZeroCopy], scale, true, false)
}

/// `recv_enhanced` (multishot recv over a buffer ring where available, else one buffer-select
/// recv per call) against plain `send`; counted under whichever feature chose each call's path.
pub fn recv(v: Variant, scale: u64) -> Result<Run, String> {
    let f = &[Feature::MultiShotRecv, Feature::BufferRings];
    stream(v, f, scale, false, true)
}
