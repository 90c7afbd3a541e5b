//! Attack on the I/O adapter's reads dropped mid-flight: `Compat` keeps its read op when the
//! caller's read future is dropped (select, timeout), so bytes sent after the drop must come
//! out of the next read, in order, none lost.

use std::io::Write;
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::io::AsyncReadExt;
use safer_ring::{Compat, RingRef, UnixStream};
use support::drops::{each, must_arrive};

use crate::support;

#[test]
fn adapter_reads_dropped_by_select_lose_nothing_after() {
    each(|what, ring, _| {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut io = Compat::new(RingRef::clone(ring), UnixStream::from(b));
        let mut got = Vec::new();
        for round in 0..20u8 {
            {
                let mut buf = [0u8; 64];
                let read = Box::pin(io.read(&mut buf));
                let sleep = Box::pin(ring.sleep(Duration::from_millis(1)));
                match ring.block_on(select(read, sleep)) {
                    Either::Right((_, read)) => drop(read),
                    Either::Left(_) => panic!("{what}: the read finished with nothing sent"),
                }
            }
            a.write_all(&[round; 3]).unwrap();
            let mut buf = [0u8; 64];
            let n = must_arrive(ring, what, io.read(&mut buf)).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let want: Vec<u8> = (0..20u8).flat_map(|r| [r; 3]).collect();
        assert_eq!(got, want, "{what}");
    });
}
