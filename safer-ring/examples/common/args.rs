//! Tiny argument parsing shared by the examples: `--addr HOST:PORT`, `--backend NAME`.

use safer_ring::{BackendKind, Ring, SaferRingConfig, TcpListener};

pub struct Args {
    pub addr: String,
    pub backend: BackendKind,
    pub rest: Vec<String>,
}

pub fn parse(default_addr: &str) -> Result<Args, String> {
    let mut args = Args {
        addr: default_addr.into(),
        backend: BackendKind::Auto,
        rest: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--addr" => args.addr = it.next().ok_or("--addr needs HOST:PORT")?,
            "--backend" => {
                let v = it.next().ok_or("--backend needs auto|io_uring|epoll")?;
                args.backend = v.parse().map_err(|e| format!("{e}"))?;
            }
            _ => args.rest.push(a),
        }
    }
    Ok(args)
}

/// The configuration for `backend` (`auto` leaves the choice to SAFER_RING_BACKEND, then
/// io_uring-if-it-works).
pub fn config(backend: BackendKind, entries: u32) -> SaferRingConfig {
    let cfg = SaferRingConfig::default().entries(entries);
    if backend == BackendKind::Auto {
        cfg
    } else {
        cfg.backend(backend)
    }
}

#[allow(dead_code)] // http_hello builds its rings through PerCore
pub fn ring(backend: BackendKind, entries: u32) -> Ring {
    match Ring::with_config(config(backend, entries)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// Listens on `addr` (exits with the reason if it cannot) and says where, as `what`.
#[allow(dead_code)] // copy_file listens on nothing
pub fn listen(ring: &Ring, addr: &str, what: &str) -> TcpListener {
    let listener = ring.bind_tcp(addr).unwrap_or_else(|e| {
        eprintln!("error: cannot bind {addr}: {e}");
        std::process::exit(1);
    });
    let at = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    eprintln!("{what} on {at} ({})", ring.backend());
    listener
}

/// Exits with a usage error.
#[allow(dead_code)] // not every example takes extra arguments
pub fn usage_error(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}

pub fn parse_or_exit(default_addr: &str) -> Args {
    parse(default_addr).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    })
}
