//! The HTTP server's bounds, with raw HTTP/1.1 clients on real loopback sockets: connections
//! capped per source address and in all (over a cap: a `503` and a close, while other
//! addresses are answered), slowloris heads, dripping bodies and idle keep-alive connections
//! closed after their timeouts, and the peer address handed to every request. Clients bind
//! distinct loopback addresses (127.0.0.0/8), as attackers and spectators would have.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use common::*;
use gongfang_test_support::TestDb;
use gongfang_web::{WebSettings, WebState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};

/// Long enough never to fire during a test.
const NEVER: Duration = Duration::from_secs(3600);
/// Short enough to fire within a test.
const SHORT: Duration = Duration::from_millis(300);

/// Settings with every timeout out of the way; each test shortens what it tests.
fn settings() -> WebSettings {
    WebSettings { header_timeout: NEVER, body_timeout: NEVER, idle_timeout: NEVER, ..WebSettings::default() }
}

/// Connects to `server` from the loopback address `source`.
async fn connect_from(source: &str, server: SocketAddr) -> Result<TcpStream> {
    let source: IpAddr = source.parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0)).context("bind a loopback source address")?;
    Ok(tokio::time::timeout(WAIT, socket.connect(server)).await.context("connect timed out")??)
}

/// A response's status and body.
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
}

/// Reads one response with a `content-length` off a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> Result<Response> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0; 4096];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await.context("no response in time")??;
        ensure!(n > 0, "connection closed before a response head; got {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split(' ').nth(1).context("a status line")?.parse()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .with_context(|| format!("no content-length in {head:?}"))?
        .parse()?;
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0; length - body.len()];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await.context("body in time")??;
        ensure!(n > 0, "connection closed inside a body");
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
}

/// Sends `GET path` on a keep-alive connection and reads the answer.
async fn get_on(stream: &mut TcpStream, path: &str) -> Result<Response> {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: scoreboard\r\n\r\n").as_bytes()).await?;
    read_response(stream).await
}

/// Opens a connection from `source` and has one request answered on it; it stays open.
async fn open(source: &str, server: SocketAddr) -> Result<TcpStream> {
    let mut stream = connect_from(source, server).await?;
    let response = get_on(&mut stream, "/static/app.css").await?;
    ensure!(response.status == 200, "{response:?}");
    Ok(stream)
}

/// Everything the server sends until it closes the connection (a reset counts as a close).
async fn until_closed(stream: &mut TcpStream) -> Result<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(WAIT, stream.read_to_end(&mut out)).await.context("the server keeps it open")? {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => bail!("reading: {e}"),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Connects from `source` without sending anything: the refusal, if the server refuses.
async fn refusal(source: &str, server: SocketAddr) -> Result<String> {
    let mut stream = connect_from(source, server).await?;
    until_closed(&mut stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_over_its_cap_is_refused_while_another_is_answered() -> Result<()> {
    let app = App::start(16, WebSettings { max_connections_per_address: 3, ..settings() }).await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(open("127.0.0.1", app.addr).await?);
    }
    let refused = refusal("127.0.0.1", app.addr).await?;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused:?}");
    assert!(refused.contains("too many connections"), "{refused:?}");
    // Another address is answered, and the held connections still are.
    let mut other = open("127.0.0.2", app.addr).await?;
    assert_eq!(get_on(&mut other, "/static/app.css").await?.status, 200);
    assert_eq!(get_on(&mut held[0], "/static/app.css").await?.status, 200);
    // A closed connection gives its slot back.
    drop(held.pop());
    eventually("a slot given back", || async { Ok(open("127.0.0.1", app.addr).await.ok()) }).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_over_its_global_cap_refuses_every_address() -> Result<()> {
    let app = App::start(16, WebSettings { max_http_connections: 2, ..settings() }).await?;
    let _a = open("127.0.0.1", app.addr).await?;
    let _b = open("127.0.0.2", app.addr).await?;
    let refused = refusal("127.0.0.3", app.addr).await?;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused:?}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_too_slowly_is_closed() -> Result<()> {
    let app = App::start(16, WebSettings { header_timeout: SHORT, ..settings() }).await?;
    // Half a head, then nothing: the server closes without answering a request.
    let mut slow = connect_from("127.0.0.1", app.addr).await?;
    slow.write_all(b"GET /static/app.css HTTP/1.1\r\nhost: scoreboard\r\n").await?;
    let answer = until_closed(&mut slow).await?;
    assert!(!answer.contains("200 OK"), "{answer:?}");
    // A whole head is answered as ever.
    open("127.0.0.1", app.addr).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() -> Result<()> {
    let app = App::start(16, WebSettings { idle_timeout: SHORT, ..settings() }).await?;
    let mut idle = open("127.0.0.1", app.addr).await?;
    // Answered, kept alive, then closed once nothing moves.
    assert_eq!(until_closed(&mut idle).await?, "");
    app.stop().await
}

/// A scoreboard with two more routes: the peer address a request carries, and a body reader.
async fn start_with_probe(settings: WebSettings) -> Result<(SocketAddr, oneshot::Sender<()>, TestDb)> {
    let db = TestDb::sqlite().await;
    let (events, _) = broadcast::channel(16);
    let (_clock, clock_rx) = watch::channel(clock_at(2));
    let state = WebState::new(Arc::new(scenario()), db.store.clone(), events, clock_rx, endpoints(), settings);
    let extra = Router::new()
        .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }))
        .route("/upload", post(|body: Bytes| async move { body.len().to_string() }));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gongfang_web::serve_with(listener, state, extra, async move {
        let _ = stopped.await;
    }));
    Ok((addr, stop, db))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_its_peer_address() -> Result<()> {
    let (addr, _stop, _db) = start_with_probe(settings()).await?;
    let mut stream = connect_from("127.0.0.2", addr).await?;
    let local = stream.local_addr()?;
    let response = get_on(&mut stream, "/peer").await?;
    assert_eq!((response.status, response.body), (200, local.to_string()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_fails_the_request() -> Result<()> {
    let (addr, _stop, _db) = start_with_probe(WebSettings { body_timeout: SHORT, ..settings() }).await?;
    let mut whole = connect_from("127.0.0.1", addr).await?;
    whole.write_all(b"POST /upload HTTP/1.1\r\nhost: scoreboard\r\ncontent-length: 5\r\n\r\nflags").await?;
    let response = read_response(&mut whole).await?;
    assert_eq!((response.status, response.body.as_str()), (200, "5"));
    // Ten bytes of a hundred, then nothing.
    let mut slow = connect_from("127.0.0.1", addr).await?;
    slow.write_all(b"POST /upload HTTP/1.1\r\nhost: scoreboard\r\ncontent-length: 100\r\n\r\n0123456789").await?;
    let response = read_response(&mut slow).await?;
    assert_eq!(response.status, 400, "{response:?}");
    Ok(())
}
