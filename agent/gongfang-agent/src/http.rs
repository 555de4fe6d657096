//! The agent's HTTP client: `ureq` over rustls, so the drill's API may sit behind HTTPS (with
//! the web's public roots, or an organisers' own certificate authority given with `--ca-cert`)
//! or be plain HTTP on a drill's closed network. No server crate is linked.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Longest answer the agent reads: a report with its evidence list, a page of keys.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;
/// How long one request may take in all.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The scoreboard server the agent talks to, from `http[s]://HOST[:PORT]`.
#[derive(Debug, Clone)]
pub struct Server {
    /// `http://host:port` or `https://host:port`, without a trailing slash.
    base: String,
    agent: ureq::Agent,
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or the server's error message when the status is not 2xx.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        if !(200..300).contains(&self.status) {
            let message = serde_json::from_slice::<serde_json::Value>(&self.body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| self.text());
            bail!("the server refused ({}): {message}", self.status);
        }
        serde_json::from_slice(&self.body).with_context(|| format!("the server's answer is not JSON: {}", self.text()))
    }
}

impl Server {
    /// The server at `url`; over HTTPS, its certificate must chain to the web's public roots,
    /// or to the certificate authority in the PEM file `ca_cert` when one is given.
    pub fn parse(url: &str, ca_cert: Option<&Path>) -> anyhow::Result<Server> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
            .with_context(|| format!("`{url}` is not a server URL; write it as http://HOST:PORT or https://HOST"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("`{url}` should name only the server, as {scheme}://HOST:PORT");
        }
        if ca_cert.is_some() && scheme == "http" {
            bail!("--ca-cert is for HTTPS: write the server as https://{authority}");
        }
        let mut tls = TlsConfig::builder();
        if let Some(path) = ca_cert {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            let certificate = Certificate::from_pem(&pem).with_context(|| {
                format!("{} is not a PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())
            })?;
            tls = tls.root_certs(RootCerts::new_with_certs(&[certificate]));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Server { base: format!("{scheme}://{authority}"), agent })
    }

    /// Sends one request and reads the whole answer.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<Answer> {
        let mut request = ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let sent = if body.is_empty() {
            self.agent.run(request.body(()).context("a request the agent cannot send")?)
        } else {
            self.agent.run(request.body(body.to_vec()).context("a request the agent cannot send")?)
        };
        let mut response = sent.map_err(|e| {
            // A certificate refused by rustls reaches here as an I/O error that names it.
            let tls =
                matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_)) || e.to_string().contains("certificate");
            if tls {
                anyhow::anyhow!(
                    "the TLS handshake with {} failed ({e}); if the organisers run their own certificate \
                     authority, give its certificate with --ca-cert FILE",
                    self.base
                )
            } else {
                anyhow::anyhow!("cannot reach the server at {}: {e}", self.base)
            }
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .context("the server's answer broke off or is too large")?;
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_server() {
        assert_eq!(Server::parse("http://10.60.0.1:8080/", None).unwrap().base, "http://10.60.0.1:8080");
        assert_eq!(Server::parse("https://scoreboard", None).unwrap().base, "https://scoreboard");
        let no_scheme = Server::parse("10.60.0.1:8080", None).unwrap_err().to_string();
        assert!(no_scheme.contains("http://HOST:PORT or https://HOST"), "{no_scheme}");
        assert!(Server::parse("ftp://x", None).is_err());
        assert!(Server::parse("http://x/api", None).is_err());
        let plain_ca = Server::parse("http://x", Some(Path::new("ca.pem"))).unwrap_err().to_string();
        assert!(plain_ca.contains("--ca-cert is for HTTPS"), "{plain_ca}");
        let missing = Server::parse("https://x", Some(Path::new("/nonexistent/ca.pem"))).unwrap_err().to_string();
        assert!(missing.contains("cannot read the CA certificate"), "{missing}");
    }
}
