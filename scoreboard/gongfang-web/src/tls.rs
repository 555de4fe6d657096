//! HTTPS for the scoreboard's port: a certificate chain and its private key, read from PEM
//! files, served with rustls (TLS 1.2 and 1.3, ring). Passwords, tokens and evidence then
//! never cross the drill's network in clear text.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::WebError;

/// The server's certificate and key, ready to accept TLS connections. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("Tls { .. }")
    }
}

impl Tls {
    /// Reads `cert` (the server's certificate first, then any intermediates) and `key` (PKCS#8,
    /// PKCS#1 or SEC1), and checks that they belong together.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, WebError> {
        let bad = |why: String| WebError::Tls(why);
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| bad(format!("cannot read the certificate file {}: {e}", cert.display())))?;
        if certs.is_empty() {
            return Err(bad(format!(
                "{} holds no certificate (-----BEGIN CERTIFICATE-----); give the server's certificate chain in PEM",
                cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            bad(format!("cannot read a private key (PKCS#8, PKCS#1 or SEC1, in PEM) from {}: {e}", key.display()))
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS setup failed: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(format!("the certificate and the key do not make a TLS server: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}
