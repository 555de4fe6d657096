//! A team's TCP connection cap: at most `max_connections` of its connections are admitted at
//! once, the rest are refused, and once they are closed the team connects and submits again,
//! however many of its connections were refused.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::fixture::{self, ALPHA, BRAVO, CHARLIE, LIFETIME};
use common::{Client, spawn};
use gongfang_core::scenario::Identify;
use gongfang_submission::Settings;
use gongfang_submission::tcp::{BANNER_LAST_LINE, TOKEN_ACCEPTED, TOKEN_GREETING};
use gongfang_test_support::TestDb;
use tokio::io::AsyncWriteExt;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// The demo's cap.
const CAP: usize = 8;
/// Connections one team opens at once: five times its cap, as a farm's threads would.
const BURST: usize = 5 * CAP;
/// The whole test, however the server misbehaves.
const LIMIT: Duration = Duration::from_secs(60);

/// How the server answered a team token.
enum Answer {
    /// Admitted: the banner was read and the connection is still open.
    Admitted(Client),
    /// Refused with this line, and closed.
    Refused(String),
}

/// Connects and reads the token greeting.
async fn greeted(addr: SocketAddr) -> Client {
    let mut c = Client::connect(addr).await;
    assert_eq!(c.line().await.as_deref(), Some(TOKEN_GREETING));
    c
}

/// Sends `token` and reads the server's answer to it.
async fn present(mut c: Client, token: &str) -> Answer {
    c.send(format!("{token}\n").as_bytes()).await;
    let line = c.line().await.expect("an answer to the token");
    if line == TOKEN_ACCEPTED {
        assert_eq!(c.banner().await, [BANNER_LAST_LINE, ""]);
        Answer::Admitted(c)
    } else {
        assert_eq!(c.rest().await, "", "a refused connection is closed after one line");
        Answer::Refused(line)
    }
}

/// Opens `BURST` connections with `token` at once and keeps every admitted one open until all
/// have their answer, so the admitted ones were all open together.
async fn burst(addr: SocketAddr, token: &str) -> (Vec<Client>, Vec<String>) {
    let barrier = Arc::new(Barrier::new(BURST));
    let mut tasks = JoinSet::new();
    for _ in 0..BURST {
        let (token, barrier) = (token.to_owned(), barrier.clone());
        tasks.spawn(async move {
            let c = greeted(addr).await;
            // Every connection is open before any token is sent: the admissions race.
            barrier.wait().await;
            present(c, &token).await
        });
    }
    let (mut admitted, mut refused) = (Vec::new(), Vec::new());
    while let Some(answer) = tasks.join_next().await {
        match answer.expect("a client task") {
            Answer::Admitted(c) => admitted.push(c),
            Answer::Refused(line) => refused.push(line),
        }
    }
    (admitted, refused)
}

/// Closes each connection and waits until the server has closed its side too.
async fn close_all(clients: Vec<Client>) {
    for mut c in clients {
        c.writer.shutdown().await.unwrap();
        assert_eq!(c.rest().await, "");
    }
}

/// Submits `flag` on a new connection: the answer line, or the refusal if not admitted.
async fn submit(addr: SocketAddr, token: &str, flag: &str) -> String {
    match present(greeted(addr).await, token).await {
        Answer::Admitted(mut c) => {
            c.send(format!("{flag}\n").as_bytes()).await;
            let answer = c.line().await.expect("an answer to the flag");
            close_all(vec![c]).await;
            answer
        }
        Answer::Refused(line) => line,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_over_its_cap_is_refused_and_connects_again_once_its_connections_close() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, CAP as u32, None), Settings::default()).await;
    let (alpha, charlie) = (app.tokens[&ALPHA].as_str(), app.tokens[&CHARLIE].as_str());
    let too_many = format!("Too many connections for your team (at most {CAP}), goodbye");
    let flag = fixture::flag(10, BRAVO, 1, 0);
    tokio::time::timeout(LIMIT, async {
        // One connection first, so the token's hash is checked once and the bursts race for
        // slots, not for argon2.
        let Answer::Admitted(first) = present(greeted(app.tcp).await, alpha).await else {
            panic!("alpha's token is refused")
        };
        close_all(vec![first]).await;

        let mut rounds = Vec::new();
        for _ in 0..2 {
            let (admitted, refused) = burst(app.tcp, alpha).await;
            assert!(refused.iter().all(|line| *line == too_many), "{refused:?}");
            // The cap is per team: another team connects while alpha's is full.
            let Answer::Admitted(other) = present(greeted(app.tcp).await, charlie).await else {
                panic!("charlie is refused while alpha is at its cap")
            };
            close_all(vec![other]).await;
            rounds.push((admitted.len(), refused.len()));
            close_all(admitted).await;
        }
        // Nothing of alpha's is open now: a new connection is admitted and scores.
        let after = submit(app.tcp, alpha, &flag).await;
        assert_eq!(
            (rounds, after),
            (vec![(CAP, BURST - CAP); 2], format!("{flag} OK Accepted")),
            "(admitted, refused) in each burst of {BURST}, then a lone submission"
        );
    })
    .await
    .expect("the test finishes in time");
    assert_eq!(common::stored(&app.store, common::NOW).await, vec![(ALPHA, flag)]);
    app.shutdown().await;
}
