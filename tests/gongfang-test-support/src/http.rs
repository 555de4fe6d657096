//! The one HTTP/1.1 client of the tests: a request over a fresh connection to the real listening
//! socket (`Connection: close`), answers read by `Content-Length`, chunks or to the end. Small
//! on purpose: no client crate, and nothing between the test and the server's bytes.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// Longest a request may take, from connecting to the end of the answer.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// An answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("not JSON: {}", self.text()))
    }

    /// The stable code of an error answer (`{"error": {"code": …}}`), or `""`.
    pub fn code(&self) -> String {
        let json = self.json().unwrap_or_default();
        json["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// `GET path`.
pub async fn get<A: ToSocketAddrs + Display>(addr: A, path: &str) -> Result<Response> {
    request(addr, "GET", path, &[], b"").await
}

/// One request with `headers` and `body` (sent with its `Content-Length`) over a fresh
/// connection.
pub async fn request<A: ToSocketAddrs + Display>(
    addr: A,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let host = addr.to_string();
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.with_context(|| format!("connect to {host}"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        // A server may answer (413, say) before it reads a large body and close: the answer is
        // what the test is after, so a failed write of the body is not an error.
        let _ = stream.write_all(body).await;
        read_response(&mut stream).await
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {path} on {host}: no answer within {TIMEOUT:?}"))?
        .with_context(|| format!("{method} {path} on {host}"))
}

/// Reads one answer from `stream`, for tests that write their request by hand.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Response> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = read_some(stream, &mut buf).await;
        ensure!(n > 0, "connection closed before an answer: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = std::str::from_utf8(&raw[..head_end]).context("answer head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {status_line:?}"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut response = Response { status, headers, body: raw[head_end + 4..].to_vec() };
    let length = response.header("content-length").map(str::parse::<usize>).transpose()?;
    let chunked = response.header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    if let Some(n) = length {
        while response.body.len() < n {
            let got = read_some(stream, &mut buf).await;
            ensure!(got > 0, "connection closed inside the body");
            response.body.extend_from_slice(&buf[..got]);
        }
        response.body.truncate(n);
    } else {
        loop {
            let got = read_some(stream, &mut buf).await;
            if got == 0 {
                break;
            }
            response.body.extend_from_slice(&buf[..got]);
        }
        if chunked {
            response.body = dechunk(&response.body)?;
        }
    }
    Ok(response)
}

/// Reads what is there. A reset counts as the end: a server that answers before reading the
/// whole request (413, say) and closes resets the connection, after its answer.
async fn read_some<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> usize {
    stream.read(buf).await.unwrap_or(0)
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").context("chunk size line")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end])?.trim(), 16)?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_and_chunked_answers() {
        let mut plain: &[u8] = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}trailing";
        let answer = read_response(&mut plain).await.unwrap();
        assert_eq!((answer.status, answer.text().as_str()), (201, "{}"));
        let mut chunked: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        let answer = read_response(&mut chunked).await.unwrap();
        assert_eq!(answer.json().unwrap(), serde_json::json!([1, 2]));
        assert_eq!(answer.header("TRANSFER-ENCODING"), Some("chunked"));
    }
}
