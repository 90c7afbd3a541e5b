//! TLS (rustls through tokio-rustls, ring provider, self-signed certificate from rcgen) over
//! adapter-wrapped safer-ring TCP streams: server and client on one ring, both backends,
//! byte-exact echo, and a clean close_notify + EOF at the end. Not on musl (no TLS
//! dev-dependencies there: see Cargo.toml).

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A server and a client configuration that trust one fresh self-signed certificate for
/// "localhost".
fn configs() -> (TlsAcceptor, TlsConnector) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

backend_test!(tls_echo_over_the_adapter, |ring| {
    const TOTAL: usize = 1 << 20;
    let (acceptor, connector) = configs();
    let listener = ring.bind_tcp("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    ring.block_on(async {
        let server = {
            let ring = ring.clone();
            ring.clone().spawn(async move {
                let (stream, _) = ring.accept(&listener).await.unwrap();
                let mut tls = acceptor.accept(ring.compat(stream)).await.unwrap();
                let mut buf = vec![0u8; 10_000];
                let mut total = 0;
                loop {
                    let n = tls.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break; // the client's close_notify
                    }
                    tls.write_all(&buf[..n]).await.unwrap();
                    tls.flush().await.unwrap();
                    total += n;
                }
                tls.shutdown().await.unwrap();
                total
            })
        };
        let stream = ring.connect_tcp(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, ring.compat(stream)).await.unwrap();
        let data: Vec<u8> = (0..TOTAL)
            .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
            .collect();
        let mut back = Vec::with_capacity(TOTAL);
        for part in data.chunks(50_000) {
            tls.write_all(part).await.unwrap();
            tls.flush().await.unwrap();
            let start = back.len();
            back.resize(start + part.len(), 0);
            tls.read_exact(&mut back[start..]).await.unwrap();
        }
        tls.shutdown().await.unwrap();
        let mut tail = Vec::new();
        tls.read_to_end(&mut tail).await.unwrap();
        assert!(tail.is_empty(), "{} bytes after the echo", tail.len());
        assert_eq!(server.await.unwrap(), TOTAL);
        assert!(back == data, "the TLS echo differs from what was sent");
        // The stream comes back out of TLS and the adapter once everything is done.
        let (compat, _) = tls.into_inner();
        assert!(!compat.is_busy());
        compat.into_inner().unwrap();
    });
});
