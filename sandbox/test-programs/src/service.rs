//! An in-process TCP service speaking a line protocol, with switches that break it on purpose,
//! and a decoy listener that records connection attempts.
//!
//! Protocol, one request per line, any number per connection:
//! `PUT key value` → `OK`; `GET key` → `VALUE value` or `MISSING`; anything else → `ERR`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct Shared {
    values: Mutex<HashMap<String, String>>,
    garbage: AtomicBool,
    connections: AtomicUsize,
}

/// The key-value service. Dropping it stops it.
#[derive(Debug)]
pub struct KvService {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl KvService {
    /// Starts the service on `addr` (port 0 picks a free port).
    pub async fn start(addr: SocketAddr) -> io::Result<KvService> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(KvService { addr, shared, task: Some(task) })
    }

    /// Where the service listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forgets every stored value, as a service that lost its data would.
    pub fn drop_all_values(&self) {
        self.shared.values.lock().expect("service lock").clear();
    }

    /// How many values the service holds.
    pub fn len(&self) -> usize {
        self.shared.values.lock().expect("service lock").len()
    }

    /// Whether the service holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every answer garbage (or sane again).
    pub fn answer_garbage(&self, garbage: bool) {
        self.shared.garbage.store(garbage, Ordering::SeqCst);
    }

    /// How many connections the service accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops listening; later connections are refused.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Wait until the task, and with it the listener, is gone.
            let _ = task.await;
        }
    }
}

impl Drop for KvService {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        connections.spawn(serve(stream, Arc::clone(&shared)));
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let mut answer = if shared.garbage.load(Ordering::SeqCst) {
            "\u{1b}[31m?? 0xDEADBEEF ??".to_owned()
        } else {
            answer(&shared, &line)
        };
        // One write per answer: written in two, the newline would wait (Nagle) for the
        // checker's delayed acknowledgement of the first part, 40 ms on Linux.
        answer.push('\n');
        write.write_all(answer.as_bytes()).await?;
    }
    Ok(())
}

fn answer(shared: &Shared, line: &str) -> String {
    let mut values = shared.values.lock().expect("service lock");
    match line.split_once(' ') {
        Some(("PUT", rest)) => match rest.split_once(' ') {
            Some((key, value)) => {
                values.insert(key.to_owned(), value.to_owned());
                "OK".to_owned()
            }
            None => "ERR".to_owned(),
        },
        Some(("GET", key)) => match values.get(key) {
            Some(value) => format!("VALUE {value}"),
            None => "MISSING".to_owned(),
        },
        _ => "ERR".to_owned(),
    }
}

/// A listener that only counts the connections it accepts: bound where a checker must never
/// connect, it proves the sandbox kept the checker out.
#[derive(Debug)]
pub struct Decoy {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Decoy {
    /// Listens on `addr`.
    pub async fn bind(addr: SocketAddr) -> io::Result<Decoy> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                }
            }
        });
        Ok(Decoy { addr, accepted, task })
    }

    /// Where the decoy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections reached the decoy.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
