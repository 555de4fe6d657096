//! A tiny static TCP service for `FROM scratch` images: the orchestrator's test target and the
//! example of a service that needs no base image at all. Standard library only, so it builds
//! with a bare `rustc` for `x86_64-unknown-linux-musl` (or static glibc).
//!
//! One command per line, one answer line each:
//! `PING` -> `PONG <uid>`; `PUT <text>` stores text in `$DATA` (default `/tmp/data`);
//! `GET` -> the text or `EMPTY`; `CONNECT <ip:port>` -> `OPEN` or `FAIL <why>` (an outbound
//! TCP attempt, to prove isolation from inside); `UNIX <path>` -> the same for a Unix socket.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned()))
        .unwrap_or_else(|| "?".to_owned())
}

fn answer(line: &str, data: &str) -> String {
    let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
    match cmd {
        "PING" => format!("PONG {}", uid()),
        "PUT" => match std::fs::write(data, arg) {
            Ok(()) => "OK".to_owned(),
            Err(e) => format!("FAIL {e}"),
        },
        "GET" => std::fs::read_to_string(data).unwrap_or_else(|_| "EMPTY".to_owned()),
        "CONNECT" => match arg.parse::<SocketAddr>() {
            Ok(addr) => match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(_) => "OPEN".to_owned(),
                Err(e) => format!("FAIL {e}"),
            },
            Err(e) => format!("FAIL bad address: {e}"),
        },
        "UNIX" => match UnixStream::connect(arg) {
            Ok(_) => "OPEN".to_owned(),
            Err(e) => format!("FAIL {e}"),
        },
        _ => "ERR unknown command".to_owned(),
    }
}

fn serve(stream: TcpStream, data: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        let reply = answer(line.trim_end(), data);
        out.write_all(reply.replace('\n', " ").as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn main() {
    let port = std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(8080);
    let data = std::env::var("DATA").unwrap_or_else(|_| "/tmp/data".to_owned());
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("listening on port {port}, data in {data}");
    for stream in listener.incoming().flatten() {
        let data = data.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &data) {
                eprintln!("connection ended: {e}");
            }
        });
    }
}
