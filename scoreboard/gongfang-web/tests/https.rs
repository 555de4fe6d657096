//! The scoreboard's port over HTTPS, on loopback with a certificate of the organisers' own
//! authority (made with `openssl`): a client that trusts it reads the API; a client speaking
//! plain HTTP, or one that never finishes its handshake, gets no answer and is dropped;
//! certificates and keys that cannot serve are refused with the file they came from.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::*;
use gongfang_test_support::http::read_response;
use gongfang_test_support::tls::certificates;
use gongfang_web::{Tls, WebSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::{TlsConnector, rustls};

/// A TLS client that trusts only the certificate authority in `ca`.
fn connector(ca: &std::path::Path) -> Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca)?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[tokio::test]
async fn the_port_speaks_https_only() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = certificates(dir.path());
    let settings = WebSettings { header_timeout: Duration::from_millis(500), ..WebSettings::default() };
    let app = App::start_https(Tls::from_pem_files(&certs.cert, &certs.key)?, settings).await?;

    let tcp = TcpStream::connect(app.addr).await?;
    let mut tls = connector(&certs.ca)?.connect(ServerName::try_from("localhost")?, tcp).await?;
    tls.write_all(b"GET /api/scoreboard HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await?;
    let answer = read_response(&mut tls).await?;
    ensure!(answer.status == 200, "{}", answer.text());
    ensure!(answer.json()?["teams"].as_array().is_some_and(|t| !t.is_empty()), "{}", answer.text());

    // Plain HTTP to the HTTPS port: no HTTP answer, the connection closed.
    let mut plain = TcpStream::connect(app.addr).await?;
    plain.write_all(b"GET /api/scoreboard HTTP/1.1\r\nhost: localhost\r\n\r\n").await?;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut got)).await.context("never closed")??;
    ensure!(!got.starts_with(b"HTTP/"), "plain HTTP was answered: {}", String::from_utf8_lossy(&got));

    // A client that connects and never starts its handshake is dropped after the head's time.
    let mut silent = TcpStream::connect(app.addr).await?;
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut byte)).await;
    ensure!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "a silent client is dropped: {closed:?}");

    // The server still serves after both.
    let tcp = TcpStream::connect(app.addr).await?;
    let mut tls = connector(&certs.ca)?.connect(ServerName::try_from("localhost")?, tcp).await?;
    tls.write_all(b"GET /api/announcements HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await?;
    ensure!(read_response(&mut tls).await?.status == 200);
    app.stop().await
}

#[tokio::test]
async fn unusable_certificates_are_refused_naming_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = certificates(dir.path());
    // The CA's key does not belong to the server's certificate.
    let wrong_key = Tls::from_pem_files(&certs.cert, &dir.path().join("ca.key")).unwrap_err().to_string();
    ensure!(wrong_key.contains("do not make a TLS server"), "{wrong_key}");
    // A key given as the certificate.
    let no_cert = Tls::from_pem_files(&certs.key, &certs.key).unwrap_err().to_string();
    ensure!(no_cert.contains("holds no certificate") && no_cert.contains("server.key"), "{no_cert}");
    let missing = Tls::from_pem_files(&dir.path().join("nope.pem"), &certs.key).unwrap_err().to_string();
    ensure!(missing.contains("cannot read the certificate file") && missing.contains("nope.pem"), "{missing}");
    let no_key = Tls::from_pem_files(&certs.cert, &certs.cert).unwrap_err().to_string();
    ensure!(no_key.contains("cannot read a private key"), "{no_key}");
    Ok(())
}
