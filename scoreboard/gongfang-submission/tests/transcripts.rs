//! Protocol transcripts of both TCP modes and of HTTP, for every answer code, as snapshots;
//! plus the game events the accepted flags produce. Real SQLite store throughout.

mod common;

use common::fixture::{self, ALPHA, BRAVO, CHARLIE, DELTA, LIFETIME, NOP};
use common::{Client, spawn};
use gongfang_core::clock::Phase;
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::Identify;
use gongfang_core::{ServiceId, TeamId, Tick};
use gongfang_submission::Settings;
use gongfang_test_support::TestDb;
use gongfang_test_support::http::{Response, request};

/// Records what was sent (`>`) and received (`<`).
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn sent(&mut self, line: &str) {
        self.0.push_str(&format!("> {line}\n"));
    }
    fn got(&mut self, line: &str) {
        self.0.push_str(&format!("< {line}\n"));
    }
    fn note(&mut self, note: &str) {
        self.0.push_str(&format!("# {note}\n"));
    }
}

/// Sends `lines` pipelined in one write, then reads `answers` lines.
async fn exchange(c: &mut Client, t: &mut Transcript, lines: &[String], answers: usize) {
    let mut bytes = Vec::new();
    for l in lines {
        t.sent(l);
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
    }
    c.send(&bytes).await;
    for _ in 0..answers {
        let line = c.line().await.expect("an answer");
        t.got(&line);
    }
}

fn bad_tag(flag: &str) -> String {
    // Flip one body character: still well-formed, wrong tag.
    let mut chars: Vec<char> = flag.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// The flags that give every verdict for a submitter of team alpha at tick 10.
fn every_verdict() -> Vec<String> {
    let ok = fixture::flag(10, BRAVO, 1, 0);
    vec![
        ok.clone(),
        ok.clone(),
        fixture::flag(10, ALPHA, 1, 0),
        fixture::flag(5, DELTA, 1, 0),
        fixture::flag(6, DELTA, 2, 1),
        "GONGFANG{not-a-flag}".to_owned(),
        bad_tag(&fixture::flag(9, BRAVO, 2, 0)),
        fixture::flag(10, NOP, 1, 0),
        "".to_owned(),
        fixture::flag(9, DELTA, 1, 1),
    ]
}

#[tokio::test]
async fn tcp_address_mode_transcript() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let mut t = Transcript::default();
    let mut c = Client::connect(app.tcp).await;
    for line in c.banner().await {
        t.got(&line);
    }
    // Nine answers: the empty line is not answered.
    exchange(&mut c, &mut t, &every_verdict(), 9).await;
    for (phase, note) in [(Phase::Paused, "paused"), (Phase::NotStarted, "not started"), (Phase::Over, "over")] {
        app.set_phase(phase);
        t.note(note);
        exchange(&mut c, &mut t, &[fixture::flag(10, DELTA, 2, 0)], 1).await;
    }
    insta::assert_snapshot!(t.0);
    app.shutdown().await;
}

#[tokio::test]
async fn tcp_address_mode_refuses_unknown_networks_and_extra_connections() {
    let db = TestDb::sqlite().await;
    let mut scenario = fixture::scenario(Identify::Address, LIFETIME, 2, None);
    let app = spawn(&db, scenario.clone(), Settings::default()).await;
    let mut a = Client::connect(app.tcp).await;
    let mut b = Client::connect(app.tcp).await;
    a.banner().await;
    b.banner().await;
    let mut third = Client::connect(app.tcp).await;
    assert_eq!(third.rest().await, "Too many connections for your team (at most 2), goodbye\n");
    drop(a);
    // The slot comes back once the server notices the close.
    let mut tries = 0;
    loop {
        let mut again = Client::connect(app.tcp).await;
        let first = again.line().await.unwrap();
        if first.starts_with("Gongfang") {
            break;
        }
        tries += 1;
        assert!(tries < 100, "connection slot never returned");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.shutdown().await;

    // A scenario where loopback belongs to no team.
    scenario.teams[0].network = gongfang_core::scenario::Ipv4Net::parse("10.60.1.0/24").unwrap();
    let db = TestDb::sqlite().await;
    let app = spawn(&db, scenario, Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    assert_eq!(c.rest().await, "Your address 127.0.0.1 is in no team's network, goodbye\n");
    app.shutdown().await;
}

#[tokio::test]
async fn tcp_token_mode_transcript() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Token, LIFETIME, 10, None), Settings::default()).await;
    let mut t = Transcript::default();

    t.note("a wrong token");
    let mut c = Client::connect(app.tcp).await;
    t.got(&c.line().await.unwrap());
    t.sent("<a wrong token>");
    c.send(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n").await;
    for line in c.rest().await.lines() {
        t.got(line);
    }

    t.note("the defender bravo");
    let mut c = Client::connect(app.tcp).await;
    t.got(&c.line().await.unwrap());
    t.sent("<token of bravo>");
    c.send(format!("{}\n", app.tokens[&BRAVO]).as_bytes()).await;
    for line in c.banner().await {
        t.got(&line);
    }
    exchange(&mut c, &mut t, &[fixture::flag(10, DELTA, 1, 0)], 1).await;

    t.note("the attacker charlie, then alpha (both roles)");
    let mut c = Client::connect(app.tcp).await;
    t.got(&c.line().await.unwrap());
    t.sent("<token of charlie>");
    c.send(format!("{}\r\n", app.tokens[&CHARLIE]).as_bytes()).await;
    for line in c.banner().await {
        t.got(&line);
    }
    exchange(&mut c, &mut t, &[fixture::flag(10, BRAVO, 1, 0), fixture::flag(10, ALPHA, 1, 0)], 2).await;
    let mut c = Client::connect(app.tcp).await;
    t.got(&c.line().await.unwrap());
    t.sent("<token of alpha>");
    c.send(format!("{}\n", app.tokens[&ALPHA]).as_bytes()).await;
    for line in c.banner().await {
        t.got(&line);
    }
    exchange(&mut c, &mut t, &every_verdict(), 9).await;
    app.set_phase(Phase::Over);
    t.note("over");
    exchange(&mut c, &mut t, &[fixture::flag(10, DELTA, 2, 0)], 1).await;
    insta::assert_snapshot!(t.0);
    app.shutdown().await;
}

fn pretty(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap(),
        Err(_) => body.to_owned(),
    }
}

/// `PUT /flags` with `headers` and `body`.
async fn put(app: &common::App, headers: &[(&str, &str)], body: &[u8]) -> Response {
    request(app.http, "PUT", "/flags", headers, body).await.expect("an answer to PUT /flags")
}

#[tokio::test]
async fn http_transcript() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let alpha = app.tokens[&ALPHA].clone();
    let bravo = app.tokens[&BRAVO].clone();
    let mut t = String::new();
    let mut note_put = async |note: &str, headers: &[(&str, &str)], body: &[u8]| {
        let answer = put(&app, headers, body).await;
        t.push_str(&format!("# {note}\n{}\n{}\n\n", answer.status, pretty(&answer.text())));
    };
    let flags: Vec<String> = every_verdict().into_iter().filter(|f| !f.is_empty()).collect();
    let body = serde_json::to_vec(&flags).unwrap();
    note_put("every verdict", &[("X-Team-Token", &alpha)], &body).await;
    note_put(
        "a defender",
        &[("X-Team-Token", &bravo)],
        &serde_json::to_vec(&[fixture::flag(10, DELTA, 1, 1)]).unwrap(),
    )
    .await;
    note_put("no token", &[], b"[]").await;
    note_put("a wrong token", &[("X-Team-Token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")], b"[]").await;
    note_put("not JSON", &[("X-Team-Token", &alpha)], b"GONGFANG{x}\n").await;
    note_put("not an array of strings", &[("X-Team-Token", &alpha)], br#"{"flags": [1]}"#).await;
    let many: Vec<String> = (0..101).map(|i| format!("GONGFANG{{{i}}}")).collect();
    note_put("101 flags", &[("X-Team-Token", &alpha)], &serde_json::to_vec(&many).unwrap()).await;
    note_put("a 1 MB body", &[("X-Team-Token", &alpha)], &vec![b' '; 1 << 20]).await;
    app.set_phase(Phase::Over);
    note_put("game over", &[("X-Team-Token", &alpha)], &serde_json::to_vec(&[fixture::flag(10, DELTA, 1, 1)]).unwrap())
        .await;
    insta::assert_snapshot!(t);
    app.shutdown().await;
}

#[tokio::test]
async fn http_put_with_a_trailing_slash_is_the_same_route() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let alpha = app.tokens[&ALPHA].clone();
    let flag = fixture::flag(10, BRAVO, 1, 0);
    let body = serde_json::to_vec(&[&flag]).unwrap();
    let slash = request(app.http, "PUT", "/flags/", &[("X-Team-Token", &alpha)], &body).await.unwrap();
    assert_eq!(slash.status, 200, "{}", slash.text());
    let answers: serde_json::Value = serde_json::from_str(&slash.text()).unwrap();
    assert_eq!(answers, serde_json::json!([{ "flag": flag, "msg": "Accepted" }]));
    assert_eq!(slash.header("x-content-type-options"), Some("nosniff"));
    // Both paths reach one pipeline: the flag is now a duplicate without the slash.
    let plain = put(&app, &[("X-Team-Token", &alpha)], &body).await;
    assert!(plain.text().contains("already submitted"), "{}", plain.text());
    // And it checks the token like the other.
    let no_token = request(app.http, "PUT", "/flags/", &[], b"[]").await.unwrap();
    assert_eq!(no_token.status, 401, "{}", no_token.text());
    // Other paths stay unknown.
    let other = request(app.http, "PUT", "/flags//", &[("X-Team-Token", &alpha)], b"[]").await.unwrap();
    assert_eq!(other.status, 404, "{}", other.text());
    app.shutdown().await;
}

#[tokio::test]
async fn http_rate_limit_answers_429() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, Some(3)), Settings::default()).await;
    let alpha = app.tokens[&ALPHA].clone();
    let three: Vec<String> = (0..3).map(|i| fixture::flag(10, BRAVO, 1, i)).collect();
    let first = put(&app, &[("X-Team-Token", &alpha)], &serde_json::to_vec(&three).unwrap()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.text().matches("Accepted").count(), 3);
    let second = put(&app, &[("X-Team-Token", &alpha)], &serde_json::to_vec(&three).unwrap()).await;
    assert_eq!(second.status, 429, "{}", second.text());
    assert!(second.text().contains("rate limit exceeded"), "{}", second.text());
    assert_eq!(second.header("retry-after"), Some("1"), "{second:?}");
    // Another team has its own budget.
    let bravo = app.tokens[&BRAVO].clone();
    assert_eq!(put(&app, &[("X-Team-Token", &bravo)], b"[]").await.status, 200);
    app.shutdown().await;
}

#[tokio::test]
async fn http_answers_say_nosniff() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let alpha = app.tokens[&ALPHA].clone();
    let flags = serde_json::to_vec(&[fixture::flag(10, BRAVO, 1, 0)]).unwrap();
    for (what, headers, body) in [
        ("an answer", &[("X-Team-Token", alpha.as_str())][..], &flags[..]),
        ("no token", &[][..], &b"[]"[..]),
        ("not JSON", &[("X-Team-Token", alpha.as_str())][..], &b"GONGFANG{x}"[..]),
    ] {
        let answer = put(&app, headers, body).await;
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{what}: {answer:?}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn http_401s_ask_no_browser_for_a_password() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (what, headers) in [("no token", &[][..]), ("a wrong token", &[("X-Team-Token", wrong)][..])] {
        let answer = put(&app, headers, b"[]").await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text());
        assert_eq!(answer.header("www-authenticate"), None, "{what}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn captures_publish_events_and_one_first_blood_per_service() {
    let db = TestDb::sqlite().await;
    let mut app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    let flags = [
        fixture::flag(10, BRAVO, 1, 0),
        fixture::flag(9, DELTA, 1, 1),
        fixture::flag(9, DELTA, 1, 1),
        fixture::flag(8, BRAVO, 2, 0),
    ];
    let mut t = Transcript::default();
    exchange(&mut c, &mut t, &flags, 4).await;
    assert_eq!(t.0.matches(" OK Accepted").count(), 3, "{}", t.0);
    let mut events = Vec::new();
    while let Ok(e) = app.events.try_recv() {
        events.push(e);
    }
    let captured = |victim: TeamId, service: u8, planted: u32| GameEvent::FlagCaptured {
        tick: Tick(10),
        attacker: ALPHA,
        victim,
        service: ServiceId(service),
        store: gongfang_core::StoreIdx(if planted == 9 { 1 } else { 0 }),
        planted: Tick(planted),
    };
    let first = |victim: TeamId, service: u8| GameEvent::FirstBlood {
        tick: Tick(10),
        attacker: ALPHA,
        victim,
        service: ServiceId(service),
    };
    assert_eq!(
        events,
        vec![captured(BRAVO, 1, 10), first(BRAVO, 1), captured(DELTA, 1, 9), captured(BRAVO, 2, 8), first(BRAVO, 2),]
    );
    app.shutdown().await;

    // A restarted server on the same database knows both services were blooded already.
    let mut app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    exchange(&mut c, &mut t, &[fixture::flag(10, DELTA, 2, 1)], 1).await;
    let mut events = Vec::new();
    while let Ok(e) = app.events.try_recv() {
        events.push(e);
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(events[0], GameEvent::FlagCaptured { .. }));
    app.shutdown().await;
}
