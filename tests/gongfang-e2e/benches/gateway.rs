//! What the drill's WireGuard gateway costs a team: HTTP requests from a team's machine to a
//! service through its `wg-quick` tunnel and the gateway, against the same requests to the same
//! server straight over a veth pair, in the same run: the latency of sequential requests on one
//! keep-alive connection, the throughput of one large body, and the CPU time the gateway's and
//! the team's `wireguard-go` spend per 1,000 requests.
//!
//! Everything lives in three network namespaces of its own, nothing on the host's network: the
//! team's machine, the gateway (started by [`Gateway::start`] with `wireguard-go`, forwarding to
//! the game network) and the service. The team brings its tunnel up as a team would, with the
//! rendered config and `WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up FILE`.
//! Namespaces, interfaces and processes are removed at the end, also after a failure.
//!
//! Run with `cargo bench -p gongfang-e2e --bench gateway`. It needs root, `wireguard-go`, `wg`,
//! `wg-quick` and `ip`; without them it says why and exits successfully.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail, ensure};
use gongfang_vpn::ipnet::Ipv4Net;
use gongfang_vpn::{
    AddressPlan, BackendChoice, Gateway, GatewayConfig, GatewayPeer, KEEPALIVE_SECONDS, PeerConfig, PresharedKey,
    PrivateKey, Programs, TeamPeers,
};
use nix::sched::{CloneFlags, setns};

/// Timed requests per path, after the warm-up (whose first request through the tunnel also
/// waits for the WireGuard handshake).
const REQUESTS: usize = 5_000;
const WARM_UP: usize = 200;
/// The large body, and how long its transfer may take before the throughput is taken from
/// what arrived, so a slow tunnel cannot stretch the run.
const BULK_BYTES: u64 = 200_000_000;
const BULK_LIMIT: Duration = Duration::from_secs(20);
/// How long the timed requests of one path may take in all, and any single read or connect.
const LATENCY_LIMIT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const PORT: u16 = 8080;

/// The team's machine reaches the gateway's UDP port over this /30 (its "internet").
const UNDERLAY_TEAM: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
const UNDERLAY_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
/// The direct path: a veth pair between the team's machine and the service, no tunnel.
const DIRECT_TEAM: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const DIRECT_SERVICE: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
/// The VPN range with the gateway's tunnel address, and the game network behind the gateway.
const VPN_RANGE: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 0);
const VPN_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
const GAME_NETWORK: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 0);
const GAME_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 1);
const GAME_SERVICE: Ipv4Addr = Ipv4Addr::new(10, 214, 0, 2);

fn main() -> anyhow::Result<()> {
    if let Some(reason) = missing_prerequisite() {
        println!("gateway bench skipped: {reason}");
        return Ok(());
    }
    bench()
}

fn missing_prerequisite() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces and WireGuard interfaces need root".to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for (program, package) in [
        ("wireguard-go", "wireguard-go"),
        ("wg", "wireguard-tools"),
        ("wg-quick", "wireguard-tools"),
        ("ip", "iproute2"),
    ] {
        if !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
            return Some(format!("{program} not found: install Debian's {package}"));
        }
    }
    None
}

fn bench() -> anyhow::Result<()> {
    println!("load average at the start: {}", load_average());
    let ticks_per_second = clock_ticks_per_second();
    // Declared first, dropped last: the gateway and the server go before their namespaces.
    let lab = Lab::new();
    lab.build()?;

    let range = Ipv4Net::new(VPN_RANGE, 24)?;
    let game_network = Ipv4Net::new(GAME_NETWORK, 24)?;
    let plan = AddressPlan::allocate(range, VPN_GATEWAY, &[TeamPeers { team: "team1".to_owned(), peers: 1 }])?;
    let team_address = plan.team("team1").context("team1 in the address plan")?.peers[0];
    let gateway_key = PrivateKey::generate();
    let gateway = Gateway::start(GatewayConfig {
        interface: lab.gateway_interface.clone(),
        namespace: Some(lab.gateway.clone()),
        private_key: gateway_key.clone(),
        listen_port: 0,
        address: Ipv4Net::new(VPN_GATEWAY, range.prefix_len())?,
        backend: BackendChoice::Userspace,
        programs: Programs::default(),
    })?;
    let team_key = PrivateKey::generate();
    let psk = PresharedKey::generate();
    gateway.add_peer(&GatewayPeer {
        public_key: team_key.public_key(),
        preshared_key: Some(psk.clone()),
        addresses: vec![team_address],
    })?;
    let config = PeerConfig {
        title: "gateway bench, team team1, peer 1".to_owned(),
        private_key: team_key.clone(),
        address: team_address,
        gateway_public_key: gateway_key.public_key(),
        preshared_key: Some(psk),
        endpoint: format!("{UNDERLAY_GATEWAY}:{}", gateway.listen_port()),
        game_networks: vec![game_network],
        gateway_address: VPN_GATEWAY,
        keepalive_seconds: Some(KEEPALIVE_SECONDS),
    };
    lab.save(&config)?;
    let up = lab.wg_quick("up")?;
    ensure!(up.status.success(), "wg-quick up failed: {}", String::from_utf8_lossy(&up.stderr));
    // Only the tunnel may carry the game network, or the "tunnel" figures would be direct ones.
    let route = run_ok("ip", &["-n", &lab.team, "-4", "route", "get", &GAME_SERVICE.to_string()])?;
    ensure!(
        route.contains(&format!("dev {}", lab.tunnel)),
        "the game network is not routed through the tunnel: {route}"
    );

    let gateway_go = wireguard_go_pid(&lab.gateway_interface)?;
    let team_go = wireguard_go_pid(&lab.tunnel)?;
    let pids = [gateway_go, team_go];
    let _server = Server::start(&lab.service)?;

    let direct = SocketAddr::from((DIRECT_SERVICE, PORT));
    let tunnel = SocketAddr::from((GAME_SERVICE, PORT));
    let direct_latency = in_namespace(&lab.team, move || latency(direct, pids))?;
    let tunnel_latency = in_namespace(&lab.team, move || latency(tunnel, pids))?;
    let direct_bulk = in_namespace(&lab.team, move || bulk(direct, pids))?;
    let tunnel_bulk = in_namespace(&lab.team, move || bulk(tunnel, pids))?;

    let status = gateway.peers()?;
    let peer =
        status.iter().find(|p| p.public_key == team_key.public_key()).context("the team in the gateway's status")?;

    let tick_ms = 1000.0 / ticks_per_second as f64;
    let cpu_per_thousand =
        |l: &Latency, which: usize| l.cpu_ticks[which] as f64 * tick_ms * 1000.0 / l.sorted.len() as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (d50, d99) = (direct_latency.percentile(0.50), direct_latency.percentile(0.99));
    let (t50, t99) = (tunnel_latency.percentile(0.50), tunnel_latency.percentile(0.99));

    println!();
    println!(
        "WireGuard gateway (wireguard-go at both ends) against direct access: {} and {} sequential HTTP/1.1 \
         requests on one keep-alive connection, one body of {} and {} MB",
        direct_latency.sorted.len(),
        tunnel_latency.sorted.len(),
        direct_bulk.bytes / 1_000_000,
        tunnel_bulk.bytes / 1_000_000,
    );
    println!("| | direct | tunnel | tunnel/direct |");
    println!("|---|---|---|---|");
    println!("| latency p50 | {:.3} ms | {:.3} ms | {} |", ms(d50), ms(t50), ratio(ms(t50), ms(d50)));
    println!("| latency p99 | {:.3} ms | {:.3} ms | {} |", ms(d99), ms(t99), ratio(ms(t99), ms(d99)));
    println!("| added latency at p50 (target ≤ 1 ms) | | {:.3} ms | |", ms(t50) - ms(d50));
    println!(
        "| throughput, one body (target ≥ 200 Mbit/s) | {:.0} Mbit/s | {:.0} Mbit/s | {} |",
        direct_bulk.mbit_per_second(),
        tunnel_bulk.mbit_per_second(),
        ratio(tunnel_bulk.mbit_per_second(), direct_bulk.mbit_per_second()),
    );
    for (which, name) in ["gateway's", "team's"].iter().enumerate() {
        let (d, t) = (cpu_per_thousand(&direct_latency, which), cpu_per_thousand(&tunnel_latency, which));
        println!("| {name} wireguard-go CPU per 1,000 requests | {d:.1} ms | {t:.1} ms | {} |", ratio(t, d));
    }
    for (which, name) in ["gateway's", "team's"].iter().enumerate() {
        let seconds = tunnel_bulk.cpu_ticks[which] as f64 / ticks_per_second as f64;
        println!(
            "| {name} wireguard-go CPU during the tunnel's transfer | | {:.2} s in {:.2} s ({:.0} % of a core) | |",
            seconds,
            tunnel_bulk.elapsed.as_secs_f64(),
            100.0 * seconds / tunnel_bulk.elapsed.as_secs_f64(),
        );
    }
    println!();
    println!(
        "the gateway counted {:.1} MB from the team and {:.1} MB to it (WireGuard packets); CPU resolution {tick_ms} ms",
        peer.received_bytes as f64 / 1e6,
        peer.sent_bytes as f64 / 1e6,
    );
    println!("load average at the end: {}", load_average());

    let down = lab.wg_quick("down")?;
    ensure!(down.status.success(), "wg-quick down failed: {}", String::from_utf8_lossy(&down.stderr));
    gateway.stop()?;
    Ok(())
}

fn ratio(tunnel: f64, direct: f64) -> String {
    if direct > 0.0 { format!("{:.2}×", tunnel / direct) } else { "—".to_owned() }
}

/// The bench's namespaces, and the folder of the team's config. Removed on drop, also when a
/// step failed half way.
struct Lab {
    team: String,
    gateway: String,
    service: String,
    /// Interface names are global through `wireguard-go`'s control sockets, so they carry the
    /// run's suffix too.
    tunnel: String,
    gateway_interface: String,
    suffix: String,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let suffix = format!("{:06x}", (nanos ^ std::process::id().rotate_left(12)) & 0xff_ffff);
        Lab {
            team: format!("gfbench-{suffix}-team"),
            gateway: format!("gfbench-{suffix}-gw"),
            service: format!("gfbench-{suffix}-svc"),
            tunnel: format!("gfbt{suffix}"),
            gateway_interface: format!("gfbg{suffix}"),
            suffix,
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    fn build(&self) -> anyhow::Result<()> {
        let (team, gateway, service) = (self.team.as_str(), self.gateway.as_str(), self.service.as_str());
        for ns in [team, gateway, service] {
            run_ok("ip", &["netns", "add", ns])?;
            run_ok("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        // (interface, its namespace, its address, the other end's namespace, its address)
        let links = [
            ("underlay", team, format!("{UNDERLAY_TEAM}/30"), gateway, format!("{UNDERLAY_GATEWAY}/30")),
            ("direct", team, format!("{DIRECT_TEAM}/30"), service, format!("{DIRECT_SERVICE}/30")),
            ("game", gateway, format!("{GAME_GATEWAY}/24"), service, format!("{GAME_SERVICE}/24")),
        ];
        for (name, a, a_address, b, b_address) in &links {
            run_ok("ip", &["-n", a, "link", "add", name, "type", "veth", "peer", "name", name, "netns", b])?;
            for (ns, address) in [(a, a_address), (b, b_address)] {
                run_ok("ip", &["-n", ns, "address", "add", address, "dev", name])?;
                run_ok("ip", &["-n", ns, "link", "set", name, "up"])?;
            }
        }
        // Answers to the team's tunnel address go back through the gateway.
        run_ok("ip", &["-n", service, "route", "add", &format!("{VPN_RANGE}/24"), "via", &GAME_GATEWAY.to_string()])?;
        // Forwarding is a setting of the gateway's namespace only, not of the host.
        run_ok("ip", &["netns", "exec", gateway, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
        Ok(())
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.conf", self.tunnel))
    }

    /// Writes the config as a team saves it: named after the interface, readable by its owner.
    fn save(&self, config: &PeerConfig) -> anyhow::Result<()> {
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(self.config_path())?;
        file.write_all(config.render()?.expose().as_bytes())?;
        Ok(())
    }

    fn wg_quick(&self, verb: &str) -> anyhow::Result<Output> {
        let file = self.config_path();
        let file = file.to_str().context("a UTF-8 path")?;
        let env = "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go";
        Ok(run("ip", &["netns", "exec", &self.team, "env", env, "wg-quick", verb, file])?)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if run("ip", &["-n", &self.team, "link", "show", &self.tunnel]).is_ok_and(|o| o.status.success()) {
            let _ = self.wg_quick("down");
        }
        // A wireguard-go left running would keep its namespace alive.
        for pid in wireguard_go_pids(&self.suffix) {
            let _ = run("kill", &[&pid.to_string()]);
        }
        for ns in [&self.team, &self.gateway, &self.service] {
            let _ = run("ip", &["netns", "delete", ns]);
        }
    }
}

fn run(program: &str, args: &[&str]) -> std::io::Result<Output> {
    Command::new(program).args(args).output()
}

fn run_ok(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = run(program, args).with_context(|| format!("running {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `work` on a thread of its own inside the namespace: only that thread enters it.
fn in_namespace<T: Send + 'static>(
    namespace: &str,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let handle = File::open(format!("/run/netns/{namespace}")).with_context(|| format!("namespace {namespace}"))?;
    thread::spawn(move || {
        setns(&handle, CloneFlags::CLONE_NEWNET)?;
        work()
    })
    .join()
    .map_err(|_| anyhow!("a thread in namespace {namespace} panicked"))?
}

/// `wireguard-go` processes whose command line names `word` (an interface, or the run's suffix).
fn wireguard_go_pids(word: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "wireguard-go"))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| String::from_utf8_lossy(arg).contains(word)))
        })
        .collect()
}

fn wireguard_go_pid(interface: &str) -> anyhow::Result<u32> {
    match wireguard_go_pids(interface)[..] {
        [pid] => Ok(pid),
        ref pids => bail!("expected one wireguard-go for {interface}, found {pids:?}"),
    }
}

/// User plus system time of a process, all its threads, in clock ticks (fields 14 and 15 of
/// `/proc/PID/stat`, counted after the command name, which may hold spaces).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').context("a stat line")?.1.split_whitespace().collect();
    // After ")" the first field is the 3rd.
    Ok(fields[14 - 3].parse::<u64>()? + fields[15 - 3].parse::<u64>()?)
}

fn clock_ticks_per_second() -> u64 {
    run("getconf", &["CLK_TCK"])
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The service: HTTP/1.1 with keep-alive, a thread per connection. `GET /small` answers a
/// short JSON body, `GET /bulk/N` N bytes.
struct Server {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(namespace: &str) -> anyhow::Result<Server> {
        let listener = in_namespace(namespace, || Ok(TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT))?))?;
        // Polled, so that dropping the server ends the accept loop.
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let accept = thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        thread::spawn(move || {
                            let _ = serve(stream);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Server { stop, accept: Some(accept) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let chunk = vec![b'x'; 1 << 20];
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        // The rest of the head; the bench's requests have no body.
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim_end().is_empty() {
                break;
            }
        }
        if path == "/small" {
            let body = r#"{"team":"team1","service":"s1","status":"up","flags":3}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            writer.write_all(answer.as_bytes())?;
        } else if let Some(size) = path.strip_prefix("/bulk/").and_then(|n| n.parse::<u64>().ok()) {
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n");
            writer.write_all(head.as_bytes())?;
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                writer.write_all(&chunk[..n])?;
                left -= n as u64;
            }
        } else {
            writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
        }
    }
}

/// One keep-alive connection of the team's client.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(target: SocketAddr) -> anyhow::Result<Client> {
        let stream =
            TcpStream::connect_timeout(&target, IO_TIMEOUT).with_context(|| format!("connecting to {target}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(Client { writer: stream.try_clone()?, reader: BufReader::with_capacity(1 << 16, stream) })
    }

    /// Sends `GET path` and reads the answer's head; returns its Content-Length.
    fn request(&mut self, path: &str) -> anyhow::Result<u64> {
        write!(self.writer, "GET {path} HTTP/1.1\r\nHost: service\r\n\r\n")?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        ensure!(line.starts_with("HTTP/1.1 200 "), "answer to {path}: {line:?}");
        let mut length = None;
        loop {
            line.clear();
            ensure!(self.reader.read_line(&mut line)? > 0, "the server closed the connection");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse()?);
            }
        }
        length.context("an answer without Content-Length")
    }

    fn small(&mut self, body: &mut Vec<u8>) -> anyhow::Result<()> {
        let length = self.request("/small")?;
        body.resize(usize::try_from(length)?, 0);
        self.reader.read_exact(body)?;
        Ok(())
    }
}

struct Latency {
    sorted: Vec<Duration>,
    /// CPU ticks of each watched process over the timed requests.
    cpu_ticks: Vec<u64>,
}

impl Latency {
    fn percentile(&self, p: f64) -> Duration {
        let rank = (p * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }
}

/// Sequential requests on one connection, each timed from sending to the body's last byte.
fn latency(target: SocketAddr, pids: [u32; 2]) -> anyhow::Result<Latency> {
    let mut client = Client::connect(target)?;
    let mut body = Vec::new();
    for _ in 0..WARM_UP {
        client.small(&mut body)?;
    }
    let before = pids.map(cpu_ticks);
    let start = Instant::now();
    let mut times = Vec::with_capacity(REQUESTS);
    while times.len() < REQUESTS && start.elapsed() < LATENCY_LIMIT {
        let sent = Instant::now();
        client.small(&mut body)?;
        times.push(sent.elapsed());
    }
    let after = pids.map(cpu_ticks);
    let mut cpu_ticks = Vec::new();
    for (b, a) in before.into_iter().zip(after) {
        cpu_ticks.push(a?.saturating_sub(b?));
    }
    times.sort_unstable();
    Ok(Latency { sorted: times, cpu_ticks })
}

struct Bulk {
    bytes: u64,
    elapsed: Duration,
    cpu_ticks: Vec<u64>,
}

impl Bulk {
    fn mbit_per_second(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// One large body on a fresh connection, timed from the request to its last byte (or to
/// `BULK_LIMIT`, counting what arrived by then).
fn bulk(target: SocketAddr, pids: [u32; 2]) -> anyhow::Result<Bulk> {
    let mut client = Client::connect(target)?;
    let before = pids.map(cpu_ticks);
    let start = Instant::now();
    let length = client.request(&format!("/bulk/{BULK_BYTES}"))?;
    let mut buffer = vec![0; 1 << 18];
    let mut bytes = 0;
    while bytes < length && start.elapsed() < BULK_LIMIT {
        let n = client.reader.read(&mut buffer)?;
        ensure!(n > 0, "the body ended after {bytes} of {length} bytes");
        bytes += n as u64;
    }
    let elapsed = start.elapsed();
    let after = pids.map(cpu_ticks);
    let mut cpu_ticks = Vec::new();
    for (b, a) in before.into_iter().zip(after) {
        cpu_ticks.push(a?.saturating_sub(b?));
    }
    Ok(Bulk { bytes, elapsed, cpu_ticks })
}
