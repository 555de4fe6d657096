//! A small HTTP/1.1 client over `std::net`: enough for the platform's JSON API on a drill's
//! network (plain HTTP, one request per connection), with no dependency on a server crate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};

/// The scoreboard server the agent talks to, from `http://HOST[:PORT]`.
#[derive(Debug, Clone)]
pub struct Server {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
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
    pub fn parse(url: &str) -> anyhow::Result<Server> {
        if let Some(rest) = url.strip_prefix("https://") {
            bail!("the agent speaks plain HTTP, as on a drill's network: use http://{rest}");
        }
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("`{url}` is not a server URL; write it as http://HOST:PORT"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("`{url}` should name only the server, as http://HOST:PORT");
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Server { authority })
    }

    /// Sends one request and reads the whole answer.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> anyhow::Result<Answer> {
        let mut stream = TcpStream::connect(&self.authority)
            .with_context(|| format!("cannot reach the server at {}", self.authority))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.authority,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).context("the server closed the connection mid-answer")?;
        parse_answer(&raw)
    }
}

/// Splits a raw HTTP/1.1 answer into status and body (plain or chunked).
fn parse_answer(raw: &[u8]) -> anyhow::Result<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("not an HTTP answer")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in the answer: {head}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Ok(Answer { status, body })
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").context("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(body.len() >= size + 2, "the answer ends inside a chunk");
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_server() {
        assert_eq!(Server::parse("http://10.60.0.1:8080/").unwrap().authority, "10.60.0.1:8080");
        assert_eq!(Server::parse("http://scoreboard").unwrap().authority, "scoreboard:80");
        assert!(Server::parse("https://x").unwrap_err().to_string().contains("plain HTTP"));
        assert!(Server::parse("10.60.0.1:8080").unwrap_err().to_string().contains("http://HOST:PORT"));
        assert!(Server::parse("http://x/api").is_err());
    }

    #[test]
    fn answers_plain_and_chunked() {
        let plain = parse_answer(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((plain.status, plain.text().as_str()), (201, "{}"));
        let chunked =
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(chunked.text(), "[1,2]");
        assert!(parse_answer(b"garbage").is_err());
    }
}
