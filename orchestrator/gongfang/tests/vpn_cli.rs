//! `gongfang vpn config` and `gongfang vpn status` end to end: the built binary on a temp
//! SQLite file and a scenario with `[vpn]`. With root, `wg-quick` and `wireguard-go`, a team's
//! machine (a network namespace) also brings its tunnel up on the unmodified file the command
//! wrote, and `status` shows its handshake with the drill's gateway; `serve` runs that gateway
//! with every issued peer and stops it on Ctrl-C, and `down` removes one a killed platform left.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gongfang_core::Secret;
use gongfang_store::Store;
use gongfang_vpn::{Gateway, GatewayConfig, GatewayPeer, PrivateKey};

fn gongfang(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .args(args)
        .env("GONGFANG_DATABASE_URL", url)
        .env("USER", "alice")
        .env("GONGFANG_LOG", "warn")
        .output()
        .expect("run gongfang")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(url: &str, args: &[&str]) -> (String, String) {
    let out = gongfang(url, args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "gongfang {args:?} failed\nstdout: {stdout}\nstderr: {stderr}");
    (stdout, stderr)
}

fn fails(url: &str, args: &[&str]) -> String {
    let out = gongfang(url, args);
    assert!(!out.status.success(), "gongfang {args:?} succeeded: {}", text(&out.stdout));
    text(&out.stderr)
}

/// A drill of two symmetric teams and an attacker, with WireGuard access for two peers each.
struct Drill {
    dir: tempfile::TempDir,
    url: String,
    scenario: PathBuf,
    slug: String,
}

impl Drill {
    fn new(listen: &str, vpn: bool) -> Drill {
        Drill::with_checker(listen, vpn, "notes.wasm")
    }

    fn with_checker(listen: &str, vpn: bool, checker: &str) -> Drill {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
        std::fs::write(dir.path().join("notes.wasm"), b"").unwrap();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        // Unique per run: the gateway's interface is named after the drill.
        let slug = format!("vc{:x}", (nanos ^ std::process::id()) & 0xff_ffff);
        let vpn = if vpn {
            format!("[vpn]\nlisten = \"{listen}\"\nrange = \"10.80.0.0/16\"\npeers_per_team = 2\n")
        } else {
            String::new()
        };
        let scenario = dir.path().join("scenario.toml");
        std::fs::write(
            &scenario,
            format!(
                "[drill]\nslug = \"{slug}\"\nname = \"VPN\"\nduration = \"1h\"\ndemo = true\nsecret = \"0123456789abcdef\"\n\n\
                 [[team]]\nid = 1\nslug = \"alpha\"\nname = \"Alpha\"\nnetwork = \"10.60.1.0/24\"\n\n\
                 [[team]]\nid = 2\nslug = \"bravo\"\nname = \"Bravo\"\nnetwork = \"10.60.2.0/24\"\n\n\
                 [[team]]\nid = 3\nslug = \"charlie\"\nname = \"Charlie\"\nrole = \"attacker\"\nnetwork = \"10.60.3.0/24\"\n\n\
                 [[service]]\nslug = \"notes\"\nname = \"Notes\"\nimage = \"notes:latest\"\nports = [8080]\nchecker = \"{checker}\"\n\n\
                 {vpn}"
            ),
        )
        .unwrap();
        Drill { dir, url, scenario, slug }
    }

    fn scenario(&self) -> &str {
        self.scenario.to_str().unwrap()
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("configs").join("alpha")
    }

    fn config(&self, extra: &[&str]) -> Output {
        let out = self.out();
        let mut args = vec!["vpn", "config", "alpha", "--out", out.to_str().unwrap(), "--scenario", self.scenario()];
        args.extend(extra);
        gongfang(&self.url, &args)
    }

    fn store(&self) -> Store {
        block_on(Store::connect(&self.url)).unwrap()
    }
}

/// `KEY = value` lines of a wg-quick file.
fn value<'a>(config: &'a str, key: &str) -> &'a str {
    config
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in\n{config}"))
        .trim()
}

fn private_key(config: &str) -> PrivateKey {
    PrivateKey::from_base64(&Secret::new(value(config, "PrivateKey").to_owned())).unwrap()
}

/// One runtime for every database call of the tests: a pool belongs to the runtime it was made on.
static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> =
    std::sync::LazyLock::new(|| tokio::runtime::Runtime::new().expect("a Tokio runtime"));

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

#[test]
fn config_writes_private_files_refuses_a_second_issue_and_rotates() {
    let drill = Drill::new("203.0.113.7:51999", true);
    let out = drill.config(&[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("2 WireGuard configs for team alpha issued"), "{stdout}");
    assert!(stderr.contains("cannot be shown again"), "{stderr}");

    let dir = drill.out();
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "the folder is its owner's");
    let files: Vec<PathBuf> = (1..=2).map(|n| dir.join(format!("alpha-{n}.conf"))).collect();
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        ["alpha-1.conf", "alpha-1.ssh", "alpha-2.conf", "alpha-2.ssh"],
        "a config and a shell key per peer, and nothing else"
    );
    let shell_keys = block_on(drill.store().shell_keys_of(gongfang_core::TeamId(1))).unwrap();
    for n in 1..=2u32 {
        let path = dir.join(format!("alpha-{n}.ssh"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
        let private = std::fs::read_to_string(&path).unwrap();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"), "{private}");
        assert!(!stdout.contains(private.lines().nth(1).unwrap()), "a shell key was printed");
        let public = ssh_public_key(&path);
        let stored = shell_keys.iter().find(|k| k.peer == Some(n)).expect("a stored key per peer");
        assert_eq!(stored.public_key, public, "the file's key is the stored one");
    }
    assert!(stdout.contains("ssh -i") && stdout.contains("-p 2201 SERVICE@10.80.0.1"), "{stdout}");
    let first: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();

    let store = drill.store();
    let gateway = PrivateKey::from_bytes(*block_on(store.vpn_gateway_key()).unwrap().expose()).public_key();
    let stored = block_on(store.vpn_peers_of(gongfang_core::TeamId(1))).unwrap();
    assert_eq!(stored.len(), 2);
    for (n, (file, config)) in files.iter().zip(&first).enumerate() {
        assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
        // The tunnel carries the defending teams' networks and the gateway, nothing else: not
        // the attacker's network, not a default route; no DNS.
        assert_eq!(value(config, "AllowedIPs"), "10.60.1.0/24, 10.60.2.0/24, 10.80.0.1/32", "{config}");
        assert!(!config.contains("DNS") && !config.contains("0.0.0.0/0"), "{config}");
        assert_eq!(value(config, "Endpoint"), "203.0.113.7:51999");
        assert_eq!(value(config, "PublicKey"), gateway.to_base64(), "the gateway's key from the database");
        // The first block of two (10.80.0.0/31) holds the gateway: alpha's is the next.
        let address = Ipv4Addr::new(10, 80, 0, 2 + u8::try_from(n).unwrap());
        assert_eq!(value(config, "Address"), format!("{address}/32"));
        assert_eq!(stored[n].address, address);
        assert_eq!(
            stored[n].public_key,
            private_key(config).public_key().to_base64(),
            "the file's key is the stored one"
        );
        let secret = value(config, "PrivateKey");
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "a private key was printed");
    }

    // A second issue is refused and changes nothing.
    let refused = drill.config(&[]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("team alpha already has 2 WireGuard configs") && stderr.contains("--rotate"), "{stderr}");
    let unchanged: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    assert_eq!(unchanged, first, "a refused issue rewrote the configs");

    // Rotation: new key pairs, the old public keys gone from the store.
    let (stdout, _) = {
        let out = drill.config(&["--rotate"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    assert!(stdout.contains("rotated"), "{stdout}");
    let rotated: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let now = block_on(store.vpn_peers_of(gongfang_core::TeamId(1))).unwrap();
    for n in 0..2 {
        assert_ne!(value(&rotated[n], "PrivateKey"), value(&first[n], "PrivateKey"), "peer {} kept its key", n + 1);
        assert_eq!(now[n].public_key, private_key(&rotated[n]).public_key().to_base64());
        assert_ne!(now[n].public_key, stored[n].public_key);
        assert_eq!(now[n].address, stored[n].address, "rotation keeps the address");
        assert!(now[n].rotated_at.is_some());
        assert_eq!(std::fs::metadata(&files[n]).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // The shell keys were replaced with the configs.
    let rotated_keys = block_on(store.shell_keys_of(gongfang_core::TeamId(1))).unwrap();
    assert_eq!(rotated_keys.len(), 2);
    assert!(rotated_keys.iter().all(|k| !shell_keys.contains(k)), "a generated shell key survived rotation");
    assert_eq!(rotated_keys[0].public_key, ssh_public_key(&dir.join("alpha-1.ssh")));

    // A key the team registers opens its shells too; a private key, a repeat or another
    // team's key is refused with what to do.
    let laptop = dir.join("laptop.pub");
    let (_, laptop_public) = gongfang::shell::generate_key("x").unwrap();
    std::fs::write(&laptop, format!("{laptop_public} someone@laptop\n")).unwrap();
    let laptop_arg = laptop.to_str().unwrap();
    let (said, _) = ok(
        &drill.url,
        &["vpn", "shell-key", "add", "alpha", "--key", laptop_arg, "--scenario", drill.scenario(), "--actor", "alice"],
    );
    assert!(said.contains("(someone@laptop) for team alpha"), "{said}");
    let again =
        fails(&drill.url, &["vpn", "shell-key", "add", "alpha", "--key", laptop_arg, "--scenario", drill.scenario()]);
    assert!(again.contains("team alpha has this key already"), "{again}");
    let stolen =
        fails(&drill.url, &["vpn", "shell-key", "add", "bravo", "--key", laptop_arg, "--scenario", drill.scenario()]);
    assert!(stolen.contains("belongs to another team"), "{stolen}");
    let private = dir.join("alpha-1.ssh");
    let wrong = fails(
        &drill.url,
        &["vpn", "shell-key", "add", "alpha", "--key", private.to_str().unwrap(), "--scenario", drill.scenario()],
    );
    assert!(wrong.contains("this is a private key: give the public one"), "{wrong}");
    let (listed, _) = ok(&drill.url, &["vpn", "shell-key", "list", "alpha", "--scenario", drill.scenario()]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(listed.lines().any(|l| l.contains("someone@laptop") && l.contains("registered")), "{listed}");
    let id = block_on(store.shell_keys_of(gongfang_core::TeamId(1)))
        .unwrap()
        .into_iter()
        .find(|k| k.peer.is_none())
        .unwrap()
        .id;
    let (removed, _) = ok(
        &drill.url,
        &["vpn", "shell-key", "remove", "alpha", &id.to_string(), "--scenario", drill.scenario(), "--actor", "alice"],
    );
    assert!(removed.contains(&format!("removed key {id} of team alpha")), "{removed}");
    std::fs::remove_file(&laptop).unwrap();

    // Audited, without keys.
    let audit = block_on(store.list_audit(None, 100)).unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"vpn.config.issue") && actions.contains(&"vpn.config.rotate"), "{actions:?}");
    assert!(actions.contains(&"shell.key.add") && actions.contains(&"shell.key.remove"), "{actions:?}");
    let logged = format!("{:?}", audit.iter().map(|e| e.detail.to_string()).collect::<Vec<_>>());
    for config in first.iter().chain(&rotated) {
        assert!(!logged.contains(value(config, "PrivateKey")), "a private key reached the audit log");
        assert!(!logged.contains(&private_key(config).public_key().to_base64()), "a key reached the audit log");
    }
    assert!(audit.iter().all(|e| e.actor == "alice"));

    // Status lists every team's peers.
    let (stdout, _) = ok(&drill.url, &["vpn", "status", "--scenario", drill.scenario()]);
    let alpha: Vec<&str> = stdout.lines().filter(|l| l.starts_with("alpha ")).collect();
    assert_eq!(alpha.len(), 2, "{stdout}");
    assert!(alpha[0].contains("10.80.0.2") && alpha[0].contains(&now[0].public_key), "{stdout}");
    assert!(alpha[1].contains("10.80.0.3") && alpha[1].contains(&now[1].public_key), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("bravo ") && l.contains("no configs issued")), "{stdout}");

    // Mistakes are refused with what to do.
    let stderr = fails(&drill.url, &["vpn", "config", "zulu", "--out", "x", "--scenario", drill.scenario()]);
    assert!(stderr.contains("no team `zulu` in the scenario; its teams are: alpha, bravo, charlie"), "{stderr}");
    let plain = Drill::new("", false);
    let stderr = fails(&plain.url, &["vpn", "status", "--scenario", plain.scenario()]);
    assert!(stderr.contains("has no [vpn] table"), "{stderr}");
    block_on(store.close()).unwrap();
}

#[test]
fn configs_are_not_written_into_a_folder_others_can_read() {
    let drill = Drill::new("203.0.113.7", true);
    let out = drill.out();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = drill.config(&[]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("can be read by other users"), "{}", text(&refused.stderr));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "nothing written");
    let store = drill.store();
    assert!(block_on(store.vpn_peers()).unwrap().is_empty(), "nothing stored");
}

/// Why the handshake test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces and interfaces need root".to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["wireguard-go", "wg", "wg-quick", "ip", "bash", "timeout"]
        .into_iter()
        .find(|program| !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .map(|program| format!("{program} not found"))
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// A team's machine: a namespace joined to the host by a veth pair. Removed on drop.
struct TeamMachine {
    namespace: String,
    host_veth: String,
    config: Option<PathBuf>,
}

impl TeamMachine {
    fn new(suffix: &str, host: Ipv4Addr) -> TeamMachine {
        let machine =
            TeamMachine { namespace: format!("gfvpncli-{suffix}"), host_veth: format!("gfch{suffix}"), config: None };
        let team_veth = format!("gfcn{suffix}");
        let ns = machine.namespace.as_str();
        let team = Ipv4Addr::from(u32::from(host) + 1);
        for args in [
            vec!["netns", "add", ns],
            vec!["link", "add", &machine.host_veth, "type", "veth", "peer", "name", &team_veth],
            vec!["link", "set", &team_veth, "netns", ns],
            vec!["address", "add", &format!("{host}/30"), "dev", &machine.host_veth],
            vec!["link", "set", &machine.host_veth, "up"],
            vec!["-n", ns, "address", "add", &format!("{team}/30"), "dev", &team_veth],
            vec!["-n", ns, "link", "set", &team_veth, "up"],
            vec!["-n", ns, "link", "set", "lo", "up"],
        ] {
            let out = run("ip", &args);
            assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
        }
        machine
    }

    fn in_namespace(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.namespace];
        all.extend(args);
        run("ip", &all)
    }

    /// `wg-quick up FILE` as a team without kernel WireGuard runs it, on the file as written.
    fn up(&mut self, file: &Path) {
        let out = self.in_namespace(&[
            "env",
            "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go",
            "wg-quick",
            "up",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "wg-quick up: {}", text(&out.stderr));
        self.config = Some(file.to_owned());
    }
}

impl Drop for TeamMachine {
    fn drop(&mut self) {
        if let Some(config) = &self.config {
            let _ = self.in_namespace(&["wg-quick", "down", config.to_str().unwrap()]);
        }
        let _ = run("ip", &["netns", "delete", &self.namespace]);
        let _ = run("ip", &["link", "delete", &self.host_veth]);
    }
}

#[test]
fn status_shows_a_handshake_made_with_the_written_config() {
    if let Some(reason) = missing_prerequisite() {
        if std::env::var("GONGFANG_REQUIRE_VPN").is_ok_and(|v| v == "1") {
            panic!("GONGFANG_REQUIRE_VPN=1 but {reason}");
        }
        eprintln!("skipped: {reason} (set GONGFANG_REQUIRE_VPN=1 to make this a failure)");
        return;
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let suffix = format!("{:04x}", (nanos ^ std::process::id()) & 0xffff);
    let host =
        Ipv4Addr::new(172, 30, u8::try_from((nanos >> 8) & 0xff).unwrap(), u8::try_from(nanos & 0xfc).unwrap() | 1);
    let port = 40_000 + u16::try_from(nanos % 20_000).unwrap();
    let mut machine = TeamMachine::new(&suffix, host);
    let drill = Drill::new(&format!("{host}:{port}"), true);
    let out = drill.config(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The drill's gateway, as `gongfang up` runs it: the database's key, every issued peer.
    let store = drill.store();
    let key = PrivateKey::from_bytes(*block_on(store.vpn_gateway_key()).unwrap().expose());
    let gateway = Gateway::start(GatewayConfig {
        interface: gongfang_vpn::interface_name(&drill.slug),
        namespace: None,
        private_key: key,
        listen_port: port,
        address: "10.80.0.1/16".parse().unwrap(),
        backend: gongfang_vpn::BackendChoice::Auto,
        programs: gongfang_vpn::Programs::default(),
    })
    .expect("the drill's gateway starts");
    for peer in block_on(store.vpn_peers()).unwrap() {
        gateway
            .add_peer(&GatewayPeer {
                public_key: peer.public_key.parse().unwrap(),
                preshared_key: None,
                addresses: vec![peer.address],
            })
            .unwrap();
    }
    let (stdout, _) = ok(&drill.url, &["vpn", "status", "--scenario", drill.scenario()]);
    let alpha: Vec<&str> = stdout.lines().filter(|l| l.starts_with("alpha ")).collect();
    assert!(alpha.len() == 2 && alpha.iter().all(|l| l.ends_with("never")), "no one connected yet:\n{stdout}");

    // Peer 1's machine brings its tunnel up on the file as written and reaches a listener on
    // the gateway's tunnel address (where the platform's ports are).
    let listener = std::net::TcpListener::bind("10.80.0.1:0").expect("a listener on the gateway's address");
    let target = format!("/dev/tcp/10.80.0.1/{}", listener.local_addr().unwrap().port());
    machine.up(&drill.out().join("alpha-1.conf"));
    let reached = (0..10).any(|_| {
        let connect = machine.in_namespace(&["timeout", "2", "bash", "-c", &format!("exec 3<>{target}")]);
        connect.status.success() || {
            std::thread::sleep(Duration::from_millis(300));
            false
        }
    });
    assert!(reached, "the team's machine did not reach the gateway through its tunnel");
    let (accepted, from) = listener.accept().expect("the team's connection");
    drop(accepted);
    assert_eq!(from.ip(), Ipv4Addr::new(10, 80, 0, 2), "the connection came from peer 1's tunnel address");
    let (stdout, _) = ok(&drill.url, &["vpn", "status", "--scenario", drill.scenario()]);
    let alpha: Vec<&str> = stdout.lines().filter(|l| l.starts_with("alpha ")).collect();
    assert!(alpha[0].contains(" s ago)"), "peer 1 shows its handshake:\n{stdout}");
    assert!(alpha[1].ends_with("never"), "peer 2 never connected:\n{stdout}");

    // Rotating while the gateway runs: it takes the new keys and cuts the old tunnel at once.
    let out = drill.config(&["--rotate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("running gateway"), "{}", text(&out.stdout));
    let mut on_gateway: Vec<String> = gateway.peers().unwrap().iter().map(|p| p.public_key.to_base64()).collect();
    on_gateway.sort();
    let mut stored: Vec<String> = block_on(store.vpn_peers()).unwrap().into_iter().map(|p| p.public_key).collect();
    stored.sort();
    assert_eq!(on_gateway, stored, "the gateway holds exactly the stored keys");
    let cut = machine.in_namespace(&["timeout", "2", "bash", "-c", &format!("exec 3<>{target}")]);
    assert!(!cut.status.success(), "the old config still reaches the gateway after rotation");
    drop(machine);
    gateway.stop().unwrap();
    block_on(store.close()).unwrap();
}

fn interface_exists(interface: &str) -> bool {
    run("ip", &["link", "show", "dev", interface]).status.success()
}

/// Live processes (not zombies) whose command line names `word`.
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

#[test]
fn serve_runs_the_gateway_with_every_issued_peer_and_down_removes_a_leftover() {
    if let Some(reason) = missing_prerequisite() {
        if std::env::var("GONGFANG_REQUIRE_VPN").is_ok_and(|v| v == "1") {
            panic!("GONGFANG_REQUIRE_VPN=1 but {reason}");
        }
        eprintln!("skipped: {reason} (set GONGFANG_REQUIRE_VPN=1 to make this a failure)");
        return;
    }
    use std::io::BufRead as _;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let port = 40_000 + u16::try_from((nanos / 7) % 20_000).unwrap();
    let drill = Drill::with_checker(&format!("203.0.113.7:{port}"), true, gongfang_test_programs::components::GOOD);
    let interface = gongfang_vpn::interface_name(&drill.slug);
    let out = drill.config(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let dir = drill.dir.path();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .args(["serve", drill.scenario(), "--web", "127.0.0.1:0", "--submit", "127.0.0.1:0"])
        .arg("--summary")
        .arg(dir.join("up.json"))
        .arg("--tokens-file")
        .arg(dir.join("tokens.json"))
        .arg("--checker-cache")
        .arg(dir.join("cache"))
        .env("GONGFANG_DATABASE_URL", &drill.url)
        .env("GONGFANG_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run gongfang serve");
    let stdout = serve.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let announced = std::iter::from_fn(|| seen.recv_timeout(Duration::from_secs(120)).ok())
        .find(|line| line.starts_with("WireGuard gateway:"));
    let announced = announced.unwrap_or_else(|| {
        let _ = serve.kill();
        panic!("serve never said its gateway runs")
    });
    assert!(announced.contains(&interface) && announced.contains("inside the tunnel at 10.80.0.1"), "{announced}");
    assert!(interface_exists(&interface), "no interface {interface} while the drill runs");
    // Every issued peer is on the gateway: status finds each one there.
    let (status, _) = ok(&drill.url, &["vpn", "status", "--scenario", drill.scenario()]);
    let alpha: Vec<&str> = status.lines().filter(|l| l.starts_with("alpha ")).collect();
    assert!(alpha.len() == 2 && alpha.iter().all(|l| l.ends_with("never")), "{status}");

    // Ctrl-C stops the platform, and the gateway with it.
    let stopped = run("kill", &["-INT", &serve.id().to_string()]);
    assert!(stopped.status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while serve.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "serve did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!interface_exists(&interface), "the gateway outlived the platform");
    assert!(processes_mentioning(&interface).is_empty(), "a wireguard-go of the drill is still running");

    // A platform killed outright leaves its gateway: `down` removes it.
    let store = drill.store();
    let key = PrivateKey::from_bytes(*block_on(store.vpn_gateway_key()).unwrap().expose());
    let leftover = Gateway::start(GatewayConfig {
        interface: interface.clone(),
        namespace: None,
        private_key: key,
        listen_port: 0,
        address: "10.80.0.1/16".parse().unwrap(),
        backend: gongfang_vpn::BackendChoice::Auto,
        programs: gongfang_vpn::Programs::default(),
    })
    .expect("a gateway to leave behind");
    std::mem::forget(leftover);
    assert!(interface_exists(&interface));
    let down = gongfang(&drill.url, &["down", "--drill", &drill.slug]);
    let said = text(&down.stdout);
    assert!(said.contains("removed the WireGuard gateway left running"), "{said}\n{}", text(&down.stderr));
    if Path::new("/var/run/docker.sock").exists() {
        assert!(down.status.success(), "{}", text(&down.stderr));
    }
    assert!(!interface_exists(&interface), "down left the gateway's interface");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !processes_mentioning(&interface).is_empty() {
        assert!(std::time::Instant::now() < deadline, "down left the gateway's wireguard-go running");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing left: a second `down` has no gateway to remove.
    let again = gongfang(&drill.url, &["down", "--drill", &drill.slug]);
    assert!(!text(&again.stdout).contains("WireGuard"), "{}", text(&again.stdout));
    block_on(store.close()).unwrap();
}

/// The public half of an OpenSSH private key file, as the store keeps it (`ssh-keygen -y`).
fn ssh_public_key(path: &std::path::Path) -> String {
    let out = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(path).output().expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen -y: {}", text(&out.stderr));
    text(&out.stdout).split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}
