//! The key-value test service as a process of its own, for tests that stop and restart a
//! team's service for real (the engine's game test). Standard library only.
//!
//! Usage: `gongfang-kv-service ADDR DATA_FILE`. Prints `listening on ADDR` once it accepts.
//! One command per line, one answer line each:
//! `PUT key value` -> `OK`; `GET key` -> `VALUE value` or `MISSING`; `DEL key` -> `DELETED`
//! or `MISSING`; `MODE garbage|normal` -> `OK` (in garbage mode every other answer is noise,
//! like a service whose backend broke). Values survive a restart: every change is appended to
//! DATA_FILE and replayed at start.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

struct Shared {
    values: Mutex<(HashMap<String, String>, File)>,
    garbage: AtomicBool,
}

fn load(path: &str) -> std::io::Result<HashMap<String, String>> {
    let mut values = HashMap::new();
    let Ok(file) = File::open(path) else { return Ok(values) };
    for line in BufReader::new(file).lines() {
        let line = line?;
        match line.split_once(' ') {
            Some(("P", rest)) => {
                if let Some((k, v)) = rest.split_once(' ') {
                    values.insert(k.to_owned(), v.to_owned());
                }
            }
            Some(("D", key)) => {
                values.remove(key);
            }
            _ => {}
        }
    }
    Ok(values)
}

fn answer(shared: &Shared, line: &str) -> String {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    if cmd == "MODE" {
        shared.garbage.store(rest == "garbage", Ordering::SeqCst);
        return "OK".to_owned();
    }
    if shared.garbage.load(Ordering::SeqCst) {
        return "?? 0xDEADBEEF internal state unreadable".to_owned();
    }
    let mut guard = shared.values.lock().expect("values lock");
    let (values, log) = &mut *guard;
    match cmd {
        "PUT" => match rest.split_once(' ') {
            Some((key, value)) if !key.is_empty() => {
                if writeln!(log, "P {key} {value}").and_then(|()| log.flush()).is_err() {
                    return "ERROR cannot write".to_owned();
                }
                values.insert(key.to_owned(), value.to_owned());
                "OK".to_owned()
            }
            _ => "ERROR usage: PUT key value".to_owned(),
        },
        "GET" => values.get(rest).map_or_else(|| "MISSING".to_owned(), |v| format!("VALUE {v}")),
        "DEL" => {
            if values.remove(rest).is_none() {
                return "MISSING".to_owned();
            }
            if writeln!(log, "D {rest}").and_then(|()| log.flush()).is_err() {
                return "ERROR cannot write".to_owned();
            }
            "DELETED".to_owned()
        }
        _ => "ERROR unknown command".to_owned(),
    }
}

fn serve(shared: Arc<Shared>, stream: TcpStream) {
    let Ok(mut out) = stream.try_clone() else { return };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if writeln!(out, "{}", answer(&shared, line.trim_end())).is_err() {
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, data] = args.as_slice() else {
        eprintln!("usage: gongfang-kv-service ADDR DATA_FILE");
        std::process::exit(2);
    };
    let values = load(data)?;
    let log = OpenOptions::new().create(true).append(true).open(data)?;
    let shared = Arc::new(Shared { values: Mutex::new((values, log)), garbage: AtomicBool::new(false) });
    let listener = TcpListener::bind(addr.as_str())?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming().flatten() {
        let shared = shared.clone();
        std::thread::spawn(move || serve(shared, stream));
    }
    Ok(())
}
