//! 100 connections race with the same valid flag: exactly one `OK`, 99 `DUP`, one row. Run on
//! SQLite and PostgreSQL, with two independent pipelines (as two server processes would be)
//! sharing the database, so the unique constraint, not the in-process writer, decides.

mod common;

use common::fixture::{self, ALPHA, BRAVO, LIFETIME};
use common::{Client, spawn};
use gongfang_core::scenario::Identify;
use gongfang_submission::Settings;
use gongfang_test_support::TestDb;

gongfang_test_support::backend_tests!(same_flag_from_100_connections_scores_once);

async fn same_flag_from_100_connections_scores_once(db: TestDb) -> anyhow::Result<()> {
    let db = &db;
    let scenario = fixture::scenario(Identify::Address, LIFETIME, 200, None);
    let a = spawn(db, scenario.clone(), Settings::default()).await;
    let b = spawn(db, scenario, Settings::default()).await;
    let flag = fixture::flag(10, BRAVO, 1, 0);

    // Everyone connects and reads the banner first, so the submissions really race.
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut c = Client::connect(if i % 2 == 0 { a.tcp } else { b.tcp }).await;
        c.banner().await;
        clients.push(c);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(clients.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in clients {
        let flag = flag.clone();
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            c.send(format!("{flag}\n").as_bytes()).await;
            c.line().await.expect("an answer")
        });
    }
    let mut ok = 0;
    let mut dup = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        assert!(answer.starts_with(&flag), "{answer}");
        match &answer[flag.len()..] {
            " OK Accepted" => ok += 1,
            " DUP You already submitted this flag" => dup += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((ok, dup), (1, 99));
    assert_eq!(a.store.count_submissions().await.unwrap(), 1);
    let rows = common::stored(&a.store, common::NOW).await;
    assert_eq!(rows, vec![(ALPHA, flag)]);
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}
