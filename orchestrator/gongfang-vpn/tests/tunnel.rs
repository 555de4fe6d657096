//! The gateway on real WireGuard: a team's machine (a network namespace joined to the host by a
//! veth pair) brings its tunnel up with `wg-quick` on the unmodified config file, reaches a
//! listener on the gateway's tunnel address, shows in the gateway's status, and is cut off when
//! its key is rotated or removed; nothing is left behind.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use gongfang_vpn::ipnet::Ipv4Net;
use gongfang_vpn::{
    AddressPlan, Backend, BackendChoice, Gateway, GatewayConfig, GatewayPeer, KEEPALIVE_SECONDS, PeerConfig,
    PresharedKey, PrivateKey, Programs, TeamPeers,
};
use nix::sched::{CloneFlags, setns};

/// Why these tests cannot run here, if they cannot; with `GONGFANG_REQUIRE_VPN=1` that is a
/// failure instead of a skip.
fn missing_prerequisite() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces and interfaces need root".to_owned());
    }
    for (program, package) in [
        ("wireguard-go", "wireguard-go"),
        ("wg", "wireguard-tools"),
        ("wg-quick", "wireguard-tools"),
        ("ip", "iproute2"),
    ] {
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

fn run_ok(program: &str, args: &[&str]) -> Output {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// What the test makes on the host: a namespace for the team's machine, a veth pair, and the
/// folder of the team's config. Removed on drop, also when an assertion failed.
struct TeamMachine {
    namespace: String,
    host_veth: String,
    tunnel: String,
    dir: tempfile::TempDir,
    host_address: Ipv4Addr,
    team_address: Ipv4Addr,
}

impl TeamMachine {
    fn new(suffix: &str) -> TeamMachine {
        let [a, b]: [u8; 2] = rand::random();
        let base = u32::from(Ipv4Addr::new(172, 31, a, b & 0xfc));
        let machine = TeamMachine {
            namespace: format!("gfvpn-test-{suffix}"),
            host_veth: format!("gfvh{suffix}"),
            tunnel: format!("gf{suffix}"),
            dir: tempfile::tempdir().expect("a temporary folder"),
            host_address: Ipv4Addr::from(base + 1),
            team_address: Ipv4Addr::from(base + 2),
        };
        let team_veth = format!("gfvn{suffix}");
        let ns = machine.namespace.as_str();
        run_ok("ip", &["netns", "add", ns]);
        run_ok("ip", &["link", "add", &machine.host_veth, "type", "veth", "peer", "name", &team_veth]);
        run_ok("ip", &["link", "set", &team_veth, "netns", ns]);
        run_ok("ip", &["address", "add", &format!("{}/30", machine.host_address), "dev", &machine.host_veth]);
        run_ok("ip", &["link", "set", &machine.host_veth, "up"]);
        run_ok("ip", &["-n", ns, "address", "add", &format!("{}/30", machine.team_address), "dev", &team_veth]);
        run_ok("ip", &["-n", ns, "link", "set", &team_veth, "up"]);
        run_ok("ip", &["-n", ns, "link", "set", "lo", "up"]);
        machine
    }

    /// Writes the config as a team would save it: named after the interface, readable by its
    /// owner only.
    fn save(&self, config: &PeerConfig) -> PathBuf {
        let path = self.dir.path().join(format!("{}.conf", self.tunnel));
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).expect("config file");
        file.write_all(config.render().expect("config renders").expose().as_bytes()).expect("config written");
        path
    }

    /// `wg-quick up FILE` (or down) in the team's machine, with wireguard-go as a team without
    /// kernel WireGuard runs it.
    fn wg_quick(&self, verb: &str, file: &Path) -> Output {
        let file = file.to_str().expect("a UTF-8 path");
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.namespace,
                "env",
                "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go",
                "wg-quick",
                verb,
                file,
            ],
        )
    }

    /// Connects from the team's machine to `target`, sends a line and reads the answer.
    fn exchange(&self, target: SocketAddr, line: &str) -> std::io::Result<String> {
        let namespace = File::open(format!("/run/netns/{}", self.namespace)).expect("the namespace's file");
        let line = line.to_owned();
        thread::spawn(move || {
            // Only this thread enters the team's machine.
            setns(&namespace, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
            stream.set_read_timeout(Some(Duration::from_secs(3)))?;
            stream.write_all(format!("{line}\n").as_bytes())?;
            let mut answer = String::new();
            BufReader::new(stream).read_line(&mut answer)?;
            Ok(answer.trim_end().to_owned())
        })
        .join()
        .expect("the team's thread")
    }
}

impl Drop for TeamMachine {
    fn drop(&mut self) {
        let config = self.dir.path().join(format!("{}.conf", self.tunnel));
        if self.tunnel_exists() {
            let _ = self.wg_quick("down", &config);
        }
        // A wireguard-go that wg-quick started and did not end keeps the namespace alive.
        for pid in processes_mentioning(&self.tunnel) {
            let _ = run("kill", &[&pid.to_string()]);
        }
        let _ = run("ip", &["netns", "delete", &self.namespace]);
        let _ = run("ip", &["link", "delete", &self.host_veth]);
    }
}

impl TeamMachine {
    fn tunnel_exists(&self) -> bool {
        run("ip", &["-n", &self.namespace, "link", "show", &self.tunnel]).status.success()
    }
}

/// Processes whose command line names `word` (the test's random suffix makes it unique).
fn processes_mentioning(word: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| String::from_utf8_lossy(arg).contains(word)))
        })
        .collect()
}

/// A listener on the gateway's tunnel address: answers each line with `pong: LINE` and notes
/// where each connection came from.
fn serve(address: Ipv4Addr) -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let listener = TcpListener::bind((address, 0)).expect("a listener on the gateway's tunnel address");
    let local = listener.local_addr().expect("its address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noted = Arc::clone(&seen);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Ok(peer) = stream.peer_addr() {
                noted.lock().unwrap().push(peer);
            }
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_ok() {
                let _ = (&stream).write_all(format!("pong: {line}").as_bytes());
            }
        }
    });
    (local, seen)
}

#[test]
fn a_team_connects_with_wg_quick_until_its_key_is_rotated_or_removed() {
    if !ready() {
        return;
    }
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let machine = TeamMachine::new(&suffix);

    let [x, y]: [u8; 2] = rand::random();
    let range = Ipv4Net::new(Ipv4Addr::new(10, 213, x, 0), 24).unwrap();
    let game_network = Ipv4Net::new(Ipv4Addr::new(10, 214, y, 0), 24).unwrap();
    let gateway_address = Ipv4Addr::new(10, 213, x, 1);
    let plan =
        AddressPlan::allocate(range, gateway_address, &[TeamPeers { team: "team1".to_owned(), peers: 2 }]).unwrap();
    let peer_addresses = plan.team("team1").unwrap().peers.clone();

    let gateway_key = PrivateKey::generate();
    let gateway = Gateway::start(GatewayConfig {
        interface: format!("gfg{suffix}"),
        namespace: None,
        private_key: gateway_key.clone(),
        listen_port: 0,
        address: Ipv4Net::new(gateway_address, range.prefix_len()).unwrap(),
        backend: BackendChoice::Auto,
        programs: Programs::default(),
    })
    .expect("the gateway starts");
    eprintln!("gateway {} runs on {}, port {}", gateway.interface(), gateway.backend(), gateway.listen_port());
    let probe = format!("gfp{suffix}");
    if run("ip", &["link", "add", &probe, "type", "wireguard"]).status.success() {
        let _ = run("ip", &["link", "delete", &probe]);
        assert_eq!(gateway.backend(), Backend::Kernel, "with kernel WireGuard the gateway uses it");
    } else {
        assert_eq!(gateway.backend(), Backend::Userspace, "without kernel WireGuard the gateway runs wireguard-go");
    }
    assert_ne!(gateway.listen_port(), 0);

    let peer_key = PrivateKey::generate();
    let psk = PresharedKey::generate();
    gateway
        .add_peer(&GatewayPeer {
            public_key: peer_key.public_key(),
            preshared_key: Some(psk.clone()),
            addresses: vec![peer_addresses[0]],
        })
        .expect("the peer is added");
    let config = |private_key: PrivateKey, psk: PresharedKey| PeerConfig {
        title: "test drill, team team1, peer 1".to_owned(),
        private_key,
        address: peer_addresses[0],
        gateway_public_key: gateway_key.public_key(),
        preshared_key: Some(psk),
        endpoint: format!("{}:{}", machine.host_address, gateway.listen_port()),
        game_networks: vec![game_network],
        gateway_address,
        keepalive_seconds: Some(KEEPALIVE_SECONDS),
    };
    let file = machine.save(&config(peer_key.clone(), psk.clone()));
    let up = machine.wg_quick("up", &file);
    assert!(up.status.success(), "wg-quick up failed: {}", String::from_utf8_lossy(&up.stderr));

    // The tunnel routes the game network and the gateway, and not the rest of the world.
    let routes = String::from_utf8(run_ok("ip", &["-n", &machine.namespace, "-4", "route", "show"]).stdout).unwrap();
    assert!(routes.contains(&format!("{game_network} dev {}", machine.tunnel)), "{routes}");
    assert!(routes.contains(&format!("{gateway_address} dev {}", machine.tunnel)), "{routes}");
    assert!(!routes.contains("default"), "{routes}");

    let (service, seen) = serve(gateway_address);
    let answer = machine.exchange(service, "hello from team1").expect("team1 reaches the gateway through its tunnel");
    assert_eq!(answer, "pong: hello from team1");
    assert_eq!(
        seen.lock().unwrap().iter().map(SocketAddr::ip).collect::<Vec<_>>(),
        [peer_addresses[0]],
        "the connection arrives from the peer's tunnel address"
    );

    let status = gateway.peers().expect("the gateway's peers");
    let peer = status.iter().find(|p| p.public_key == peer_key.public_key()).expect("the peer in the status");
    let handshake = peer.latest_handshake.expect("a handshake is recorded");
    let age = SystemTime::now().duration_since(handshake).unwrap_or_default();
    assert!(age < Duration::from_secs(60), "handshake {age:?} ago");
    assert_eq!(peer.endpoint.map(|e| e.ip()), Some(machine.team_address.into()));
    assert_eq!(peer.allowed_ips, [Ipv4Net::from(peer_addresses[0])]);
    assert!(peer.received_bytes > 0 && peer.sent_bytes > 0, "{peer:?}");

    // Rotation: the old key is refused at once; the re-issued config works.
    let new_key = PrivateKey::generate();
    let new_psk = PresharedKey::generate();
    gateway
        .rotate_peer(
            &peer_key.public_key(),
            &GatewayPeer {
                public_key: new_key.public_key(),
                preshared_key: Some(new_psk.clone()),
                addresses: vec![peer_addresses[0]],
            },
        )
        .expect("the peer's key is rotated");
    let keys: Vec<_> = gateway.peers().unwrap().iter().map(|p| p.public_key).collect();
    assert_eq!(keys, [new_key.public_key()]);
    assert!(machine.exchange(service, "old key").is_err(), "the old key still reaches the gateway");
    let down = machine.wg_quick("down", &file);
    assert!(down.status.success(), "wg-quick down failed: {}", String::from_utf8_lossy(&down.stderr));
    let file = machine.save(&config(new_key.clone(), new_psk));
    let up = machine.wg_quick("up", &file);
    assert!(up.status.success(), "wg-quick up failed: {}", String::from_utf8_lossy(&up.stderr));
    assert_eq!(machine.exchange(service, "new key").expect("the new key works"), "pong: new key");

    // Removal: the peer is cut off.
    gateway.remove_peer(&new_key.public_key()).expect("the peer is removed");
    assert!(gateway.peers().unwrap().is_empty());
    assert!(machine.exchange(service, "removed").is_err(), "a removed peer still reaches the gateway");
    assert_eq!(seen.lock().unwrap().len(), 2, "only the two connections with a valid key arrived");

    // Nothing is left: no interface, process, socket or namespace.
    let gateway_interface = gateway.interface().to_owned();
    gateway.stop().expect("the gateway stops");
    let down = machine.wg_quick("down", &file);
    assert!(down.status.success(), "wg-quick down failed: {}", String::from_utf8_lossy(&down.stderr));
    let namespace = machine.namespace.clone();
    drop(machine);
    assert!(!run("ip", &["link", "show", &gateway_interface]).status.success(), "the gateway's interface is left");
    assert!(!Path::new(&format!("/var/run/wireguard/{gateway_interface}.sock")).exists());
    // wireguard-go may take a moment to leave after its interface is gone.
    let mut left = processes_mentioning(&suffix);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        left = processes_mentioning(&suffix);
    }
    assert!(left.is_empty(), "processes left: {left:?}");
    let namespaces = String::from_utf8(run_ok("ip", &["netns", "list"]).stdout).unwrap();
    assert!(!namespaces.contains(&namespace), "{namespaces}");
    assert!(!run("ip", &["link", "show", &format!("gfvh{suffix}")]).status.success(), "the veth pair is left");
}

#[test]
fn a_gateway_in_a_namespace_is_removed_when_dropped() {
    if !ready() {
        return;
    }
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let namespace = format!("gfvpn-test-{suffix}");
    run_ok("ip", &["netns", "add", &namespace]);
    struct Namespace(String);
    impl Drop for Namespace {
        fn drop(&mut self) {
            let _ = run("ip", &["netns", "delete", &self.0]);
        }
    }
    let _namespace = Namespace(namespace.clone());
    let interface = format!("gfd{suffix}");
    let gateway = Gateway::start(GatewayConfig {
        interface: interface.clone(),
        namespace: Some(namespace.clone()),
        private_key: PrivateKey::generate(),
        listen_port: 0,
        address: "10.215.0.1/24".parse().unwrap(),
        backend: BackendChoice::Userspace,
        programs: Programs::default(),
    })
    .expect("the gateway starts in the namespace");
    assert_eq!(gateway.backend(), Backend::Userspace);
    let shown =
        String::from_utf8(run_ok("ip", &["-n", &namespace, "-4", "address", "show", &interface]).stdout).unwrap();
    assert!(shown.contains("10.215.0.1/24") && shown.contains("UP"), "{shown}");
    assert!(!run("ip", &["link", "show", &interface]).status.success(), "the interface is in the host's namespace");

    let again = Gateway::start(GatewayConfig {
        interface: interface.clone(),
        namespace: Some(namespace.clone()),
        private_key: PrivateKey::generate(),
        listen_port: 0,
        address: "10.215.0.1/24".parse().unwrap(),
        backend: BackendChoice::Userspace,
        programs: Programs::default(),
    })
    .expect_err("a second gateway with the same name is refused");
    assert!(again.to_string().contains("already exists"), "{again}");

    drop(gateway);
    assert!(!run("ip", &["-n", &namespace, "link", "show", &interface]).status.success(), "the interface is left");
    let mut left = processes_mentioning(&interface);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
        left = processes_mentioning(&interface);
    }
    assert!(left.is_empty(), "processes left: {left:?}");
}
