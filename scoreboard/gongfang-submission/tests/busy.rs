//! Answers keep coming while the store is busy: 20,000 valid flags pipelined over four TCP
//! connections while another process holds the SQLite database's write lock for 3 s, as a long
//! transaction of another part of the platform would. Farms give up on a server after 2 to 5 s
//! without an answer, so every line must be answered within 2 s of being sent; what the store
//! could not confirm in time is answered "try again later", and sent again it is stored once.

mod common;

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fixture::{self, ALPHA};
use common::{Client, spawn};
use gongfang_core::Tick;
use gongfang_core::clock::DrillClock;
use gongfang_core::scenario::Identify;
use gongfang_submission::Settings;
use gongfang_test_support::TestDb;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};

const FLAGS: usize = 20_000;
const CONNECTIONS: usize = 4;
/// Farms wait this long for an answer (ataka's FAUST submitter waits 2 s per line).
const FARM_PATIENCE: Duration = Duration::from_secs(2);
const LOCK_HELD: Duration = Duration::from_secs(3);
const BUSY: &str = "ERR Storage busy, flag not confirmed, try again later";

/// The `sqlite3` shell in a write transaction on the test's database: every other writer,
/// the submission server's included, waits until [`Locker::release`].
struct Locker {
    child: Child,
    stdin: ChildStdin,
}

impl Locker {
    async fn lock(url: &str) -> Locker {
        let path = url.trim_start_matches("sqlite://").split('?').next().expect("a path").to_owned();
        let mut child = Command::new("sqlite3")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("this test holds the database's write lock with the sqlite3 shell: install it (apt-get install sqlite3)");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n").await.unwrap();
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), out.next_line()).await.expect("sqlite3 answers");
        assert_eq!(line.unwrap().as_deref(), Some("locked"), "sqlite3 took the write lock");
        Locker { child, stdin }
    }

    async fn release(mut self) {
        self.stdin.write_all(b"COMMIT;\n.quit\n").await.unwrap();
        drop(self.stdin);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "sqlite3 committed and quit");
    }
}

/// Sends `flags` one line at a time as fast as the socket takes them and reads every answer:
/// (flag, answer after the flag, time from the line being sent to its answer being read).
async fn pipeline(client: Client, flags: Vec<String>) -> Vec<(String, String, Duration)> {
    let Client { mut reader, mut writer } = client;
    let lines = flags.len();
    let sent: Arc<Mutex<VecDeque<(String, Instant)>>> = Arc::default();
    let sender = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for flag in flags {
                let line = format!("{flag}\n");
                // Timed from before the write: a write the server holds up counts against it.
                sent.lock().unwrap().push_back((flag, Instant::now()));
                writer.write_all(line.as_bytes()).await.unwrap();
            }
            writer
        })
    };
    let mut answers = Vec::new();
    let mut line = String::new();
    while answers.len() < lines {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line))
            .await
            .expect("answers keep coming")
            .unwrap();
        assert!(n > 0, "the server closed with answers missing");
        let read = Instant::now();
        let (flag, at) = sent.lock().unwrap().pop_front().expect("an answer to a line sent");
        let latency = read.duration_since(at);
        let answer =
            line.trim_end().strip_prefix(&format!("{flag} ")).unwrap_or_else(|| panic!("{line} answers {flag}"));
        answers.push((flag, answer.to_owned(), latency));
    }
    drop(sender.await.unwrap());
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_arrives_within_2_s_while_the_store_is_locked() {
    let db = TestDb::sqlite().await;
    // Long-lived flags, so 20,000 distinct ones of defending teams are valid at once.
    let app = spawn(&db, fixture::scenario(Identify::Address, 40, 10, None), Settings::default()).await;
    app.clock.send_replace(DrillClock::running(Tick(40), Duration::from_secs(60)));
    let codec = fixture::codec();
    let flags: Vec<String> = (0..FLAGS as u64).map(|n| fixture::nth_flag(&codec, n, 1)).collect();
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut c = Client::connect(app.tcp).await;
        c.banner().await;
        clients.push(c);
    }

    let locker = Locker::lock(&db.url).await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, chunk) in clients.into_iter().zip(flags.chunks(FLAGS / CONNECTIONS)) {
        tasks.spawn(pipeline(c, chunk.to_vec()));
    }
    let release = tokio::spawn(async move {
        tokio::time::sleep(LOCK_HELD).await;
        locker.release().await;
    });
    let mut answers = Vec::new();
    while let Some(part) = tasks.join_next().await {
        answers.extend(part.unwrap());
    }
    let all_answered = started.elapsed();
    release.await.unwrap();

    assert_eq!(answers.len(), FLAGS);
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.2).collect();
    latencies.sort();
    let late = answers.iter().filter(|a| a.2 > FARM_PATIENCE).count();
    eprintln!(
        "20,000 flags answered in {all_answered:?}: latency p50 {:?} p99 {:?} max {:?}; {} busy",
        latencies[FLAGS / 2],
        latencies[FLAGS * 99 / 100],
        latencies[FLAGS - 1],
        answers.iter().filter(|a| a.1 == BUSY).count()
    );
    assert_eq!(
        late,
        0,
        "{late} answers came later than {FARM_PATIENCE:?}; the slowest took {:?}",
        latencies[FLAGS - 1]
    );
    assert!(all_answered < LOCK_HELD, "every flag was answered while the store was still locked");
    for (flag, answer, _) in &answers {
        assert!(answer == "OK Accepted" || answer == BUSY, "{flag}: {answer}");
    }
    let busy: Vec<String> = answers.iter().filter(|a| a.1 == BUSY).map(|a| a.0.clone()).collect();
    assert_eq!(busy.len(), FLAGS, "nothing could be confirmed while the store was locked");

    // The farm sends them again once the store is free: each is stored exactly once, and a
    // flag the locked commit stored after all is a DUP, never a second OK.
    let mut verdicts: HashMap<String, Vec<String>> = HashMap::new();
    let mut todo = busy;
    for round in 0.. {
        assert!(round < 50, "{} flags still not confirmed", todo.len());
        let mut c = Client::connect(app.tcp).await;
        c.banner().await;
        let answers = pipeline(c, todo.clone()).await;
        todo.clear();
        for (flag, answer, _) in answers {
            if answer == BUSY {
                todo.push(flag);
            } else {
                verdicts.entry(flag).or_default().push(answer);
            }
        }
        if todo.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(verdicts.len(), FLAGS);
    for (flag, said) in &verdicts {
        assert!(said == &["OK Accepted"] || said == &["DUP You already submitted this flag"], "{flag}: {said:?}");
    }
    assert_eq!(app.store.count_submissions().await.unwrap() as usize, FLAGS, "every flag stored once");
    let stored = common::stored(&app.store, Tick(40)).await;
    assert!(stored.iter().all(|(attacker, _)| *attacker == ALPHA));
    app.shutdown().await;
}
