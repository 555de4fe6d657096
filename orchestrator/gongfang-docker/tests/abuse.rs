//! Hostile services on the real Docker engine: a service that writes a gibibyte to stdout as
//! fast as it can ends with a log on disk no larger than the scenario's `[logs]` limits, and the
//! judges' reader gives a line it never ended as one bounded, marked line; a team container has
//! no DNS path to the host (neither through the engine's embedded resolver nor straight to the
//! host's port 53) and no IPv6 path to the host either; the drill's ip6tables rules are
//! installed beside the IPv4 ones and removed with them.
//!
//! The services are one tiny static program (built here with `rustc`, in a `FROM scratch`
//! image) that floods its stdout or answers probe commands over TCP. The DNS server the probes
//! aim at is this test's own, bound on the team bridge's host address: no traffic leaves the
//! machine. Everything is labelled with the test's drill and removed at the end, also when a
//! test fails. Skips with a message where no engine exists; `GONGFANG_REQUIRE_DOCKER=1` makes
//! that a failure.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkingConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use chrono::Utc;
use common::{DrillGuard, ask, drill, engine, scenario, service, team};
use futures::FutureExt;
use gongfang_core::scenario::{ImageSource, Ipv4Net, LogRules, Role};
use gongfang_docker::firewall::ipv6_available;
use gongfang_docker::{
    Backend, Family, Firewall, MAX_LINE_BYTES, Orchestrator, Runtime, ServiceExtras, ServiceLogs, Settings,
};

const PATIENCE: Duration = Duration::from_secs(30);

/// The program in the test image. `GF_MODE=flood` writes `GF_BYTES` bytes of 1 KiB stdout lines
/// (`<12-digit number> xxx…`), `GF_MODE=endless` writes `GF_BYTES` bytes without any end of
/// line, both after a line `starting` and a pause of `GF_DELAY_MS` if that is set; then (and at once in any other mode) it answers one command per TCP line on 8080:
/// `WRITTEN` -> bytes written so far; `DNS <ip> <name>` -> an A query over UDP to `ip:53`,
/// answered `ANSWER <ip>`, `RCODE <n>` or `FAIL <why>`; `DNSTCP <ip>` -> `OPEN` or `FAIL` for
/// a TCP connection to `ip:53`; `CONNECT6 <link-local> <port>` -> the same over the
/// container's `eth0` to an IPv6 link-local address; `FILE <path>` -> the file on one line.
const PROGRAM: &str = r#"
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static WRITTEN: AtomicU64 = AtomicU64::new(0);

fn dns(server: &str, name: &str) -> String {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let sock = match UdpSocket::bind("0.0.0.0:0") { Ok(s) => s, Err(e) => return format!("FAIL {e}") };
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    if let Err(e) = sock.send_to(&q, (server, 53)) { return format!("FAIL {e}"); }
    let mut buf = [0u8; 512];
    let n = match sock.recv(&mut buf) { Ok(n) => n, Err(e) => return format!("FAIL {e}") };
    let rcode = buf[3] & 0x0f;
    let answers = u16::from_be_bytes([buf[6], buf[7]]);
    if rcode != 0 || answers == 0 { return format!("RCODE {rcode}"); }
    let mut at = q.len();
    while at < n {
        // The answer's name: a pointer, or labels up to an empty one.
        while at < n && buf[at] != 0 && buf[at] & 0xc0 != 0xc0 { at += 1 + buf[at] as usize; }
        at += if at < n && buf[at] & 0xc0 == 0xc0 { 2 } else { 1 };
        if at + 10 > n { break; }
        let (typ, len) = (u16::from_be_bytes([buf[at], buf[at + 1]]), u16::from_be_bytes([buf[at + 8], buf[at + 9]]) as usize);
        if typ == 1 && len == 4 && at + 14 <= n {
            return format!("ANSWER {}.{}.{}.{}", buf[at + 10], buf[at + 11], buf[at + 12], buf[at + 13]);
        }
        at += 10 + len;
    }
    "RCODE none".to_owned()
}

fn answer(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["WRITTEN"] => WRITTEN.load(Ordering::Relaxed).to_string(),
        ["DNS", server, name] => dns(server, name),
        ["DNSTCP", server] => match server.parse::<std::net::IpAddr>() {
            Ok(ip) => match TcpStream::connect_timeout(&SocketAddr::new(ip, 53), Duration::from_secs(3)) {
                Ok(_) => "OPEN".to_owned(),
                Err(e) => format!("FAIL {e}"),
            },
            Err(e) => format!("FAIL {e}"),
        },
        ["CONNECT6", ip, port] => {
            let scope = std::fs::read_to_string("/sys/class/net/eth0/ifindex").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            match (ip.parse::<Ipv6Addr>(), port.parse::<u16>()) {
                (Ok(ip), Ok(port)) => match TcpStream::connect_timeout(&SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)), Duration::from_secs(3)) {
                    Ok(_) => "OPEN".to_owned(),
                    Err(e) => format!("FAIL {e}"),
                },
                _ => "FAIL bad address".to_owned(),
            }
        }
        ["FILE", path] => {
            let mut s = String::new();
            match std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut s)) {
                Ok(_) => s.replace('\n', " | "),
                Err(e) => format!("FAIL {e}"),
            }
        }
        _ => "ERR unknown command".to_owned(),
    }
}

fn serve() {
    let listener = TcpListener::bind("0.0.0.0:8080").expect("port 8080");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut out = stream.try_clone().unwrap();
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if out.write_all(format!("{}\n", answer(line.trim())).as_bytes()).is_err() { return; }
            }
        });
    }
}

fn main() {
    std::thread::spawn(serve);
    let bytes: u64 = std::env::var("GF_BYTES").ok().and_then(|b| b.parse().ok()).unwrap_or(0);
    let mode = std::env::var("GF_MODE").unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if let Some(ms) = std::env::var("GF_DELAY_MS").ok().and_then(|d| d.parse().ok()) {
        let _ = out.write_all(b"starting\n");
        let _ = out.flush();
        std::thread::sleep(Duration::from_millis(ms));
    }
    let mut buf = Vec::with_capacity(64 << 10);
    let mut seq = 0u64;
    while WRITTEN.load(Ordering::Relaxed) < bytes && (mode == "flood" || mode == "endless") {
        buf.clear();
        while buf.len() < 64 << 10 {
            if mode == "flood" {
                buf.extend_from_slice(format!("{seq:012} ").as_bytes());
                buf.resize(buf.len() + 1010, b'x');
                buf.push(b'\n');
                seq += 1;
            } else {
                buf.resize(buf.len() + 1024, b'y');
            }
        }
        if out.write_all(&buf).is_err() { break; }
        WRITTEN.fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
    let _ = out.flush();
    loop { std::thread::sleep(Duration::from_secs(3600)); }
}
"#;

/// A build folder with the program, built statically (musl, else static glibc), and a
/// `FROM scratch` Dockerfile.
fn program_context(dir: &Path) {
    std::fs::write(dir.join("program.rs"), PROGRAM).unwrap();
    let out = dir.join("program");
    let build = |extra: &[&str]| {
        std::process::Command::new("rustc")
            .args(["--edition", "2021", "-O"])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg(dir.join("program.rs"))
            .status()
            .is_ok_and(|s| s.success())
    };
    let built = build(&["--target", "x86_64-unknown-linux-musl"]) || build(&["-C", "target-feature=+crt-static"]);
    assert!(built, "cannot build the static test program");
    std::fs::remove_file(dir.join("program.rs")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY program /program\nUSER 65534:65534\nENTRYPOINT [\"/program\"]\n",
    )
    .unwrap();
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// The sizes of a container's log file and its rotated siblings (`<file>.1`, `<file>.2`, …).
fn log_files(log_path: &str) -> Vec<(String, u64)> {
    let path = Path::new(log_path);
    let (dir, name) = (path.parent().unwrap(), path.file_name().unwrap().to_string_lossy().into_owned());
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    files.sort();
    files
}

/// The per-file slack over `max-size`: the engine checks the size after writing a message, so
/// a file may pass it by one message (at most a 16 KiB part and its JSON around it).
const ONE_MESSAGE: u64 = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_on_stdout_leaves_a_bounded_log_and_bounded_lines() {
    let Some(engine) = engine(Backend::Docker) else { return };
    let drill = drill("flood");
    let _guard = DrillGuard { drill: drill.clone(), backend: Backend::Docker };
    let ctx = tempfile::tempdir().unwrap();
    program_context(ctx.path());
    let src = ImageSource::Build(ctx.path().to_owned());
    let mut flood = service(1, "flood", src.clone());
    let mut endless = service(2, "endless", src);
    // The writer's own speed is not what is tested: let it have a whole core.
    flood.limits.cpus = 1.0;
    endless.limits.cpus = 1.0;
    let mut s = scenario(&drill, vec![team(1, "alpha", Role::Both, "10.66.1.0/24")], vec![flood, endless]);
    let limits = LogRules { max_size_bytes: 1 << 20, max_files: 2 };
    s.logs = limits;
    let env = |mode: &str, bytes: u64, delay: &[&str]| ServiceExtras {
        env: [format!("GF_MODE={mode}"), format!("GF_BYTES={bytes}")]
            .into_iter()
            .chain(delay.iter().map(|d| (*d).to_owned()))
            .collect(),
        ..Default::default()
    };
    let settings = Settings {
        private_pool: Ipv4Net::parse("10.249.0.0/16").unwrap(),
        services: BTreeMap::from([
            // A first line at once, then a pause longer than a container's start-up, then the
            // flood: the kept log then starts well after the container's first line, which
            // only rotation explains.
            ("flood".to_owned(), env("flood", 1 << 30, &["GF_DELAY_MS=12000"])),
            ("endless".to_owned(), env("endless", 64 << 20, &[])),
        ]),
        ..Settings::default()
    };
    let orch = Orchestrator::new(engine.clone(), settings);
    let plan = orch.plan(&s).unwrap();
    let before = Utc::now();
    orch.up(&s).await.unwrap();

    // Until the gibibyte is written, or two minutes, whichever comes first.
    let flood_ip = Ipv4Addr::new(10, 66, 1, 2);
    let started = Instant::now();
    let written = loop {
        let n: u64 = blocking(move || ask(flood_ip, "WRITTEN", PATIENCE)).await.parse().unwrap();
        if n >= 1 << 30 || started.elapsed() > Duration::from_secs(120) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let endless_ip = Ipv4Addr::new(10, 66, 1, 3);
    let endless_written: u64 = loop {
        let n: u64 = blocking(move || ask(endless_ip, "WRITTEN", PATIENCE)).await.parse().unwrap();
        if n >= 64 << 20 || started.elapsed() > Duration::from_secs(150) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let elapsed = started.elapsed();
    let flood_name = plan.instance("alpha", "flood").unwrap().name.clone();
    let endless_name = plan.instance("alpha", "endless").unwrap().name.clone();
    engine.stop(&flood_name).await.unwrap();
    engine.stop(&endless_name).await.unwrap();
    eprintln!("flood wrote {} MiB in {elapsed:?}; endless wrote {} MiB", written >> 20, endless_written >> 20);
    assert!(written >= 256 << 20, "the flood wrote only {written} bytes in {elapsed:?}: too slow to show anything");
    assert!(endless_written >= 64 << 20, "the endless line reached only {endless_written} bytes");

    // On disk: never more than max-size x max-file (with one message of slack per file).
    let bound = limits.max_total_bytes() + u64::from(limits.max_files) * ONE_MESSAGE;
    for name in [&flood_name, &endless_name] {
        let raw = engine.inspect(name).await.unwrap().raw;
        assert_eq!(raw["HostConfig"]["LogConfig"]["Type"], "json-file", "{name}");
        assert_eq!(raw["HostConfig"]["LogConfig"]["Config"]["max-size"], "1048576", "{name}");
        assert_eq!(raw["HostConfig"]["LogConfig"]["Config"]["max-file"], "2", "{name}");
        let files = log_files(raw["LogPath"].as_str().unwrap());
        let total: u64 = files.iter().map(|(_, n)| n).sum();
        eprintln!("{name}: {files:?}");
        assert!(files.len() <= 2, "more files than max-file: {files:?}");
        assert!(total <= bound, "{name} keeps {total} bytes of log, over {bound}: {files:?}");
        assert!(total >= 1 << 20, "{name} keeps only {total} bytes: rotation kept less than one file");
    }

    // What is kept is the newest part: the oldest kept line is far into the flood.
    let logs = ServiceLogs::new(&engine, drill.clone());
    let now = Utc::now();
    let first = logs.window("alpha", "flood", before, now, 3).await.unwrap();
    assert_eq!(first.len(), 3, "{first:?}");
    let seq: u64 = first[0].text[..12].parse().unwrap();
    assert!(seq * 1024 >= written - bound, "oldest kept line #{seq}, yet {written} bytes were written");
    assert!(first.iter().all(|l| l.text.len() == 1023 && !l.truncated));
    // The judges are told that the window starts before what is kept.
    let kept = logs.retention("alpha", "flood", before).await.unwrap().expect("the flood's early lines are gone");
    assert_eq!(kept.kept_from, first[0].at);
    assert_eq!(
        (kept.component.as_str(), kept.max_size.as_deref(), kept.max_files.as_deref()),
        ("main", Some("1048576"), Some("2"))
    );
    assert_eq!(logs.retention("alpha", "flood", kept.kept_from).await.unwrap(), None, "a window within what is kept");

    // A line never ended: one line of the bound, marked, however much was written.
    let endless_lines = logs.window("alpha", "endless", before, now, 10).await.unwrap();
    assert_eq!(endless_lines.len(), 1, "{:?}", endless_lines.iter().map(|l| l.text.len()).collect::<Vec<_>>());
    assert_eq!(endless_lines[0].text.len(), MAX_LINE_BYTES);
    assert!(endless_lines[0].truncated);
    assert!(endless_lines[0].text.bytes().all(|b| b == b'y'));

    orch.down(&drill).await.unwrap();
}

/// A DNS server on the host for the test: answers every A query with 192.0.2.53 and counts
/// the queries (UDP) and connections (TCP) it gets.
struct HostDns {
    udp: Arc<AtomicUsize>,
    tcp: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl HostDns {
    fn start(ip: Ipv4Addr) -> HostDns {
        let (udp, tcp, stop) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let sock = UdpSocket::bind((ip, 53)).expect("bind the test DNS server on the bridge's address");
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (count, halt) = (udp.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !halt.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                if n < 12 {
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let mut reply = buf[..n].to_vec();
                reply[2..4].copy_from_slice(&[0x81, 0x80]);
                reply[6..8].copy_from_slice(&[0, 1]);
                reply[8..12].copy_from_slice(&[0, 0, 0, 0]);
                reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 53]);
                let _ = sock.send_to(&reply, from);
            }
        });
        let listener = TcpListener::bind(SocketAddr::from((ip, 53))).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (count, halt) = (tcp.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        HostDns { udp, tcp, stop }
    }

    fn seen(&self) -> (usize, usize) {
        (self.udp.load(Ordering::SeqCst), self.tcp.load(Ordering::SeqCst))
    }
}

impl Drop for HostDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Removes a container made outside the drill's plan when dropped, also when the test failed.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let engine = gongfang_docker::Engine::connect(Backend::Docker).unwrap();
            let _ = rt.block_on(engine.remove(&name));
        })
        .join();
    }
}

/// The IPv6 link-local address of a host interface, if it has one.
fn link_local(interface: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-6", "-o", "addr", "show", "dev", interface, "scope", "link"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let word = text.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?;
    Some(word.split('/').next()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_container_has_no_dns_or_ipv6_path_to_the_host() {
    let Some(engine) = engine(Backend::Docker) else { return };
    let drill = drill("dns");
    let _guard = DrillGuard { drill: drill.clone(), backend: Backend::Docker };
    let ctx = tempfile::tempdir().unwrap();
    program_context(ctx.path());
    let s = scenario(
        &drill,
        vec![team(1, "alpha", Role::Both, "10.67.1.0/24")],
        vec![service(1, "probe", ImageSource::Build(ctx.path().to_owned()))],
    );
    let pool = Ipv4Net::parse("10.248.0.0/16").unwrap();
    // First without the host rules, to show that each path exists and what closes it.
    let open =
        Orchestrator::new(engine.clone(), Settings { firewall: false, private_pool: pool, ..Settings::default() });
    let plan = open.plan(&s).unwrap();
    open.up(&s).await.unwrap();
    let gateway = Ipv4Addr::new(10, 67, 1, 1);
    let probe = Ipv4Addr::new(10, 67, 1, 2);
    let dns = HostDns::start(gateway);

    // A stand-in for a container as Docker makes it by default, with the host's resolver as
    // its upstream: on the same team network, created outside the drill's plan (and not
    // labelled with the drill, which reconciling would remove it for).
    let control_ip = Ipv4Addr::new(10, 67, 1, 200);
    let control = format!("gf-{drill}-control");
    let _control_guard = ContainerGuard(control.clone());
    let network = plan.networks[0].name.clone();
    let d = engine.docker();
    d.create_container(
        Some(CreateContainerOptionsBuilder::new().name(&control).build()),
        ContainerCreateBody {
            image: Some(plan.instance("alpha", "probe").unwrap().image.clone()),
            // The image's drill label would make it the drill's; another value keeps it apart.
            labels: Some([(gongfang_docker::labels::DRILL.to_owned(), format!("{drill}-control"))].into()),
            host_config: Some(HostConfig {
                network_mode: Some(network.clone()),
                dns: Some(vec![gateway.to_string()]),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(
                    [(
                        network.clone(),
                        EndpointSettings {
                            ipam_config: Some(EndpointIpamConfig {
                                ipv4_address: Some(control_ip.to_string()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    )]
                    .into(),
                ),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    d.start_container(&control, None).await.unwrap();

    let on = |ip: Ipv4Addr, cmd: String| blocking(move || ask(ip, &cmd, PATIENCE));
    let name = "probe.gongfang.test";
    // The host's DNS port answers when nothing closes it, and the default set-up forwards
    // names through the embedded resolver to it.
    assert_eq!(
        on(probe, format!("DNS {gateway} {name}")).await,
        "ANSWER 192.0.2.53",
        "the test DNS server is reachable"
    );
    assert_eq!(
        on(control_ip, format!("DNS 127.0.0.11 {name}")).await,
        "ANSWER 192.0.2.53",
        "the default set-up forwards"
    );
    assert_eq!(on(probe, format!("DNSTCP {gateway}")).await, "OPEN");
    let deadline = Instant::now() + Duration::from_secs(5);
    while dns.seen().1 == 0 {
        assert!(Instant::now() < deadline, "the test DNS server never accepted the probe's connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A drill container's embedded resolver forwards nowhere: the name fails, the host hears
    // nothing; the drill's own names still resolve.
    let heard = dns.seen();
    let answer = on(probe, format!("DNS 127.0.0.11 {name}")).await;
    assert!(!answer.starts_with("ANSWER"), "a drill container resolved an outside name: {answer}");
    assert_eq!(dns.seen(), heard, "the embedded resolver forwarded a drill container's query to the host");
    assert_eq!(on(probe, "DNS 127.0.0.11 probe".into()).await, format!("ANSWER {probe}"));
    let resolv = on(probe, "FILE /etc/resolv.conf".into()).await;
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    let raw = engine.inspect(&plan.instance("alpha", "probe").unwrap().name).await.unwrap().raw;
    assert_eq!(raw["HostConfig"]["Dns"], serde_json::json!(["127.0.0.1"]));

    // IPv6: the bridge's link-local address, which the kernel gives every interface.
    let bridge = plan.networks[0].bridge.clone();
    let v6_listener = std::net::TcpListener::bind("[::]:0").unwrap();
    let v6_port = v6_listener.local_addr().unwrap().port();
    let bridge_ll = link_local(&bridge);
    let v6_open = match &bridge_ll {
        Some(ll) => on(probe, format!("CONNECT6 {ll} {v6_port}")).await,
        None => "no link-local address on the bridge".to_owned(),
    };
    // The engine switches IPv6 off on the interface of a network without it.
    let v6_off = on(probe, "FILE /proc/sys/net/ipv6/conf/eth0/disable_ipv6".into()).await;
    assert_eq!(v6_off, "1 |", "a team container has IPv6 on its game interface");
    eprintln!("IPv6 link-local to the host without the rules: {v6_open}");

    // Now with the host rules.
    let closed =
        Orchestrator::new(engine.clone(), Settings { firewall: true, private_pool: pool, ..Settings::default() });
    closed.up(&s).await.unwrap();
    let fw = Firewall::new(&drill);
    let heard = dns.seen();
    let (in0, _) = fw.rejected().await.unwrap();
    let direct = on(probe, format!("DNS {gateway} {name}")).await;
    assert!(direct.starts_with("FAIL"), "a team container reached the host's DNS port over UDP: {direct}");
    let tcp = on(probe, format!("DNSTCP {gateway}")).await;
    assert!(tcp.starts_with("FAIL"), "a team container reached the host's DNS port over TCP: {tcp}");
    let forwarded = on(control_ip, format!("DNS 127.0.0.11 {name}")).await;
    assert!(!forwarded.starts_with("ANSWER"), "the embedded resolver still reaches the host: {forwarded}");
    assert_eq!(dns.seen(), heard, "the host's DNS server heard a team container");
    let (in1, _) = fw.rejected().await.unwrap();
    assert!(in1 > in0, "the host rules rejected nothing ({in0} -> {in1})");

    if ipv6_available().await {
        assert!(fw.installed_family(Family::V6).await.unwrap(), "no ip6tables rules for the drill");
        let (v4, v6) = (fw.listed(Family::V4).await.unwrap(), fw.listed(Family::V6).await.unwrap());
        assert!(
            v6.contains(&format!("-A {} -i {bridge} -j REJECT --reject-with icmp6-port-unreachable", fw.input_chain())),
            "{v6}"
        );
        assert_eq!(
            v6.replace("icmp6-port-unreachable", "icmp-port-unreachable"),
            v4,
            "IPv6 rules differ from IPv4 ones"
        );
        if let (Some(ll), "OPEN") = (&bridge_ll, v6_open.as_str()) {
            let now = on(probe, format!("CONNECT6 {ll} {v6_port}")).await;
            assert!(now.starts_with("FAIL"), "a team container reached the host over IPv6 link-local: {now}");
        }
    } else {
        eprintln!("no working ip6tables here: IPv6 rules not checked");
    }
    drop(v6_listener);

    // Teardown removes the rules of both families, and the jumps to them.
    engine.remove(&control).await.unwrap();
    let t = closed.down(&drill).await.unwrap();
    assert!(t.firewall);
    assert!(!fw.installed_family(Family::V4).await.unwrap());
    if ipv6_available().await {
        assert!(!fw.installed_family(Family::V6).await.unwrap(), "ip6tables chains left after down");
        for parent in ["INPUT", "FORWARD"] {
            let out = std::process::Command::new("ip6tables").args(["-w", "-S", parent]).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(!text.contains(&fw.input_chain()) && !text.contains(&fw.forward_chain()), "{parent}: {text}");
        }
    }
}

#[tokio::test]
async fn ip6tables_rules_are_installed_beside_the_ipv4_ones_and_removed() {
    // Rules need root and the iptables tools, which an engine-backed test run has.
    if engine(Backend::Docker).is_none() {
        return;
    }
    if !ipv6_available().await {
        eprintln!("SKIPPED: no working ip6tables here");
        return;
    }
    let fw = Firewall::new(&drill("fw6"));
    let bridges = ["gfzzzzzzt1", "gfzzzzzzp17"];
    fw.apply(bridges).await.unwrap();
    let result = async {
        assert!(fw.installed_family(Family::V4).await.unwrap() && fw.installed_family(Family::V6).await.unwrap());
        let (v4, v6) = (fw.listed(Family::V4).await.unwrap(), fw.listed(Family::V6).await.unwrap());
        assert_eq!(v6.matches(" -j REJECT").count(), 4, "{v6}");
        assert_eq!(v6.replace("icmp6-port-unreachable", "icmp-port-unreachable"), v4);
        // Hooked first, where this host's Docker lets packets be filtered before its own rules.
        let parent = Firewall::forward_parent(Family::V6).await.unwrap();
        let out = std::process::Command::new("ip6tables").args(["-w", "-S", parent]).output().unwrap();
        let first = String::from_utf8_lossy(&out.stdout).lines().nth(1).map(str::to_owned).unwrap_or_default();
        assert_eq!(first, format!("-A {parent} -j {}", fw.forward_chain()));
        // Applying again replaces, never duplicates.
        fw.apply(bridges).await.unwrap();
        assert_eq!(fw.listed(Family::V6).await.unwrap(), v6);
    };
    // The rules are removed also when a check fails.
    let outcome = std::panic::AssertUnwindSafe(result).catch_unwind().await;
    fw.remove().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(!fw.installed_family(Family::V4).await.unwrap());
    assert!(!fw.installed_family(Family::V6).await.unwrap());
}
