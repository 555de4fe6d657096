//! Hostile and broken input over TCP: huge lines, NUL bytes, invalid UTF-8, floods of empty
//! lines, half-open connections. The server answers `INV` or closes, keeps serving others,
//! and never holds more than its read buffer per connection.

mod common;

use std::time::Duration;

use common::fixture::{self, BRAVO, DELTA, LIFETIME};
use common::{App, Client, spawn};
use gongfang_core::scenario::Identify;
use gongfang_submission::Settings;
use gongfang_test_support::TestDb;
use tokio::io::AsyncWriteExt;

async fn app(settings: Settings) -> (App, TestDb) {
    let db = TestDb::sqlite().await;
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 50, None), settings).await;
    (app, db)
}

/// The server still works for a fresh client.
async fn still_serves(app: &App, flag: &str) {
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    c.send(format!("{flag}\n").as_bytes()).await;
    assert_eq!(c.line().await.unwrap(), format!("{flag} OK Accepted"));
}

#[tokio::test]
async fn a_one_megabyte_line_is_invalid_and_the_connection_goes_on() {
    let (app, _db) = app(Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    let mut huge = vec![b'A'; 1 << 20];
    huge.push(b'\n');
    let ok = fixture::flag(10, BRAVO, 1, 0);
    // Write the line and read concurrently: the answer may come before the line is all sent.
    let (mut reader, mut writer) = (c.reader, c.writer);
    let sender = tokio::spawn(async move {
        writer.write_all(&huge).await.unwrap();
        writer.write_all(format!("{ok}\n").as_bytes()).await.unwrap();
        writer
    });
    let mut c2 = Client { reader, writer: sender.await.unwrap() };
    let first = c2.line().await.unwrap();
    assert_eq!(first, format!("{} INV Invalid flag: line too long", "A".repeat(64)));
    assert_eq!(c2.line().await.unwrap(), format!("{} OK Accepted", fixture::flag(10, BRAVO, 1, 0)));
    reader = c2.reader;
    drop(reader);
    // A huge line cut off by the end of the stream is answered too.
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    c.send(&vec![b'B'; 300_000]).await;
    c.writer.shutdown().await.unwrap();
    assert_eq!(c.rest().await, format!("{} INV Invalid flag: line too long\n", "B".repeat(64)));
    still_serves(&app, &fixture::flag(10, DELTA, 1, 0)).await;
    app.shutdown().await;
}

#[tokio::test]
async fn nul_bytes_invalid_utf8_and_binary_are_invalid() {
    let (app, _db) = app(Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    let flag = fixture::flag(10, BRAVO, 1, 0);
    let mut input = Vec::new();
    input.extend_from_slice(b"\0\0\0\n");
    input.extend_from_slice(format!("{flag}\0\n").as_bytes());
    input.extend_from_slice(b"GONGFANG{\xff\xfe\xfd}\n");
    input.extend_from_slice(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n"); // a TLS hello
    input.extend_from_slice(format!("{flag}\r\n").as_bytes());
    c.send(&input).await;
    assert_eq!(c.line().await.unwrap(), "??? INV Invalid flag");
    assert_eq!(c.line().await.unwrap(), format!("{flag}? INV Invalid flag"));
    assert_eq!(c.line().await.unwrap(), "GONGFANG{???} INV Invalid flag");
    assert_eq!(c.line().await.unwrap(), format!("{} INV Invalid flag", "?".repeat(11)));
    assert_eq!(c.line().await.unwrap(), format!("{flag} OK Accepted"));
    app.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_empty_lines_get_no_answer_and_cost_nothing() {
    let (app, _db) = app(Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    let flag = fixture::flag(10, BRAVO, 1, 0);
    let mut input = b"\n".repeat(5_000);
    input.extend(b"\r\n".repeat(5_000));
    input.extend_from_slice(format!("{flag}\n").as_bytes());
    c.send(&input).await;
    c.writer.shutdown().await.unwrap();
    assert_eq!(c.rest().await, format!("{flag} OK Accepted\n"));
    app.shutdown().await;
}

#[tokio::test]
async fn half_closed_client_gets_every_answer_before_the_close() {
    let (app, _db) = app(Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    let flags: Vec<String> = (0..500).map(|i| fixture::nth_flag(&fixture::codec(), i, 9)).collect();
    let mut input = flags.join("\n").into_bytes();
    input.push(b'\n');
    // The last flag has no newline: the end of the stream ends it.
    input.extend_from_slice(fixture::flag(10, DELTA, 2, 1).as_bytes());
    c.send(&input).await;
    c.writer.shutdown().await.unwrap();
    let rest = c.rest().await;
    let answers: Vec<&str> = rest.lines().collect();
    assert_eq!(answers.len(), 501);
    for (flag, answer) in flags.iter().zip(&answers) {
        assert_eq!(*answer, format!("{flag} OK Accepted"));
    }
    assert_eq!(answers[500], format!("{} OK Accepted", fixture::flag(10, DELTA, 2, 1)));
    assert_eq!(app.store.count_submissions().await.unwrap(), 501);
    app.shutdown().await;
}

#[tokio::test]
async fn silent_and_half_line_clients_are_closed_after_the_idle_timeout() {
    let settings = Settings { idle_timeout: Duration::from_millis(300), ..Settings::default() };
    let (app, _db) = app(settings).await;
    // Connects and never sends.
    let mut silent = Client::connect(app.tcp).await;
    silent.banner().await;
    // Sends half a flag and stalls with the connection open.
    let mut half = Client::connect(app.tcp).await;
    half.banner().await;
    half.send(b"GONGFANG{abc").await;
    assert_eq!(silent.rest().await, "");
    assert_eq!(half.rest().await, "");
    still_serves(&app, &fixture::flag(10, BRAVO, 2, 0)).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_client_that_vanishes_mid_pipeline_loses_no_flag() {
    let (app, _db) = app(Settings::default()).await;
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    let flags: Vec<String> = (0..2_000).map(|i| fixture::nth_flag(&fixture::codec(), i, 9)).collect();
    let mut input = flags.join("\n").into_bytes();
    input.push(b'\n');
    c.send(&input).await;
    drop(c);
    // What the server read was submitted; resubmitting shows each flag stored at most once.
    let mut c = Client::connect(app.tcp).await;
    c.banner().await;
    c.send(&input).await;
    c.writer.shutdown().await.unwrap();
    let rest = c.rest().await;
    assert_eq!(rest.lines().count(), 2_000);
    assert!(rest.lines().all(|l| l.ends_with(" OK Accepted") || l.ends_with(" DUP You already submitted this flag")));
    assert_eq!(app.store.count_submissions().await.unwrap(), 2_000);
    app.shutdown().await;
}
