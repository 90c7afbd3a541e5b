//! NOP batches and ring-to-ring messages (data and fds).

use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Instant;

use safer_ring::{Feature, Message, RingHandle};

use super::{Run, Variant};

/// 32 000 × `scale` NOPs through the safe API in batches of `batch`, all of a batch polled
/// before any is awaited so it goes to the kernel in one submission; the feature is the
/// registered ring fd, counted per `io_uring_enter`.
fn nops(v: Variant, scale: u64, batch: u64) -> Result<Run, String> {
    let ring = v.ring(Feature::RegisteredRingFd)?;
    let batches = 32_000 / batch * scale;
    let start = Instant::now();
    ring.block_on(async {
        for _ in 0..batches {
            let ops: Vec<_> = (0..batch).map(|_| ring.nop()).collect();
            for res in join_all(ops).await {
                res.map_err(|e| e.to_string())?;
            }
        }
        Ok::<_, String>(())
    })?;
    // The library counts each io_uring_enter by the fd it named (none on epoll).
    Ok(Run::new(
        &ring,
        &[Feature::RegisteredRingFd],
        batches * batch,
        start.elapsed(),
    ))
}

/// Batches of 32 NOPs: one enter per 32 operations.
pub fn nop(v: Variant, scale: u64) -> Result<Run, String> {
    nops(v, scale, 32)
}

/// One NOP per enter, where the registered ring fd saves the most per operation.
pub fn nop1(v: Variant, scale: u64) -> Result<Run, String> {
    nops(v, scale, 1)
}

/// Every future's output, polling all of them on each wake-up (operations are lazy: a future
/// reaches the submission queue when first polled).
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// A receiver ring on its own thread that takes `n` messages (closing the fds among them).
fn receiver(
    v: Variant,
    f: Feature,
    n: u64,
) -> Result<(RingHandle, std::thread::JoinHandle<()>), String> {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let Ok(ring) = v.ring(f) else {
            return;
        };
        let _ = tx.send(ring.handle());
        ring.block_on(async {
            for _ in 0..n {
                drop(ring.next_message().await); // an fd is closed here
            }
        });
    });
    let handle = rx
        .recv()
        .map_err(|_| "the receiver ring did not start".to_string())?;
    Ok((handle, t))
}

fn send_all(
    v: Variant,
    f: Feature,
    n: u64,
    msg: impl Fn(u64) -> std::io::Result<Message>,
) -> Result<Run, String> {
    let sender = v.ring(f)?;
    let (to, t) = receiver(v, f, n)?;
    let start = Instant::now();
    sender.block_on(async {
        for i in 0..n {
            let m = msg(i).map_err(|e| e.to_string())?;
            sender.msg_ring(&to, m).await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })?;
    t.join().map_err(|_| "the receiver panicked".to_string())?;
    Ok(Run::new(&sender, &[f], n, start.elapsed()))
}

/// `u64` messages from one ring to another on a second thread, until the receiver has all.
pub fn messages(v: Variant, scale: u64) -> Result<Run, String> {
    send_all(v, Feature::MsgRing, 5000 * scale, |i| Ok(Message::Data(i)))
}

/// fds (duplicates of a pipe's read end) passed from one ring to another, which closes them.
pub fn fds(v: Variant, scale: u64) -> Result<Run, String> {
    let (r, _w) = std::io::pipe().map_err(|e| e.to_string())?;
    let fd = OwnedFd::from(r);
    send_all(v, Feature::MsgRingSendFd, 500 * scale, |_| {
        fd.try_clone().map(Message::Fd)
    })
}

/// Round trips between two rings on two threads: each message finds its receiver asleep, so
/// each needs a doorbell (OP_MSG_RING natively, the eventfd otherwise).
pub fn round_trips(v: Variant, scale: u64) -> Result<Run, String> {
    let n = 500 * scale;
    let a = v.ring(Feature::MsgRing)?;
    let a_handle = a.handle();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let Ok(b) = v.ring(Feature::MsgRing) else {
            return;
        };
        let _ = tx.send(b.handle());
        b.block_on(async {
            for _ in 0..n {
                let m = b.next_message().await;
                if b.msg_ring(&a_handle, m).await.is_err() {
                    return;
                }
            }
        });
    });
    let to = rx
        .recv()
        .map_err(|_| "the second ring did not start".to_string())?;
    let start = Instant::now();
    a.block_on(async {
        for i in 0..n {
            a.msg_ring(&to, Message::Data(i))
                .await
                .map_err(|e| e.to_string())?;
            drop(a.next_message().await);
        }
        Ok::<_, String>(())
    })?;
    let took = start.elapsed();
    t.join()
        .map_err(|_| "the second ring panicked".to_string())?;
    Ok(Run::new(&a, &[Feature::MsgRing], n, took))
}
