//! Who may ask what, under abuse, over real HTTP on 127.0.0.1 with the real store (SQLite
//! always, PostgreSQL when configured): HTTP basic credentials only at the login, sessions from
//! the database that end at logout or when their account changes, and the failure back-off —
//! the 21st wrong credential from one address and the 6th wrong password for one judge within
//! a minute are answered 429 with `Retry-After`, while other addresses and judges carry on.
//!
//! Clients connect from chosen loopback addresses (127.0.0.0/8), as teams and attackers do
//! from their own addresses in a drill.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Context as _, ensure};
use gongfang_core::AccountRole;
use gongfang_test_support::http::{Response, read_response};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use common::*;

gongfang_test_support::backend_tests!(
    setup = common::spawn;
    basic_credentials_work_at_the_login_only,
    logout_ends_the_session,
    a_session_ends_when_its_account_is_deleted_or_changes_role,
    the_21st_wrong_credential_from_one_address_is_refused_unchecked,
    the_6th_wrong_password_for_one_judge_is_refused_unchecked,
);

/// One request over a fresh connection from the loopback address `from`.
async fn request_from(
    from: Ipv4Addr,
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0))).with_context(|| format!("bind {from}"))?;
    let mut stream = socket.connect(to).await?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    read_response(&mut stream).await
}

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A `Retry-After` of whole seconds within the one-minute window.
fn retry_after(r: &Response) -> anyhow::Result<u64> {
    let secs: u64 = r.header("retry-after").context("429 without Retry-After")?.parse()?;
    ensure!((1..=60).contains(&secs), "Retry-After {secs}");
    Ok(secs)
}

async fn basic_credentials_work_at_the_login_only(app: App) -> anyhow::Result<()> {
    let ana = basic(ANA.0, ANA.1);
    for (method, path) in [
        ("GET", "/api/judge/queue"),
        ("GET", "/api/judge/reports"),
        ("GET", "/api/judge/reports/1"),
        ("POST", "/api/judge/reports/1/ruling"),
        ("POST", "/api/judge/logout"),
        ("GET", "/api/reports/1"),
    ] {
        let r = app.request(method, path, &[(ana.0, &ana.1)], b"").await;
        ensure!(r.status == 401 && r.code() == "login_first", "{method} {path}: {} {}", r.status, r.text());
        let message = r.json()?["error"]["message"].as_str().unwrap_or_default().to_owned();
        ensure!(message.contains("POST /api/judge/login") && message.contains("Bearer"), "{message}");
    }
    // The same credentials log in, by Basic or by JSON, and the session works.
    let login = app.request("POST", "/api/judge/login", &[(ana.0, &ana.1)], b"").await;
    ensure!(login.status == 200 && login.json()?["judge"] == "ana", "{}", login.text());
    let body = json!({ "name": ANA.0, "password": ANA.1 }).to_string();
    let by_json =
        app.request("POST", "/api/judge/login", &[("Content-Type", "application/json")], body.as_bytes()).await;
    ensure!(by_json.status == 200, "{}", by_json.text());
    let token = login.json()?["token"].as_str().context("no token")?.to_owned();
    let bearer = format!("Bearer {token}");
    let queue = app.request("GET", "/api/judge/queue", &[("Authorization", &bearer)], b"").await;
    ensure!(queue.status == 200, "{}", queue.text());
    // The session is in the database.
    let now = *app.clock.0.lock().unwrap();
    ensure!(app.store.session_account(&token, now).await?.is_some_and(|a| a.name == "ana"), "not stored");
    app.stop().await;
    Ok(())
}

async fn logout_ends_the_session(app: App) -> anyhow::Result<()> {
    let (name, first) = judge_auth(&app, ANA).await;
    let (_, second) = judge_auth(&app, ANA).await;
    ensure!(app.request("GET", "/api/judge/queue", &[(name, &first)], b"").await.status == 200);
    let out = app.request("POST", "/api/judge/logout", &[(name, &first)], b"").await;
    ensure!(out.status == 204, "{} {}", out.status, out.text());
    let after = app.request("GET", "/api/judge/queue", &[(name, &first)], b"").await;
    ensure!(after.status == 401 && after.code() == "bad_session", "{}", after.text());
    let again = app.request("POST", "/api/judge/logout", &[(name, &first)], b"").await;
    ensure!(again.status == 401 && again.code() == "bad_session", "{}", again.text());
    // Another login of the same judge is another session.
    ensure!(app.request("GET", "/api/judge/queue", &[(name, &second)], b"").await.status == 200);
    // A team cannot log out: it has no session.
    let team = team_auth(&app, RED_FIRM);
    let r = app.request("POST", "/api/judge/logout", &[(team.0, &team.1)], b"").await;
    ensure!(r.status == 403 && r.code() == "judges_only", "{}", r.text());
    app.stop().await;
    Ok(())
}

async fn a_session_ends_when_its_account_is_deleted_or_changes_role(app: App) -> anyhow::Result<()> {
    let (name, ana) = judge_auth(&app, ANA).await;
    let (_, bo) = judge_auth(&app, BO).await;
    ensure!(app.store.set_account_role(ANA.0, AccountRole::Organiser).await?);
    let r = app.request("GET", "/api/judge/queue", &[(name, &ana)], b"").await;
    ensure!(r.status == 401 && r.code() == "bad_session", "a judge made organiser kept her session: {}", r.text());
    ensure!(app.store.delete_account(BO.0).await?);
    let r = app.request("GET", "/api/judge/queue", &[(name, &bo)], b"").await;
    ensure!(r.status == 401 && r.code() == "bad_session", "a deleted judge kept his session: {}", r.text());
    app.stop().await;
    Ok(())
}

async fn the_21st_wrong_credential_from_one_address_is_refused_unchecked(app: App) -> anyhow::Result<()> {
    let (attacker, team) = (loopback(21), loopback(22));
    let to = app.addr;
    let wrong = "A".repeat(32);
    // Twenty wrong credentials of every kind: team tokens, session tokens, a wrong password for
    // twenty different names (so no account reaches its own limit).
    for i in 0..20 {
        let r = match i % 3 {
            0 => request_from(attacker, to, "GET", "/api/reports", &[("X-Team-Token", &wrong)], b"").await?,
            1 => {
                let forged = format!("Bearer {}", "0".repeat(64));
                request_from(attacker, to, "GET", "/api/judge/queue", &[("Authorization", &forged)], b"").await?
            }
            _ => {
                let guess = basic(&format!("user{i}"), "guess");
                request_from(attacker, to, "POST", "/api/judge/login", &[(guess.0, &guess.1)], b"").await?
            }
        };
        ensure!(r.status == 401, "wrong credential {i}: {} {}", r.status, r.text());
    }
    // The 21st is refused without being checked: even a right token is.
    let right = app.token(RED_FIRM);
    for headers in [[("X-Team-Token", wrong.as_str())], [("X-Team-Token", right.as_str())]] {
        let r = request_from(attacker, to, "GET", "/api/reports", &headers, b"").await?;
        ensure!(r.status == 429 && r.code() == "backed_off", "{} {}", r.status, r.text());
        retry_after(&r)?;
    }
    let ana = basic(ANA.0, ANA.1);
    let r = request_from(attacker, to, "POST", "/api/judge/login", &[(ana.0, &ana.1)], b"").await?;
    ensure!(r.status == 429, "a login from the backed-off address: {} {}", r.status, r.text());
    // Another address is not affected.
    let r = request_from(team, to, "GET", "/api/reports", &[("X-Team-Token", &right)], b"").await?;
    ensure!(r.status == 200, "another address was refused: {} {}", r.status, r.text());
    let r = request_from(team, to, "POST", "/api/judge/login", &[(ana.0, &ana.1)], b"").await?;
    ensure!(r.status == 200, "ana from another address: {} {}", r.status, r.text());
    app.stop().await;
    Ok(())
}

async fn the_6th_wrong_password_for_one_judge_is_refused_unchecked(app: App) -> anyhow::Result<()> {
    let to = app.addr;
    let wrong = basic(ANA.0, "not the password");
    // Five wrong passwords for ana, each from an address of its own.
    for i in 0..5 {
        let r = request_from(loopback(30 + i), to, "POST", "/api/judge/login", &[(wrong.0, &wrong.1)], b"").await?;
        ensure!(r.status == 401 && r.code() == "bad_credentials", "attempt {i}: {}", r.text());
    }
    // The sixth, from yet another address, is refused unchecked; so is the right password.
    let r = request_from(loopback(40), to, "POST", "/api/judge/login", &[(wrong.0, &wrong.1)], b"").await?;
    ensure!(r.status == 429 && r.code() == "backed_off", "{} {}", r.status, r.text());
    retry_after(&r)?;
    let right = basic(ANA.0, ANA.1);
    let r = request_from(loopback(41), to, "POST", "/api/judge/login", &[(right.0, &right.1)], b"").await?;
    ensure!(r.status == 429, "ana's right password during her back-off: {} {}", r.status, r.text());
    // Another judge logs in from the same addresses; teams are not affected.
    let bo = basic(BO.0, BO.1);
    let r = request_from(loopback(40), to, "POST", "/api/judge/login", &[(bo.0, &bo.1)], b"").await?;
    ensure!(r.status == 200, "bo was refused: {} {}", r.status, r.text());
    let token = app.token(RED_FIRM);
    let r = request_from(loopback(30), to, "GET", "/api/reports", &[("X-Team-Token", &token)], b"").await?;
    ensure!(r.status == 200, "a team was refused: {} {}", r.status, r.text());
    app.stop().await;
    Ok(())
}
