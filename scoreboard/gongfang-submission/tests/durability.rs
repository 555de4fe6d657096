//! Every `OK` survives a crash: clients stream flags, the server process is killed with
//! SIGKILL mid-stream, and after a restart every acknowledged flag is stored exactly once and
//! is answered `DUP` when submitted again. SQLite file and PostgreSQL.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::Client;
use common::fixture;
use gongfang_core::Tick;
use gongfang_store::Store;
use gongfang_test_support::TestDb;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

gongfang_test_support::backend_tests!(acknowledged_flags_survive_sigkill);

const TICK: u32 = 100;
const LIFETIME: u32 = 100;
const CLIENTS: u64 = 4;
const PER_CLIENT: u64 = 5_000;

fn server_binary() -> std::path::PathBuf {
    // Integration tests run from target/<profile>/deps; cargo builds examples beside them.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join(format!("submission-server{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} missing: build it with `cargo test` (which builds examples)", bin.display());
    bin
}

fn start(db: &TestDb) -> (Child, SocketAddr) {
    let mut child = Command::new(server_binary())
        .args(["--db", &db.url, "--tick", &TICK.to_string(), "--lifetime", &LIFETIME.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let tcp = line.split_whitespace().find_map(|w| w.strip_prefix("tcp=")).expect("server prints its address");
    (child, tcp.parse().unwrap())
}

async fn acknowledged_flags_survive_sigkill(db: TestDb) -> anyhow::Result<()> {
    let codec = fixture::codec();
    let (mut child, addr) = start(&db);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let answered = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..CLIENTS {
        let flags: Vec<String> =
            (k * PER_CLIENT..(k + 1) * PER_CLIENT).map(|n| fixture::nth_flag(&codec, n, 1)).collect();
        let acked = acked.clone();
        let answered = answered.clone();
        tasks.spawn(async move {
            let mut c = Client::connect(addr).await;
            c.banner().await;
            let mut writer = c.writer;
            let to_send = flags.clone();
            // Stream in chunks while reading answers, until the server dies.
            let sender = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                for chunk in to_send.chunks(100) {
                    let mut bytes = chunk.join("\n").into_bytes();
                    bytes.push(b'\n');
                    if writer.write_all(&bytes).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            });
            let mut reader = c.reader;
            let mut i = 0;
            loop {
                let mut line = String::new();
                let read = tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line).await;
                match read {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
                let line = line.trim_end();
                let expected = format!("{} OK Accepted", flags[i]);
                assert_eq!(line, expected, "answers come in order");
                acked.lock().unwrap().push(flags[i].clone());
                answered.notify_one();
                i += 1;
            }
            sender.abort();
        });
    }
    // Let a good share be acknowledged, then pull the plug mid-stream.
    let enough = async {
        loop {
            answered.notified().await;
            if acked.lock().unwrap().len() >= 3_000 {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), enough).await.expect("3,000 flags acknowledged");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    while tasks.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 3_000);
    assert!((acked.len() as u64) < CLIENTS * PER_CLIENT, "the crash came before the end of the stream");

    // After the restart: every acknowledged flag is there, once.
    let (mut child, addr) = start(&db);
    let store = Store::connect(&db.url).await.unwrap();
    let mut stored: HashMap<String, usize> = HashMap::new();
    for tick in 0..=TICK {
        for s in store.submissions_in_tick(Tick(tick)).await.unwrap() {
            *stored.entry(s.submission.flag).or_default() += 1;
        }
    }
    assert!(stored.values().all(|&n| n == 1), "a flag stored twice");
    let missing: Vec<&String> = acked.iter().filter(|f| !stored.contains_key(*f)).collect();
    assert!(missing.is_empty(), "{} acknowledged flags lost, e.g. {:?}", missing.len(), missing.first());
    let before = store.count_submissions().await.unwrap();
    assert_eq!(before as usize, stored.len());

    // Submitting them again counts nothing twice.
    let mut c = Client::connect(addr).await;
    c.banner().await;
    let mut bytes = acked.join("\n").into_bytes();
    bytes.push(b'\n');
    let sender = {
        let mut w = c.writer;
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            w.write_all(&bytes).await.unwrap();
            w.shutdown().await.unwrap();
        })
    };
    let acked_set: HashSet<String> = acked.iter().cloned().collect();
    let mut dups = 0;
    loop {
        let mut line = String::new();
        let n = tokio::io::AsyncBufReadExt::read_line(&mut c.reader, &mut line).await.unwrap();
        if n == 0 {
            break;
        }
        let (flag, answer) = line.trim_end().split_once(' ').unwrap();
        assert!(acked_set.contains(flag));
        assert_eq!(answer, "DUP You already submitted this flag");
        dups += 1;
    }
    sender.await.unwrap();
    assert_eq!(dups, acked.len());
    assert_eq!(store.count_submissions().await.unwrap(), before);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    Ok(())
}
