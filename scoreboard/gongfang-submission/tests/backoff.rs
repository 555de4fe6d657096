//! Wrong team tokens are cheap to refuse and back their address off, over real sockets on
//! loopback with the real store: the 21st wrong token from one address within a minute is
//! answered `429` with `Retry-After` over HTTP, and over TCP refused in one line before a token
//! may be sent; a wrong token closes a TCP connection; other addresses carry on; and no wrong
//! token costs an argon2 run. The token of a team taken out of the drill is refused saying
//! why, and never backs its address off.
//!
//! Attackers and teams connect from distinct addresses in 127.0.0.0/8, as they would in a drill.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use gongfang_core::scenario::Identify;
use gongfang_core::throttle::Backoff;
use gongfang_submission::Settings;
use gongfang_submission::tcp::{BANNER_LAST_LINE, DISABLED_TEAM, TOKEN_ACCEPTED, TOKEN_GREETING};
use gongfang_test_support::TestDb;
use gongfang_test_support::http::{Response, read_response};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use common::fixture::{self, ALPHA, BRAVO, LIFETIME};
use common::{App, Client, spawn};

gongfang_test_support::backend_tests!(
    http_the_21st_wrong_token_from_one_address_is_refused_unchecked,
    tcp_a_wrong_token_closes_and_the_21st_address_is_refused_before_its_token,
    one_shared_backoff_counts_for_every_server,
    a_team_out_of_the_drill_is_told_so_and_not_backed_off,
);

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0))).with_context(|| format!("bind {from}"))?;
    Ok(socket.connect(to).await?)
}

/// `PUT /flags` with `token` from the loopback address `from`.
async fn put_flags(app: &App, from: Ipv4Addr, token: &str, flags: &[String]) -> anyhow::Result<Response> {
    let mut stream = connect_from(from, app.http).await?;
    let body = serde_json::to_vec(flags)?;
    let head = format!(
        "PUT /flags HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nX-Team-Token: {token}\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\n\r\n",
        app.http,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    read_response(&mut stream).await
}

/// A TCP client from `from`.
async fn tcp_from(app: &App, from: Ipv4Addr) -> anyhow::Result<Client> {
    let stream = connect_from(from, app.tcp).await?;
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    Ok(Client { reader: BufReader::new(r), writer: w })
}

/// A wrong token of a token's shape: 32 characters of the token alphabet.
fn wrong_token(i: usize) -> String {
    format!("{i:0>32}")
}

fn retry_after(r: &Response) -> anyhow::Result<u64> {
    let secs: u64 = r.header("retry-after").context("429 without Retry-After")?.parse()?;
    ensure!((1..=60).contains(&secs), "Retry-After {secs}");
    Ok(secs)
}

async fn http_the_21st_wrong_token_from_one_address_is_refused_unchecked(db: TestDb) -> anyhow::Result<()> {
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 8, None), Settings::default()).await;
    let argon2_before = gongfang_store::argon2_runs();
    let flag = vec![fixture::flag(9, BRAVO, 1, 0)];
    let (attacker, team) = (loopback(21), loopback(22));
    for i in 0..20 {
        // Well-formed wrong tokens and malformed ones alike.
        let token = if i % 2 == 0 { wrong_token(i) } else { format!("not a token {i}") };
        let r = put_flags(&app, attacker, &token, &flag).await?;
        ensure!(r.status == 401, "wrong token {i}: {} {}", r.status, r.text());
    }
    let r = put_flags(&app, attacker, &wrong_token(99), &flag).await?;
    ensure!(r.status == 429, "the 21st wrong token: {} {}", r.status, r.text());
    retry_after(&r)?;
    ensure!(r.text().contains("try again in"), "{}", r.text());
    // The right token from the backed-off address is not even checked.
    let alpha = app.tokens[&ALPHA].clone();
    let r = put_flags(&app, attacker, &alpha, &flag).await?;
    ensure!(r.status == 429, "a right token from the backed-off address: {} {}", r.status, r.text());
    // The team, from its own address, submits as ever.
    let r = put_flags(&app, team, &alpha, &flag).await?;
    ensure!(r.status == 200, "the team was refused: {} {}", r.status, r.text());
    ensure!(r.json()?[0]["msg"].as_str().is_some_and(|m| m.contains("Accepted")), "{}", r.text());
    ensure!(gongfang_store::argon2_runs() == argon2_before, "a team token ran argon2");
    app.shutdown().await;
    Ok(())
}

async fn tcp_a_wrong_token_closes_and_the_21st_address_is_refused_before_its_token(db: TestDb) -> anyhow::Result<()> {
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 8, None), Settings::default()).await;
    let argon2_before = gongfang_store::argon2_runs();
    let (attacker, team) = (loopback(31), loopback(32));
    for i in 0..20 {
        let mut c = tcp_from(&app, attacker).await?;
        ensure!(c.line().await.as_deref() == Some(TOKEN_GREETING), "no greeting before wrong token {i}");
        c.send(format!("{}\n", wrong_token(i)).as_bytes()).await;
        ensure!(c.line().await.as_deref() == Some("Invalid team token, goodbye"), "wrong token {i}");
        // One token per connection: it is closed, whatever else was sent.
        c.send(b"another guess\n").await;
        ensure!(c.rest().await.is_empty(), "the connection stayed open after a wrong token");
    }
    // The 21st connection from the address gets one line, before any greeting, and is closed.
    let mut c = tcp_from(&app, attacker).await?;
    let line = c.line().await.context("no refusal line")?;
    ensure!(line.starts_with("Too many wrong team tokens from your address, try again in "), "{line}");
    ensure!(c.rest().await.is_empty(), "the backed-off connection stayed open");
    // Another address is greeted and admitted.
    let mut c = tcp_from(&app, team).await?;
    ensure!(c.line().await.as_deref() == Some(TOKEN_GREETING));
    c.send(format!("{}\n", app.tokens[&ALPHA]).as_bytes()).await;
    ensure!(c.line().await.as_deref() == Some(TOKEN_ACCEPTED));
    ensure!(c.banner().await == [BANNER_LAST_LINE, ""]);
    c.send(format!("{}\n", fixture::flag(9, BRAVO, 1, 0)).as_bytes()).await;
    let answer = c.line().await.context("no answer to the flag")?;
    ensure!(answer.contains(" OK"), "{answer}");
    drop(c);
    ensure!(gongfang_store::argon2_runs() == argon2_before, "a team token ran argon2");
    app.shutdown().await;
    Ok(())
}

async fn a_team_out_of_the_drill_is_told_so_and_not_backed_off(db: TestDb) -> anyhow::Result<()> {
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 8, None), Settings::default()).await;
    let slug = app.store.list_teams().await?.into_iter().find(|t| t.team.id == ALPHA).context("alpha")?.team.slug;
    app.store.set_team_disabled(&slug, true, chrono::Utc::now()).await?;
    let flag = vec![fixture::flag(9, BRAVO, 1, 0)];
    let (team, other) = (loopback(41), loopback(42));
    let alpha = app.tokens[&ALPHA].clone();
    // More than the back-off's twenty: the team's own token is never a wrong guess.
    for i in 0..25 {
        let r = put_flags(&app, team, &alpha, &flag).await?;
        ensure!(r.status == 403 && r.text().contains("taken out of the drill"), "try {i}: {} {}", r.status, r.text());
    }
    let r = put_flags(&app, team, &wrong_token(1), &flag).await?;
    ensure!(r.status == 401, "the address was not backed off: {} {}", r.status, r.text());
    let mut c = tcp_from(&app, other).await?;
    ensure!(c.line().await.as_deref() == Some(TOKEN_GREETING));
    c.send(format!("{alpha}\n").as_bytes()).await;
    ensure!(c.line().await.as_deref() == Some(DISABLED_TEAM.trim_end()), "TCP says why");
    ensure!(c.rest().await.is_empty(), "and closes the connection");
    // Brought back, the same token works.
    app.store.set_team_disabled(&slug, false, chrono::Utc::now()).await?;
    let r = put_flags(&app, other, &alpha, &flag).await?;
    ensure!(r.status == 200, "{} {}", r.status, r.text());
    app.shutdown().await;
    Ok(())
}

async fn one_shared_backoff_counts_for_every_server(db: TestDb) -> anyhow::Result<()> {
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 8, None), Settings::default()).await;
    let shared = Arc::new(Backoff::default());
    let _ = app.state.clone().with_backoff(shared.clone());
    let attacker = loopback(41);
    // Failures another server counted (the reports API, say) back the address off here too.
    for _ in 0..20 {
        shared.failed(Some(attacker.into()), None, Instant::now());
    }
    let r = put_flags(&app, attacker, &app.tokens[&ALPHA], &[]).await?;
    ensure!(r.status == 429, "HTTP did not use the shared back-off: {} {}", r.status, r.text());
    let mut c = tcp_from(&app, attacker).await?;
    let line = c.line().await.context("no refusal line")?;
    ensure!(line.starts_with("Too many wrong team tokens"), "TCP did not use the shared back-off: {line}");
    // And wrong tokens here count there.
    let other = loopback(42);
    for i in 0..20 {
        ensure!(put_flags(&app, other, &wrong_token(i), &[]).await?.status == 401);
    }
    ensure!(shared.check(Some(other.into()), None, Instant::now()).is_err(), "HTTP failures were not shared");
    app.shutdown().await;
    Ok(())
}
