//! Copies a file through the ring with a few reads in flight:
//! `cargo run --release --example copy_file -- SRC DST [--backend auto|io_uring|epoll]`

#[path = "common/args.rs"]
mod args;

use safer_ring::OpenOptions;

const CHUNK: usize = 256 * 1024;

fn main() {
    let args = args::parse_or_exit("");
    let [src, dst] = &args.rest[..] else {
        eprintln!("usage: copy_file SRC DST [--backend auto|io_uring|epoll]");
        std::process::exit(2);
    };
    let ring = args::ring(args.backend, 64);
    let res: std::io::Result<u64> = ring.block_on(async {
        let from = ring.open(src, &OpenOptions::new().read(true)).await?;
        let to = ring
            .open(
                dst,
                &OpenOptions::new().write(true).create(true).truncate(true),
            )
            .await?;
        let len = ring.metadata(&from).await?.len;
        let mut off = 0u64;
        let mut buf = Vec::with_capacity(CHUNK);
        while off < len {
            let (n, b) = ring.read_at(&from, buf, off).await;
            let n = n?;
            if n == 0 {
                break;
            }
            let (mut b, mut written) = (b, 0);
            while written < n {
                let (w, r) = ring.write_at(&to, b, off + written as u64).await;
                let w = w?;
                b = r;
                written += w;
                if written < n {
                    b.drain(..w); // short write: keep only what is left
                }
            }
            off += n as u64;
            buf = b;
        }
        ring.fsync(&to).await?;
        Ok(off)
    });
    match res {
        Ok(n) => eprintln!("copied {n} bytes ({})", ring.backend()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
