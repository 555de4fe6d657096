//! A small HTTP/1.1 client for checkers: one connection per request, cookies kept between
//! requests (a logged-in user), forms and JSON bodies, and answers that are not HTTP turned
//! into `mumble`.

use std::time::Duration;

use crate::net::{DEFAULT_TIMEOUT, TcpConn, target};
use crate::outcome::unexpected;
use crate::{Ctx, Failure, Outcome};

/// The largest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest response body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// An HTTP client talking to one port of the target, like one browser session.
#[derive(Debug, Clone)]
pub struct Http {
    ctx: Ctx,
    port: u16,
    cookies: Vec<(String, String)>,
    timeout: Duration,
    user_agent: String,
}

/// An HTTP response, body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    what: String,
}

impl Http {
    /// A client for the target's `port`, with no cookies yet.
    pub fn new(ctx: &Ctx, port: u16) -> Http {
        Http {
            ctx: ctx.clone(),
            port,
            cookies: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            user_agent: ctx.rng(0x5eed_0a6e).user_agent().to_owned(),
        }
    }

    /// Changes how long each step of a request may wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The value of cookie `name`, if the service set it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> Outcome<Response> {
        self.request("GET", path, &[], &[])
    }

    /// `POST path` with an `application/x-www-form-urlencoded` body.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Outcome<Response> {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.request("POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes())
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&mut self, path: &str, body: &serde_json::Value) -> Outcome<Response> {
        let body = serde_json::to_vec(body).expect("a JSON value always serialises");
        self.request("POST", path, &[("Content-Type", "application/json")], &body)
    }

    /// Any request. `Host`, `Content-Length`, `Connection`, `User-Agent` and `Cookie` are added.
    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Outcome<Response> {
        let what = format!("{method} {path}");
        let mut conn = TcpConn::connect_addr(target(&self.ctx, self.port), self.timeout)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n",
            host_header(&self.ctx, self.port),
            self.user_agent
        );
        if !self.cookies.is_empty() {
            let jar = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
            head.push_str(&format!("Cookie: {jar}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        conn.send(&request)?;

        let raw_head = conn.read_until(b"\r\n\r\n", MAX_HEAD, &what)?;
        let head = String::from_utf8(raw_head).map_err(|e| unexpected(&what, e.as_bytes()))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = parse_status(status_line).ok_or_else(|| unexpected(&what, status_line.as_bytes()))?;
        let mut response_headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| unexpected(&what, line.as_bytes()))?;
            response_headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = Response { status, headers: response_headers, body: Vec::new(), what };
        response.body = read_body(&mut conn, &response, method)?;
        for (name, value) in &response.headers {
            if name == "set-cookie" {
                self.store_cookie(value);
            }
        }
        Ok(response)
    }

    fn store_cookie(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap_or_default();
        if let Some((name, value)) = pair.split_once('=') {
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            self.cookies.retain(|(n, _)| *n != name);
            if !value.is_empty() {
                self.cookies.push((name, value));
            }
        }
    }
}

fn host_header(ctx: &Ctx, port: u16) -> String {
    match ctx.address {
        std::net::IpAddr::V4(ip) => format!("{ip}:{port}"),
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    (100..600).contains(&code).then_some(code)
}

fn read_body(conn: &mut TcpConn, response: &Response, method: &str) -> Outcome<Vec<u8>> {
    if method == "HEAD" || response.status == 204 || response.status == 304 {
        return Ok(Vec::new());
    }
    let what = &response.what;
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut body = Vec::new();
        loop {
            let size_line = conn.read_until(b"\r\n", 1024, what)?;
            let size_text = String::from_utf8_lossy(&size_line);
            let size_hex = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| unexpected(what, &size_line))?;
            if size == 0 {
                // Trailers, then the empty line that ends the message.
                while !conn.read_until(b"\r\n", MAX_HEAD, what)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(Failure::mumble(format!("answer to {what} is too long")));
            }
            body.extend(conn.read_exact(size, what)?);
            conn.read_until(b"\r\n", 2, what)?;
        }
    }
    match response.header("content-length") {
        Some(len) => {
            let len: usize = len.parse().map_err(|_| unexpected(what, len.as_bytes()))?;
            if len > MAX_BODY {
                return Err(Failure::mumble(format!("answer to {what} is too long")));
            }
            conn.read_exact(len, what)
        }
        None => conn.read_to_end(MAX_BODY, what),
    }
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Fails with `mumble` unless the status is `expected`.
    pub fn expect_status(self, expected: u16) -> Outcome<Response> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(Failure::mumble(format!("{} answered {} instead of {expected}", self.what, self.status))
                .with_private(format!("body: {:?}", String::from_utf8_lossy(&self.body[..self.body.len().min(500)]))))
        }
    }

    /// The body as text; not UTF-8 is `mumble`.
    pub fn text(&self) -> Outcome<&str> {
        std::str::from_utf8(&self.body).map_err(|_| unexpected(&self.what, &self.body))
    }

    /// The body as JSON; not JSON is `mumble`.
    pub fn json(&self) -> Outcome<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Failure::mumble(format!("answer to {} is not JSON", self.what)).with_private(format!("{e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status("HTTP/1.0 404"), Some(404));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status("HTTP/1.1 999 Nope"), None);
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
