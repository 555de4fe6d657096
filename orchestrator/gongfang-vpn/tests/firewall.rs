//! The peer firewall on real iptables: a router namespace stands in for the host, with the
//! tunnel's interface (a bridge both teams' peers sit behind, so a packet from one peer to
//! another goes in and out of it, as through the gateway), a link to each team's service and
//! one to the outside world. Each peer connects over real TCP and the listener answers with
//! the address it saw: what is reached, what is not, and which source the service sees; and an
//! attack connection held open is cut when the attacks close.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use gongfang_vpn::ipnet::Ipv4Net;
use gongfang_vpn::{DefendingTeam, Error, PeerFirewall, PeerFirewallConfig, remove_leftover_firewall};
use nix::sched::{CloneFlags, setns};

/// How long a connection attempt may take before the address counts as unreachable: the
/// rules drop, so a refused packet is never answered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const READ_TIMEOUT: Duration = Duration::from_secs(2);

const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 1);
const PEER1: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 4);
const PEER2: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 8);
const SERVICE1: Ipv4Addr = Ipv4Addr::new(10, 60, 1, 10);
const SERVICE2: Ipv4Addr = Ipv4Addr::new(10, 60, 2, 10);
const ROUTER_ON_1: Ipv4Addr = Ipv4Addr::new(10, 60, 1, 1);
const ROUTER_ON_2: Ipv4Addr = Ipv4Addr::new(10, 60, 2, 1);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PLATFORM_PORT: u16 = 8080;
const OTHER_HOST_PORT: u16 = 9090;
const SERVICE_PORT: u16 = 1337;
const OTHER_SERVICE_PORT: u16 = 2222;
/// A port of team 2's service that echoes lines on a connection kept open.
const ECHO_PORT: u16 = 1338;
const PEER_PORT: u16 = 7777;
/// The router's stand-in for the gateway's WireGuard interface.
const TUNNEL: &str = "gfw0";

/// Why these tests cannot run here, if they cannot; with `GONGFANG_REQUIRE_VPN=1` that is a
/// failure instead of a skip.
fn missing_prerequisite() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces and iptables need root".to_owned());
    }
    for (program, package) in
        [("ip", "iproute2"), ("iptables", "iptables"), ("iptables-restore", "iptables"), ("iptables-save", "iptables")]
    {
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

fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The namespaces and listeners of one test, removed on drop, also when an assertion failed.
struct Lab {
    /// `gfpf-PID-TEST`: the pid keeps two runs apart, the test's name two tests of one run.
    prefix: String,
    namespaces: Vec<String>,
    stop: Arc<AtomicBool>,
    listeners: Vec<JoinHandle<()>>,
}

impl Lab {
    fn new(test: &str) -> Lab {
        Lab {
            prefix: format!("gfpf-{}-{test}", std::process::id()),
            namespaces: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            listeners: Vec::new(),
        }
    }

    /// A new namespace `gfpf-PID-TEST-ROLE`, with its loopback up.
    fn namespace(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        run_ok("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        run_ok("ip", &["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// Answers every connection to `address` inside `namespace` with the address it came
    /// from, until the lab is dropped.
    fn listen(&mut self, namespace: &str, address: SocketAddr) {
        self.serve_tcp(namespace, address, |mut stream, from, _| {
            let _ = writeln!(stream, "{}", from.ip());
        });
    }

    /// Echoes every line sent on each connection to `address` inside `namespace`, keeping the
    /// connection open until the peer closes it or the lab is dropped.
    fn listen_echo(&mut self, namespace: &str, address: SocketAddr) {
        self.serve_tcp(namespace, address, |stream, _, stop| {
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                let mut writer = stream.try_clone().expect("a second handle");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while !stop.load(Ordering::SeqCst) {
                    match reader.read_line(&mut line) {
                        Ok(0) => return,
                        Ok(_) => {
                            let _ = writer.write_all(line.as_bytes());
                            line.clear();
                        }
                        Err(_) => {}
                    }
                }
            });
        });
    }

    /// Listens on `address` inside `namespace` and hands every connection, blocking, to
    /// `answer` with its peer's address and the lab's stop flag, until the lab is dropped.
    fn serve_tcp(
        &mut self,
        namespace: &str,
        address: SocketAddr,
        answer: impl Fn(TcpStream, SocketAddr, Arc<AtomicBool>) + Send + 'static,
    ) {
        let file = File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
        let stop = Arc::clone(&self.stop);
        let (ready, bound) = mpsc::channel();
        self.listeners.push(thread::spawn(move || {
            // Only this thread enters the namespace; the listener stays in it.
            let listener = setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
                .and_then(|()| TcpListener::bind(address))
                .and_then(|l| l.set_nonblocking(true).map(|()| l));
            let listener = match listener {
                Ok(listener) => {
                    let _ = ready.send(Ok(()));
                    listener
                }
                Err(error) => {
                    let _ = ready.send(Err(error.to_string()));
                    return;
                }
            };
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, from)) => {
                        let _ = stream.set_nonblocking(false);
                        answer(stream, from, Arc::clone(&stop));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        }));
        let bound = bound.recv_timeout(Duration::from_secs(5)).expect("the listener starts");
        bound.unwrap_or_else(|e| panic!("listening on {address} in {namespace}: {e}"));
    }
}

impl Lab {
    /// Echoes every UDP datagram to `address` inside `namespace` with the address it came
    /// from, until the lab is dropped.
    fn listen_udp(&mut self, namespace: &str, address: SocketAddr) {
        let file = File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
        let stop = Arc::clone(&self.stop);
        let (ready, bound) = mpsc::channel();
        self.listeners.push(thread::spawn(move || {
            let socket = setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
                .and_then(|()| UdpSocket::bind(address))
                .and_then(|s| s.set_read_timeout(Some(Duration::from_millis(20))).map(|()| s));
            let socket = match socket {
                Ok(socket) => {
                    let _ = ready.send(Ok(()));
                    socket
                }
                Err(error) => {
                    let _ = ready.send(Err(error.to_string()));
                    return;
                }
            };
            let mut buffer = [0; 64];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((_, from)) = socket.recv_from(&mut buffer) {
                    let _ = socket.send_to(from.ip().to_string().as_bytes(), from);
                }
            }
        }));
        let bound = bound.recv_timeout(Duration::from_secs(5)).expect("the listener starts");
        bound.unwrap_or_else(|e| panic!("listening on UDP {address} in {namespace}: {e}"));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for listener in self.listeners.drain(..) {
            let _ = listener.join();
        }
        for namespace in &self.namespaces {
            let _ = run("ip", &["netns", "delete", namespace]);
        }
    }
}

/// From inside `namespace`, connects to `target` and returns the source address the listener
/// saw; `None` when nothing answered in time.
fn reach(namespace: &str, target: (Ipv4Addr, u16)) -> Option<Ipv4Addr> {
    let file = File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
    let target = SocketAddr::from(target);
    thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("entering the namespace");
        let stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT).ok()?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        line.trim().parse().ok()
    })
    .join()
    .expect("the connecting thread")
}

/// From inside `namespace`, opens a connection to `target` that the caller keeps.
fn hold(namespace: &str, target: (Ipv4Addr, u16)) -> Option<TcpStream> {
    let file = File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
    let target = SocketAddr::from(target);
    thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("entering the namespace");
        let stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT).ok()?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
        Some(stream)
    })
    .join()
    .expect("the connecting thread")
}

/// Whether a line sent on `stream` comes back in time.
fn echoes(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"ping\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(&*stream).read_line(&mut line).is_ok() && line == "ping\n"
}

/// From inside `namespace`, sends a datagram to `target` and returns the source address the
/// listener saw; `None` when no answer came in time.
fn reach_udp(namespace: &str, target: (Ipv4Addr, u16)) -> Option<Ipv4Addr> {
    let file = File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
    let target = SocketAddr::from(target);
    thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("entering the namespace");
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
        socket.set_read_timeout(Some(CONNECT_TIMEOUT)).ok()?;
        socket.send_to(b"hello", target).ok()?;
        let mut buffer = [0; 64];
        let (length, _) = socket.recv_from(&mut buffer).ok()?;
        std::str::from_utf8(&buffer[..length]).ok()?.parse().ok()
    })
    .join()
    .expect("the sending thread")
}

/// Joins `a` in namespace `a_ns` to `b` in `b_ns` with a veth pair, made inside the
/// namespaces so no name touches the host.
fn link(a_ns: &str, a: &str, b_ns: &str, b: &str) {
    run_ok("ip", &["-n", a_ns, "link", "add", a, "type", "veth", "peer", "name", b, "netns", b_ns]);
    run_ok("ip", &["-n", a_ns, "link", "set", a, "up"]);
    run_ok("ip", &["-n", b_ns, "link", "set", b, "up"]);
}

fn sysctl(namespace: &str, setting: &str) {
    run_ok("ip", &["netns", "exec", namespace, "sysctl", "-q", "-w", setting]);
}

/// The router, both teams' peers behind its tunnel interface, both teams' services and a host
/// outside the game networks, each with its listeners.
struct Topology {
    /// Held for its drop: the namespaces go when the test ends.
    _lab: Lab,
    router: String,
    peer1: String,
    peer2: String,
}

fn topology(test: &str) -> Topology {
    let mut lab = Lab::new(test);
    let router = lab.namespace("r");
    sysctl(&router, "net.ipv4.ip_forward=1");
    // A redirect would tell one peer to reach the other without the router, which a real
    // tunnel never offers.
    sysctl(&router, "net.ipv4.conf.all.send_redirects=0");
    run_ok("ip", &["-n", &router, "link", "add", TUNNEL, "type", "bridge"]);
    sysctl(&router, &format!("net.ipv4.conf.{TUNNEL}.send_redirects=0"));
    run_ok("ip", &["-n", &router, "address", "add", &format!("{GATEWAY}/24"), "dev", TUNNEL]);
    run_ok("ip", &["-n", &router, "link", "set", TUNNEL, "up"]);

    let mut peers = Vec::new();
    for (n, address) in [(1, PEER1), (2, PEER2)] {
        let peer = lab.namespace(&format!("p{n}"));
        let port = format!("gfwp{n}");
        link(&router, &port, &peer, "eth0");
        run_ok("ip", &["-n", &router, "link", "set", &port, "master", TUNNEL]);
        // A single address, as a tunnel gives: every packet, to the other peer too, goes
        // through the router.
        run_ok("ip", &["-n", &peer, "address", "add", &format!("{address}/32"), "dev", "eth0"]);
        run_ok("ip", &["-n", &peer, "route", "add", &format!("{GATEWAY}/32"), "dev", "eth0"]);
        run_ok("ip", &["-n", &peer, "route", "add", "default", "via", &GATEWAY.to_string()]);
        sysctl(&peer, "net.ipv4.conf.all.accept_redirects=0");
        peers.push(peer);
    }
    for (role, router_address, address) in
        [("s1", ROUTER_ON_1, SERVICE1), ("s2", ROUTER_ON_2, SERVICE2), ("o", Ipv4Addr::new(192, 0, 2, 1), OUTSIDE)]
    {
        let host = lab.namespace(role);
        let port = format!("gf{role}");
        link(&router, &port, &host, "eth0");
        run_ok("ip", &["-n", &router, "address", "add", &format!("{router_address}/24"), "dev", &port]);
        run_ok("ip", &["-n", &host, "address", "add", &format!("{address}/24"), "dev", "eth0"]);
        run_ok("ip", &["-n", &host, "route", "add", "default", "via", &router_address.to_string()]);
        lab.listen(&host, (address, SERVICE_PORT).into());
        if role == "s2" {
            lab.listen(&host, (address, OTHER_SERVICE_PORT).into());
            lab.listen_echo(&host, (address, ECHO_PORT).into());
        }
    }
    lab.listen(&router, (Ipv4Addr::UNSPECIFIED, PLATFORM_PORT).into());
    lab.listen(&router, (Ipv4Addr::UNSPECIFIED, OTHER_HOST_PORT).into());
    lab.listen_udp(&router, (Ipv4Addr::UNSPECIFIED, PLATFORM_PORT).into());
    lab.listen(&peers[1], (PEER2, PEER_PORT).into());
    let [peer1, peer2] = <[String; 2]>::try_from(peers).expect("two peers");
    Topology { _lab: lab, router, peer1, peer2 }
}

fn config(drill: &str, router: &str, anonymise: bool, attacks_open: bool) -> PeerFirewallConfig {
    let net = |text: &str| text.parse::<Ipv4Net>().unwrap();
    PeerFirewallConfig {
        drill_slug: drill.to_owned(),
        interface: TUNNEL.to_owned(),
        gateway: GATEWAY,
        vpn_range: net("10.80.0.0/24"),
        platform_ports: vec![PLATFORM_PORT],
        game_networks: vec![net("10.60.1.0/24"), net("10.60.2.0/24")],
        teams: vec![
            DefendingTeam {
                slug: "team1".to_owned(),
                block: net("10.80.0.4/30"),
                services: vec![(SERVICE1, vec![SERVICE_PORT])],
                shell_port: None,
            },
            DefendingTeam {
                slug: "team2".to_owned(),
                block: net("10.80.0.8/30"),
                services: vec![(SERVICE2, vec![SERVICE_PORT, ECHO_PORT])],
                shell_port: None,
            },
        ],
        anonymise,
        attacks_open,
        // A namespace has no Docker, so no DOCKER-USER.
        forward_parent: None,
        namespace: Some(router.to_owned()),
    }
}

/// Everything iptables holds in the router, filter and nat tables.
fn saved(router: &str) -> String {
    run_ok("ip", &["netns", "exec", router, "iptables-save"])
        + &run_ok("ip", &["netns", "exec", router, "iptables-save", "-t", "nat"])
}

#[test]
fn peers_reach_what_the_drill_allows_and_nothing_else() {
    if !ready() {
        return;
    }
    let t = topology("reach");
    let (router, peer1, peer2) = (t.router.as_str(), t.peer1.as_str(), t.peer2.as_str());

    // Without rules everything is reachable, so every refusal below is the firewall's.
    for target in [(SERVICE2, SERVICE_PORT), (PEER2, PEER_PORT), (OUTSIDE, SERVICE_PORT), (ROUTER_ON_1, PLATFORM_PORT)]
    {
        assert_eq!(reach(peer1, target), Some(PEER1), "{target:?} is not reachable even without rules");
    }
    assert_eq!(reach_udp(peer1, (GATEWAY, PLATFORM_PORT)), Some(PEER1), "UDP is not answered even without rules");
    // A stand-in for Docker's own rules after DOCKER-USER, which drop a new connection from the
    // tunnel into a bridge: the peer firewall's chain must come first and accept.
    run_ok("ip", &["netns", "exec", router, "iptables", "-w", "-A", "FORWARD", "-i", TUNNEL, "-j", "DROP"]);

    let drill = "fw-reach";
    let firewall = PeerFirewall::new(config(drill, router, false, false)).expect("a valid configuration");
    assert!(!firewall.installed().unwrap());
    firewall.apply().expect("the rules load");
    firewall.apply().expect("applying again works");
    assert!(firewall.installed().unwrap());
    let rules = saved(router);
    assert_eq!(rules.matches("-A INPUT -j GF-VIN-fw-reach").count(), 1, "{rules}");
    let forward: Vec<&str> = rules.lines().filter(|l| l.starts_with("-A FORWARD ")).collect();
    assert_eq!(forward, ["-A FORWARD -j GF-VFW-fw-reach", "-A FORWARD -i gfw0 -j DROP"], "hooked once, first");
    assert!(!rules.contains("GF-VNAT"), "NAT without anonymise: {rules}");

    // Attacks closed: own services only, and the platform's port on the gateway's address.
    assert_eq!(reach(peer1, (SERVICE1, SERVICE_PORT)), Some(PEER1), "team1 cannot reach its own service");
    assert_eq!(reach(peer2, (SERVICE2, SERVICE_PORT)), Some(PEER2), "team2 cannot reach its own service");
    assert_eq!(reach(peer1, (SERVICE2, SERVICE_PORT)), None, "team1 reaches team2's service before attacks open");
    assert_eq!(reach(peer1, (GATEWAY, PLATFORM_PORT)), Some(PEER1), "team1 cannot reach the platform");
    assert_eq!(reach(peer1, (GATEWAY, OTHER_HOST_PORT)), None, "team1 reaches a port of the host's not the platform's");
    assert_eq!(reach_udp(peer1, (GATEWAY, PLATFORM_PORT)), None, "team1 reaches the host over UDP");
    assert_eq!(reach(peer1, (ROUTER_ON_1, PLATFORM_PORT)), None, "team1 reaches the host's bridge address");
    assert_eq!(reach(peer1, (PEER2, PEER_PORT)), None, "team1's peer reaches team2's peer");
    assert_eq!(reach(peer1, (OUTSIDE, SERVICE_PORT)), None, "team1 reaches beyond the game networks");

    // Attacks open: every defended service port, and still nothing else.
    firewall.set_attacks_open(true).expect("attacks open");
    assert!(firewall.attacks_open());
    assert_eq!(reach(peer1, (SERVICE2, SERVICE_PORT)), Some(PEER1), "team1 cannot attack team2's service");
    assert_eq!(reach(peer2, (SERVICE1, SERVICE_PORT)), Some(PEER2), "team2 cannot attack team1's service");
    assert_eq!(reach(peer1, (SERVICE2, OTHER_SERVICE_PORT)), None, "team1 reaches a port of team2's no service has");
    assert_eq!(reach(peer1, (PEER2, PEER_PORT)), None, "team1's peer reaches team2's peer during attacks");
    assert_eq!(reach(peer1, (OUTSIDE, SERVICE_PORT)), None, "team1 reaches beyond the game networks");
    assert_eq!(reach(peer1, (SERVICE1, SERVICE_PORT)), Some(PEER1), "team1 lost its own service");

    // A connection opened while attacks are open ends when they close; a team's own stays.
    let mut attack = hold(peer1, (SERVICE2, ECHO_PORT)).expect("team1 connects to team2's service during attacks");
    let mut own = hold(peer2, (SERVICE2, ECHO_PORT)).expect("team2 connects to its own service");
    assert!(echoes(&mut attack) && echoes(&mut own), "the echo service answers");

    firewall.set_attacks_open(false).expect("attacks close");
    assert!(!echoes(&mut attack), "an attack connection opened before the close still works after it");
    assert!(echoes(&mut own), "closing attacks cut a team's connection to its own service");
    assert_eq!(reach(peer1, (SERVICE2, SERVICE_PORT)), None, "team1 still reaches team2 after attacks closed");
    assert_eq!(reach(peer1, (SERVICE1, SERVICE_PORT)), Some(PEER1), "team1 lost its own service");

    // A team taken out of the drill: its open connections end and nothing of it is forwarded;
    // the other team still attacks it, and it still reaches the platform's port.
    firewall.set_attacks_open(true).expect("attacks open");
    let mut attack = hold(peer1, (SERVICE2, ECHO_PORT)).expect("team1 connects to team2's service during attacks");
    assert!(echoes(&mut attack));
    let out = std::collections::BTreeSet::from(["team1".to_owned()]);
    firewall.set_out_of_drill(&out).expect("team1 taken out");
    assert_eq!(firewall.out_of_drill(), out);
    assert!(!echoes(&mut attack), "a connection team1 opened before it was taken out still works");
    assert_eq!(reach(peer1, (SERVICE2, SERVICE_PORT)), None, "team1 still attacks after it was taken out");
    assert_eq!(reach(peer1, (SERVICE1, SERVICE_PORT)), None, "team1 still reaches its own service");
    assert_eq!(reach(peer1, (GATEWAY, PLATFORM_PORT)), Some(PEER1), "team1 lost the platform's board");
    assert_eq!(reach(peer2, (SERVICE1, SERVICE_PORT)), Some(PEER2), "team2 cannot attack team1 any more");
    assert_eq!(reach(peer2, (SERVICE2, SERVICE_PORT)), Some(PEER2), "team2 lost its own service");
    assert!(firewall.attacks_open(), "taking a team out left attacks as they were");
    let unknown = std::collections::BTreeSet::from(["team9".to_owned()]);
    let refused = firewall.set_out_of_drill(&unknown).expect_err("a team the drill does not have");
    assert!(refused.to_string().contains("team9"), "{refused}");
    assert_eq!(firewall.out_of_drill(), out, "a refused change changes nothing");
    firewall.set_out_of_drill(&Default::default()).expect("team1 brought back");
    assert_eq!(reach(peer1, (SERVICE2, SERVICE_PORT)), Some(PEER1), "team1 cannot attack once back");
    assert_eq!(reach(peer1, (SERVICE1, SERVICE_PORT)), Some(PEER1), "team1 lost its own service once back");
    firewall.set_attacks_open(false).expect("attacks close");

    // Anonymised: services see the router's address on their network, as they see checkers.
    let anonymised = PeerFirewall::new(config(drill, router, true, true)).unwrap();
    anonymised.apply().expect("the rules load with NAT");
    assert_eq!(reach(peer1, (SERVICE2, SERVICE_PORT)), Some(ROUTER_ON_2), "team2's service sees another source");
    assert_eq!(reach(peer1, (SERVICE1, SERVICE_PORT)), Some(ROUTER_ON_1), "team1's service sees another source");
    assert_eq!(reach(peer1, (GATEWAY, PLATFORM_PORT)), Some(PEER1), "the platform cannot tell teams apart");
    assert_eq!(reach(peer1, (PEER2, PEER_PORT)), None, "team1's peer reaches team2's peer");
    assert!(saved(router).contains("-A POSTROUTING -j GF-VNAT-fw-reach"));

    // Back without anonymise: the peer's own address again, and the NAT chain is gone.
    firewall.apply().expect("the rules load without NAT");
    assert_eq!(
        reach(peer2, (SERVICE2, SERVICE_PORT)),
        Some(PEER2),
        "the service does not see the peer after anonymise was turned off"
    );
    assert!(!saved(router).contains("GF-VNAT"));

    anonymised.apply().unwrap();
    firewall.remove().expect("the rules are removed");
    assert!(!firewall.installed().unwrap());
    let rules = saved(router);
    assert!(!rules.contains("GF-V"), "chains left: {rules}");
    assert!(rules.contains("-A FORWARD -i gfw0 -j DROP"), "another chain's rule was touched: {rules}");
    run_ok("ip", &["netns", "exec", router, "iptables", "-w", "-D", "FORWARD", "-i", TUNNEL, "-j", "DROP"]);
    assert_eq!(reach(peer1, (PEER2, PEER_PORT)), Some(PEER1), "a jump to a removed chain is left");
    firewall.remove().expect("removing twice is fine");
}

#[test]
fn a_leftover_firewall_is_found_by_its_drill_and_removed() {
    if !ready() {
        return;
    }
    let mut lab = Lab::new("left");
    let router = lab.namespace("r");
    let drill = "a-drill-with-a-long-slug-2026";
    let firewall = PeerFirewall::new(config(drill, &router, true, false)).unwrap();
    let error = firewall.set_attacks_open(true).expect_err("attacks cannot open before the rules exist");
    assert!(matches!(error, Error::FirewallNotInstalled { .. }), "{error}");
    assert!(error.to_string().contains("apply it first"), "{error}");

    firewall.apply().expect("the rules load");
    let chains = firewall.chains().clone();
    let rules = saved(&router);
    for chain in [&chains.input, &chains.forward, &chains.attack, &chains.nat] {
        assert!(chain.len() <= 28, "{chain}");
        assert!(rules.contains(&format!(":{chain} ")), "{chain} missing: {rules}");
    }
    // Another drill's firewall on the same host stays.
    let other = PeerFirewall::new(config("other", &router, false, false)).unwrap();
    other.apply().unwrap();

    assert!(remove_leftover_firewall(drill, Some(&router)).expect("the leftover is removed"));
    assert!(!remove_leftover_firewall(drill, Some(&router)).unwrap(), "nothing is left to remove");
    let rules = saved(&router);
    assert!(!rules.contains(&chains.forward) && !rules.contains(&chains.nat), "{rules}");
    assert!(other.installed().unwrap() && rules.contains("-A INPUT -j GF-VIN-other"), "{rules}");

    let parent = PeerFirewall::new(PeerFirewallConfig {
        forward_parent: Some("DOCKER-USER".to_owned()),
        ..config(drill, &router, false, false)
    })
    .unwrap();
    let error = parent.apply().expect_err("no DOCKER-USER in a namespace");
    assert!(error.to_string().contains("DOCKER-USER does not exist"), "{error}");
}
