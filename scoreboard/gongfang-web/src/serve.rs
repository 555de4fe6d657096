//! The HTTP server under the scoreboard's routes: our own accept loop over hyper, so that every
//! connection is bounded, in number, per source address, and in the time it may take.
//!
//! `axum::serve` accepts every connection and waits forever for a request's head and body, so
//! a few thousand idle or slow clients hold as many file descriptors and tasks as they like.
//! Here:
//!
//! - at most [`WebSettings::max_http_connections`] connections are open at once, and at most
//!   [`WebSettings::max_connections_per_address`] from one source address (an IPv6 client
//!   counts by its /64). A connection over either cap is answered a fixed `503` with
//!   `Connection: close`, written without waiting, and closed: no task, no buffer, no timer.
//!   A bare close would be as cheap, but a browser or script then retries at once and its user
//!   cannot tell a full server from a broken one. The count covers a connection until its
//!   socket closes, websockets included;
//! - a request's head must arrive within [`WebSettings::header_timeout`] (slowloris), its body
//!   within [`WebSettings::body_timeout`] of its head, and a connection with no request in
//!   progress that moves no byte for [`WebSettings::idle_timeout`] is closed;
//! - with a certificate ([`Tls`]), each connection is HTTPS: its TLS handshake must finish
//!   within the head's time, and a client that does not speak TLS is dropped;
//! - every request carries [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo), the peer
//!   address, in its extensions, as `into_make_service_with_connect_info` would put it.
//!
//! On shutdown the loop stops accepting, tells the websockets to say goodbye (the `closing`
//! watch), lets every connection finish the request it is answering, and waits for them, at
//! most [`SHUTDOWN_GRACE`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use gongfang_core::admission::{Admission, Admitted};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::state::WebSettings;
use crate::tls::Tls;

/// How long shutdown waits for connections to finish what they are answering.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What a connection over a cap is told, in full.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\n\
retry-after: 1\r\ncontent-length: 29\r\n\r\ntoo many connections, retry\r\n";

/// Serves `app` on `listener` with the limits of `settings` until `shutdown` resolves; then
/// sets `closing` and drains as the module says.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    settings: WebSettings,
    closing: watch::Sender<bool>,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let admission = Admission::new(settings.max_http_connections, settings.max_connections_per_address);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout).keep_alive(true);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match admission.try_admit(peer.ip()) {
                    Ok(admitted) => {
                        let conn = connection(
                            &http,
                            stream,
                            peer,
                            admitted,
                            app.clone(),
                            settings,
                            closing.subscribe(),
                            tls.clone(),
                        );
                        connections.spawn(conn);
                    }
                    Err(refusal) => {
                        // A fresh socket's send buffer always has room for these few bytes.
                        let _ = stream.try_write(REFUSAL);
                        tracing::debug!(%peer, ?refusal, "web connection refused");
                    }
                },
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a web connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    closing.send_replace(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(left = connections.len(), "web connections still open after the shutdown grace; closing them");
        connections.shutdown().await;
    }
    Ok(())
}

/// One connection: over TLS when the server has a certificate (the handshake bounded like a
/// request's head), then hyper's HTTP/1 with upgrades (the websocket), watched for idleness and
/// for shutdown.
#[allow(clippy::too_many_arguments)]
fn connection(
    http: &hyper::server::conn::http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    app: Router,
    settings: WebSettings,
    mut closing: watch::Receiver<bool>,
    tls: Option<Tls>,
) -> impl Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let http = http.clone();
    async move {
        let stream: Box<dyn Io> = match tls {
            None => Box::new(stream),
            Some(tls) => match tokio::time::timeout(settings.header_timeout, tls.acceptor.accept(stream)).await {
                Ok(Ok(stream)) => Box::new(stream),
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake not finished in time");
                    return;
                }
            },
        };
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked { stream, activity: activity.clone(), _admitted: admitted });
        let service = {
            let activity = activity.clone();
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let request = request.map(|body| Body::new(TimeoutBody::new(body, settings.body_timeout)));
                let mut app = app.clone();
                let busy = Busy::start(&activity);
                async move {
                    let response = app.call(request).await;
                    drop(busy);
                    response
                }
            })
        };
        let conn = http.serve_connection(io, service).with_upgrades();
        tokio::pin!(conn);
        // Until the connection ends, is idle too long, or the server closes.
        let until = loop {
            let idle_at = activity.idle_since() + settings.idle_timeout;
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "web connection ended");
                    }
                    return;
                }
                () = tokio::time::sleep_until(idle_at) => {
                    if activity.is_idle_for(settings.idle_timeout) {
                        tracing::debug!(%peer, "closing an idle web connection");
                        break settings.idle_timeout;
                    }
                }
                _ = closing.wait_for(|c| *c) => break SHUTDOWN_GRACE,
            }
        };
        // Finishes the answer in progress, if any, then closes; a client that does not take
        // it within the grace is dropped.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(until, conn).await;
    }
}

/// When a connection last moved a byte, and how many of its requests are being answered.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last byte read or written.
    last: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: Instant::now(), last: AtomicU64::new(0), busy: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    fn idle_since(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    fn is_idle_for(&self, timeout: Duration) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && self.idle_since() + timeout <= Instant::now()
    }
}

/// Held while a request is answered: a slow handler is not an idle connection.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's byte stream: the TCP socket, or the TLS session over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Io for S {}

/// The stream, noting every byte moved, and holding the connection's admission for as long as
/// it is open: after a websocket upgrade the socket outlives hyper's connection.
struct Tracked {
    stream: Box<dyn Io>,
    activity: Arc<Activity>,
    _admitted: Admitted,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result
            && n > 0
        {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result
            && n > 0
        {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that must be complete within a deadline counted from the request's head, so
/// a client dripping its body a byte at a time cannot hold a handler (and its connection).
/// Past the deadline it ends in an error, which the extractors answer `400`.
struct TimeoutBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

/// Why a body ended early.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
struct BodyTimedOut(Duration);

impl TimeoutBody {
    fn new(inner: Incoming, timeout: Duration) -> TimeoutBody {
        TimeoutBody { inner, deadline: Box::pin(tokio::time::sleep(timeout)), timeout }
    }
}

impl HttpBody for TimeoutBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
    }
}
