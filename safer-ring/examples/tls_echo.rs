//! TLS echo over safer-ring through the poll-based adapter (`ring.compat(stream)`) and
//! tokio-rustls, with a self-signed certificate made at start: the server echoes every
//! connection; a client in the same process sends a line through it and prints the echo.
//!
//! `cargo run --release --features tokio --example tls_echo -- --addr 127.0.0.1:7443 --backend auto`
//!
//! Not on musl targets, where the TLS dev-dependencies are not built (see Cargo.toml).

#[cfg(not(target_env = "musl"))]
#[path = "common/args.rs"]
mod args;

#[cfg(not(target_env = "musl"))]
mod tls {
    use super::args;
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        let args = args::parse_or_exit("127.0.0.1:7443");
        let ring = args::ring(args.backend, 256);
        let listener = args::listen(&ring, &args.addr, "tls echo");
        let addr = listener.local_addr()?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
        let cert = certified.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(key))?;
        let acceptor = TlsAcceptor::from(Arc::new(server));
        let mut roots = RootCertStore::empty();
        roots.add(cert)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = TlsConnector::from(Arc::new(client));

        ring.block_on(async {
            let r = ring.clone(); // a RingRef: tasks do not keep the ring alive
            drop(ring.spawn(async move {
                loop {
                    let Ok((stream, _)) = r.accept(&listener).await else {
                        continue;
                    };
                    let (r, acceptor) = (r.clone(), acceptor.clone());
                    drop(r.clone().spawn(async move {
                        let Ok(tls) = acceptor.accept(r.compat(stream)).await else {
                            return;
                        };
                        // Echo until the client's close_notify, then close ours.
                        let (mut rd, mut wr) = tokio::io::split(tls);
                        if tokio::io::copy(&mut rd, &mut wr).await.is_ok() {
                            let _ = wr.shutdown().await;
                        }
                    }));
                }
            }));

            let stream = ring.connect_tcp(addr).await?;
            let name = ServerName::try_from("localhost")?;
            let mut tls = connector.connect(name, ring.compat(stream)).await?;
            tls.write_all(b"hello over TLS on safer-ring\n").await?;
            tls.flush().await?;
            let mut line = String::new();
            BufReader::new(&mut tls).read_line(&mut line).await?;
            print!("echo: {line}");
            tls.shutdown().await?;
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await?;
            Ok(())
        })
    }
}

#[cfg(not(target_env = "musl"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    tls::main()
}

#[cfg(target_env = "musl")]
fn main() {
    eprintln!("error: tls_echo is not built for musl targets (no TLS dev-dependencies there)");
    std::process::exit(1);
}
