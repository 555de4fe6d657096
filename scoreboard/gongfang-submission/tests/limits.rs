//! The TCP server's connection caps before a team is known: per source address and in all.
//! Connections over a cap are told so in one line and closed, other addresses keep connecting,
//! and refused connections take no slot, so once the open ones close a team submits again.
//! Clients use distinct loopback addresses (127.0.0.0/8), as attackers and teams would.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::fixture::{self, ALPHA, BRAVO, LIFETIME};
use common::{Client, spawn};
use gongfang_core::scenario::Identify;
use gongfang_submission::Settings;
use gongfang_submission::tcp::{BANNER_LAST_LINE, TOKEN_ACCEPTED, TOKEN_GREETING};
use gongfang_test_support::TestDb;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;

/// The whole test, however the server misbehaves.
const LIMIT: Duration = Duration::from_secs(60);

/// Connects to `server` from the loopback address `source`.
async fn connect_from(source: &str, server: SocketAddr) -> Client {
    let source: IpAddr = source.parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).expect("bind a loopback source address");
    let stream = socket.connect(server).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, w) = stream.into_split();
    Client { reader: BufReader::new(r), writer: w }
}

/// Connects from `source`: `Ok` with the greeted client if admitted, else the refusal line
/// (after which the server has closed the connection).
async fn open(source: &str, server: SocketAddr) -> Result<Client, String> {
    let mut c = connect_from(source, server).await;
    let line = c.line().await.expect("a first line");
    if line == TOKEN_GREETING {
        Ok(c)
    } else {
        assert_eq!(c.rest().await, "", "a refused connection is closed after one line");
        Err(line)
    }
}

/// Closes each connection and waits until the server has closed its side too.
async fn close_all(clients: Vec<Client>) {
    for mut c in clients {
        c.writer.shutdown().await.unwrap();
        let _ = c.rest().await;
    }
}

/// Submits `flag` from `source` with `token`: the answer line.
async fn submit(source: &str, server: SocketAddr, token: &str, flag: &str) -> String {
    let mut c = open(source, server).await.expect("admitted");
    c.send(format!("{token}\n{flag}\n").as_bytes()).await;
    assert_eq!(c.line().await.as_deref(), Some(TOKEN_ACCEPTED));
    assert_eq!(c.banner().await, [BANNER_LAST_LINE, ""]);
    let answer = c.line().await.expect("an answer to the flag");
    close_all(vec![c]).await;
    answer
}

fn settings(max_connections: usize, max_connections_per_address: usize) -> Settings {
    Settings { max_connections, max_connections_per_address, ..Settings::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_over_its_cap_is_refused_while_another_address_connects() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 8, None), settings(100, 3)).await;
    let alpha = app.tokens[&ALPHA].clone();
    let flag = fixture::flag(10, BRAVO, 1, 0);
    tokio::time::timeout(LIMIT, async {
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(open("127.0.0.1", app.tcp).await.expect("within the per-address cap"));
        }
        let refused = open("127.0.0.1", app.tcp).await.err();
        assert_eq!(refused.as_deref(), Some("Too many connections from your address (at most 3), goodbye"));
        // Another source address is not affected, and scores.
        assert_eq!(submit("127.0.0.2", app.tcp, &alpha, &flag).await, format!("{flag} OK Accepted"));
        close_all(held).await;
    })
    .await
    .expect("the test finishes in time");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_over_its_global_cap_refuses_every_address() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 8, None), settings(4, 100)).await;
    tokio::time::timeout(LIMIT, async {
        let mut held = Vec::new();
        for source in ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"] {
            held.push(open(source, app.tcp).await.expect("within the global cap"));
        }
        for source in ["127.0.0.1", "127.0.0.3"] {
            let refused = open(source, app.tcp).await.err();
            assert_eq!(refused.as_deref(), Some("Too many connections to the server (at most 4), try again later"));
        }
        // One closes: one more is admitted, from anywhere.
        close_all(held.split_off(3)).await;
        held.push(open("127.0.0.3", app.tcp).await.expect("a freed slot"));
        assert!(open("127.0.0.4", app.tcp).await.is_err(), "full again");
        close_all(held).await;
    })
    .await
    .expect("the test finishes in time");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_give_their_slot_back() {
    const PER_ADDRESS: usize = 3;
    const BURST: usize = 20;
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 8, None), settings(5, PER_ADDRESS)).await;
    let alpha = app.tokens[&ALPHA].clone();
    let flag = fixture::flag(10, BRAVO, 1, 0);
    tokio::time::timeout(LIMIT, async {
        // All at once, as a farm's threads would, from one address.
        let attempts = futures_join_all((0..BURST).map(|_| open("127.0.0.1", app.tcp))).await;
        let (admitted, refused): (Vec<_>, Vec<_>) = attempts.into_iter().partition(Result::is_ok);
        assert_eq!((admitted.len(), refused.len()), (PER_ADDRESS, BURST - PER_ADDRESS));
        close_all(admitted.into_iter().map(Result::unwrap).collect()).await;
        // Nothing is open now: the whole cap is free again for that address.
        let mut again = Vec::new();
        for _ in 0..PER_ADDRESS - 1 {
            again.push(open("127.0.0.1", app.tcp).await.expect("slots given back"));
        }
        assert_eq!(submit("127.0.0.1", app.tcp, &alpha, &flag).await, format!("{flag} OK Accepted"));
        close_all(again).await;
    })
    .await
    .expect("the test finishes in time");
    assert_eq!(common::stored(&app.store, common::NOW).await, vec![(ALPHA, flag)]);
    app.shutdown().await;
}

/// Runs the futures concurrently, results in order.
async fn futures_join_all<F: Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("a client task"));
    }
    out
}
