//! The translation watcher on the kernel's real connection tracking: a router namespace stands
//! in for the gateway, masquerading a "VPN" network into a "game network", with a client on one
//! side and a service on the other. The watcher runs `conntrack -E` in the router and must tell
//! the client's connection with the client as the peer while the service saw the router.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use gongfang_vpn::{Error, TranslationWatcher, WatcherConfig};
use nix::sched::{CloneFlags, setns};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 5);
const ROUTER_ON_VPN: Ipv4Addr = Ipv4Addr::new(10, 81, 0, 1);
const SERVICE: Ipv4Addr = Ipv4Addr::new(10, 61, 2, 10);
const ROUTER_ON_GAME: Ipv4Addr = Ipv4Addr::new(10, 61, 2, 1);
const SERVICE_PORT: u16 = 1337;
const WAIT: Duration = Duration::from_secs(5);

/// Why this test cannot run here, if it cannot; with `GONGFANG_REQUIRE_VPN=1` that is a failure.
fn missing_prerequisite() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces, iptables and conntrack need root".to_owned());
    }
    for (program, package) in [("ip", "iproute2"), ("iptables", "iptables"), ("conntrack", "conntrack")] {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
            return Some(format!("{program} not found: install Debian's {package}"));
        }
    }
    None
}

fn ready() -> bool {
    match missing_prerequisite() {
        None => true,
        Some(reason) if std::env::var("GONGFANG_REQUIRE_VPN").is_ok_and(|v| v == "1") => {
            panic!("GONGFANG_REQUIRE_VPN=1 but {reason}")
        }
        Some(reason) => {
            eprintln!("skipped: {reason} (set GONGFANG_REQUIRE_VPN=1 to make this a failure)");
            false
        }
    }
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The namespaces of one test, removed on drop, also when an assertion failed.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lab {
    fn new(test: &str) -> Lab {
        Lab { prefix: format!("gfct-{}-{test}", std::process::id()), namespaces: Vec::new() }
    }

    fn namespace(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        run_ok("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        run_ok("ip", &["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A veth pair between `router` (address `router_address`) and `other` (address `address`,
    /// routing everything through the router), both in one /24.
    fn link(&self, n: u32, router: &str, router_address: Ipv4Addr, other: &str, address: Ipv4Addr) {
        let (inside, outside) = (format!("gfct{n}r"), format!("gfct{n}o"));
        // Made inside the router, so a failed run leaves nothing on the host.
        run_ok("ip", &["-n", router, "link", "add", &inside, "type", "veth", "peer", "name", &outside]);
        run_ok("ip", &["-n", router, "link", "set", &outside, "netns", other]);
        run_ok("ip", &["-n", router, "addr", "add", &format!("{router_address}/24"), "dev", &inside]);
        run_ok("ip", &["-n", router, "link", "set", &inside, "up"]);
        run_ok("ip", &["-n", other, "addr", "add", &format!("{address}/24"), "dev", &outside]);
        run_ok("ip", &["-n", other, "link", "set", &outside, "up"]);
        run_ok("ip", &["-n", other, "route", "add", "default", "via", &router_address.to_string()]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for namespace in &self.namespaces {
            let _ = run("ip", &["netns", "del", namespace]);
        }
    }
}

/// Runs `f` on a thread inside `namespace`'s network stack.
fn in_namespace<T: Send + 'static>(namespace: &str, f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    let file = File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
    thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("entering the namespace");
        f()
    })
}

#[test]
fn a_masqueraded_connection_is_told_with_its_real_peer() {
    if !ready() {
        return;
    }
    let mut lab = Lab::new("nat");
    let router = lab.namespace("r");
    let client = lab.namespace("c");
    let server = lab.namespace("s");
    lab.link(0, &router, ROUTER_ON_VPN, &client, CLIENT);
    lab.link(1, &router, ROUTER_ON_GAME, &server, SERVICE);
    run_ok("ip", &["netns", "exec", &router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let masquerade = format!(
        "netns exec {router} iptables -w 5 -t nat -A POSTROUTING -s 10.81.0.0/16 -d 10.61.0.0/16 -j MASQUERADE"
    );
    run_ok("ip", &masquerade.split(' ').collect::<Vec<_>>());

    let mut config = WatcherConfig::new("10.81.0.0/16".parse().unwrap(), vec!["10.61.0.0/16".parse().unwrap()]);
    config.namespace = Some(router.clone());
    let (watcher, translations) = TranslationWatcher::start(config).expect("the watcher starts");

    // The service answers with the source address it saw.
    let listener = in_namespace(&server, || TcpListener::bind(SocketAddrV4::new(SERVICE, SERVICE_PORT)).unwrap());
    let listener = listener.join().unwrap();
    let service = thread::spawn(move || {
        let (mut stream, from) = listener.accept().unwrap();
        stream.write_all(from.ip().to_string().as_bytes()).unwrap();
    });
    let before = SystemTime::now();
    let seen = in_namespace(&client, || {
        let mut stream =
            TcpStream::connect_timeout(&SocketAddr::from((SERVICE, SERVICE_PORT)), WAIT).expect("connecting");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut seen = String::new();
        stream.read_to_string(&mut seen).unwrap();
        seen
    })
    .join()
    .unwrap();
    service.join().unwrap();
    assert_eq!(seen, ROUTER_ON_GAME.to_string(), "the router masquerades: the service saw it, not the client");

    let translation = translations.recv_timeout(WAIT).expect("the connection is told");
    assert_eq!(translation.peer, CLIENT);
    assert_eq!(translation.target, SocketAddrV4::new(SERVICE, SERVICE_PORT));
    assert_eq!(translation.seen_as, ROUTER_ON_GAME);
    assert!(translation.at >= before, "told after the connection was made");

    // A connection inside the VPN side (the router's own address) is not into a game network.
    let _ = in_namespace(&client, || TcpStream::connect_timeout(&SocketAddr::from((ROUTER_ON_VPN, 9)), WAIT)).join();
    match translations.recv_timeout(Duration::from_millis(500)) {
        Err(RecvTimeoutError::Timeout) => {}
        other => panic!("a connection outside the game networks was told: {other:?}"),
    }
    assert_eq!(watcher.dropped(), 0);
    assert_eq!(watcher.ended(), None, "conntrack still runs");

    // Dropped, the watcher ends conntrack and its reader: the channel closes at once.
    let stopped = Instant::now();
    drop(watcher);
    assert_eq!(translations.recv_timeout(WAIT), Err(RecvTimeoutError::Disconnected));
    assert!(stopped.elapsed() < WAIT);
}

#[test]
fn a_namespace_that_does_not_exist_is_a_clear_error() {
    if !ready() {
        return;
    }
    let mut config = WatcherConfig::new("10.81.0.0/16".parse().unwrap(), vec!["10.61.0.0/16".parse().unwrap()]);
    config.namespace = Some(format!("gfct-{}-absent", std::process::id()));
    let error = TranslationWatcher::start(config).expect_err("no such namespace");
    assert!(matches!(error, Error::Command { .. }), "{error:?}");
    assert!(error.to_string().contains("absent"), "{error}");
}
