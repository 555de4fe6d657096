//! The demo drill end to end, on real Docker: `gongfang up` on the shipped demo scenario (the
//! whole challenge pack for three teams, twelve containers) with short ticks builds the four
//! services' images, starts the containers, the engine, both submission servers and the
//! scoreboard, and every service of every team is checked `ok`. The test then plays team 1: it
//! runs a team-style exploit against each of team 2's services and submits what it took; on the
//! Open Data Portal it runs the reference exploit, submits the stolen flags over TCP and over
//! HTTP, watches the websocket feed report the capture and the new scores, checks
//! `/api/scoreboard` against the database, patches team 2's portal as a defender would (live,
//! in its container), and sees the exploit get nothing while the checker stays `ok`. Finally
//! it stops the drill with Ctrl-C and starts it again: the same drill resumes.
//!
//! A third drill is played over WireGuard from two team machines (network namespaces), as
//! `teams_play_over_wireguard` describes; it also needs `wireguard-go`, `wireguard-tools` and
//! `iptables`, and is skipped without them unless `GONGFANG_REQUIRE_VPN=1`.
//!
//! Where things are comes from the JSON summary `gongfang up` writes, not from its printed
//! text. Every step that waits on the drill polls until a deadline, the exploit included; when
//! the test fails it prints the containers' logs.
//!
//! Needs Docker, root (`gongfang up` prepares the base images with debootstrap), python3 and
//! `patch`; skipped with a notice without Docker unless `GONGFANG_REQUIRE_DOCKER=1`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use gongfang_core::Tick;
use gongfang_core::scenario::Identify;
use gongfang_store::Store;
use gongfang_test_programs::components;
use gongfang_test_support::browser::{Browser, PAGE_READY, chromium_or_skip, click, fill, submit, target_dir};
use gongfang_test_support::http::request;
use gongfang_test_support::netns::{TeamMachine, run_ok};
use gongfang_test_support::scenario::{ScenarioBuilder, ServiceSpec, service, team};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const DRILL: &str = "e2e-up";

/// The drills of this file run one after the other: they share the base image and two cores.
static ONE_DRILL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// How long `gongfang up` may take to be ready: the first run on a machine builds the base
/// image with debootstrap.
const UP_DEADLINE: Duration = Duration::from_secs(900);
/// How long the exploit may keep failing (a service busy with the checker, a slow tick)
/// before the test gives up.
const EXPLOIT_DEADLINE: Duration = Duration::from_secs(120);
/// The longest one run of the exploit may take.
const EXPLOIT_RUN: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository folder")
}

/// Whether a Docker engine answers; without one the tests skip, unless
/// `GONGFANG_REQUIRE_DOCKER=1` makes that a failure.
fn docker_ready() -> anyhow::Result<bool> {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !answers {
        if std::env::var("GONGFANG_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            bail!("Docker is required (GONGFANG_REQUIRE_DOCKER=1) but not reachable");
        }
        eprintln!("skipping: no Docker engine");
    }
    Ok(answers)
}

/// The organisers' binary, built by `cargo test --workspace` (or `cargo build -p gongfang`).
fn gongfang_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).context("test binary has no target folder")?;
    let binary = profile_dir.join("gongfang");
    ensure!(binary.is_file(), "{} is missing: build it first with `cargo build -p gongfang`", binary.display());
    Ok(binary)
}

/// The demo drill as shipped (`challenges/demo`: the whole challenge pack for three teams),
/// with short ticks, this test's slug and networks, and absolute paths.
fn scenario(dir: &Path) -> anyhow::Result<PathBuf> {
    let demo = std::fs::read_to_string(repo().join("challenges/demo/scenario.toml"))?;
    let text = shipped(demo.replace("slug = \"hk-egov-demo\"", &format!("slug = \"{DRILL}\"")), "30s", "10s")?
        .replace("10.60.", "10.83.");
    ensure!(text.contains(&format!("slug = \"{DRILL}\"")), "{text}");
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The services of the challenge pack, each with the exploit script a team runs against it
/// in the demo drill and the flag store that script empties.
const PACK: [(&str, &str, u8); 4] = [
    ("opendata", "exploit.py", 0),
    ("citizenid", "debug-endpoint.py", 1),
    ("consent", "default-client.py", 1),
    ("bizsign", "default-pin.py", 0),
];

/// A shipped scenario's text with its tick shortened from `tick` to `short` (checkers get half
/// of it), and the pack's build folders and checkers as absolute paths: the checkers this
/// test build made.
fn shipped(text: String, tick: &str, short: &str) -> anyhow::Result<String> {
    let checker_timeout = text
        .lines()
        .find_map(|l| l.strip_prefix("checker_timeout = "))
        .context("the scenario sets checker_timeout")?
        .to_owned();
    let half = format!("\"{}s\"", short.trim_end_matches('s').parse::<u32>()? / 2);
    let mut text = text
        .replace(&format!("tick = \"{tick}\""), &format!("tick = \"{short}\""))
        .replace(&format!("checker_timeout = {checker_timeout}"), &format!("checker_timeout = {half}"));
    for (service, _, _) in PACK {
        let checker = match service {
            "opendata" => components::OPENDATA_CHECKER,
            "citizenid" => components::CITIZENID_CHECKER,
            "consent" => components::CONSENT_CHECKER,
            _ => components::BIZSIGN_CHECKER,
        };
        let folder = repo().join("challenges").join(service).join("service");
        text = text
            .replace(&format!("build = \"../{service}/service\""), &format!("build = \"{}\"", folder.display()))
            .replace(
                &format!("checker = \"../../sandbox/guests/target/wasm32-wasip2/release/{service}_checker.wasm\""),
                &format!("checker = \"{checker}\""),
            );
        ensure!(text.contains(checker), "{service}'s checker is not where the shipped scenario says: {text}");
    }
    ensure!(text.contains(&format!("tick = \"{short}\"")), "{text}");
    Ok(text)
}

/// The opendata service for the drills this file builds in code.
fn opendata() -> ServiceSpec {
    service("opendata")
        .name("Open Data Portal", "Open Data Portal")
        .build_from(&repo().join("challenges/opendata/service"))
        .checker(components::OPENDATA_CHECKER)
        .flag_stores(2)
        .limits(0.5, "256MiB")
        .volumes("/srv/opendata", "/var/lib/opendata")
}

/// Where a running `gongfang up` says things are: its JSON summary and tokens file.
#[derive(Debug, Default)]
struct Running {
    web: String,
    submit: String,
    /// Team id -> token, for tokens issued so far.
    tokens: BTreeMap<u16, String>,
    /// Team id -> the opendata service's `address:port`.
    services: BTreeMap<u16, String>,
    /// (team id, service slug) -> that service's `address:port`, for every service.
    addresses: BTreeMap<(u16, String), String>,
    /// The tokens file's whole text, to see that a restart issues none.
    tokens_text: String,
}

impl Running {
    fn read(summary: &Path) -> anyhow::Result<Running> {
        let s: Value = serde_json::from_str(&std::fs::read_to_string(summary)?)?;
        ensure!(s["format"] == 1 && s["drill"].is_string(), "a summary of the known format: {s:#}");
        let tokens_path = s["tokens_file"].as_str().context("tokens_file")?;
        let tokens_text = std::fs::read_to_string(tokens_path)?;
        let tokens_json: Value = serde_json::from_str(&tokens_text)?;
        let mut running = Running {
            web: s["web"].as_str().context("web")?.to_owned(),
            submit: s["submit_tcp"].as_str().context("submit_tcp")?.to_owned(),
            tokens_text,
            ..Running::default()
        };
        for team in s["teams"].as_array().context("teams")? {
            let id = u16::try_from(team["id"].as_u64().context("team id")?)?;
            let slug = team["slug"].as_str().context("team slug")?;
            if let Some(token) = tokens_json["tokens"][slug].as_str() {
                running.tokens.insert(id, token.to_owned());
            }
            for service in team["services"].as_array().context("services")? {
                let slug = service["service"].as_str().context("service slug")?;
                let address = service["address"].as_str().context("address")?;
                let port = service["ports"][0].as_u64().context("port")?;
                if slug == "opendata" {
                    running.services.insert(id, format!("{address}:{port}"));
                }
                running.addresses.insert((id, slug.to_owned()), format!("{address}:{port}"));
            }
        }
        Ok(running)
    }
}

/// A running `gongfang up`: where things are, and its printed output for failures.
struct Up {
    child: Child,
    printed: Running,
    lines: mpsc::Receiver<String>,
    summary: PathBuf,
}

impl Up {
    /// Runs `gongfang up` on `scenario` until it is ready, with `services` defending services.
    fn start(dir: &Path, scenario: &Path, services: usize) -> anyhow::Result<Up> {
        let db = format!("sqlite://{}?mode=rwc", dir.join("drill.db").display());
        let summary = dir.join("up.json");
        // A summary left by a killed run would point at ports nobody listens on.
        let _ = std::fs::remove_file(&summary);
        let mut child = Command::new(gongfang_binary()?)
            .current_dir(dir)
            .args(["up"])
            .arg(scenario)
            .args(["--database-url", &db, "--web", "127.0.0.1:0", "--submit", "127.0.0.1:0"])
            .arg("--summary")
            .arg(&summary)
            .arg("--tokens-file")
            .arg(dir.join("tokens.json"))
            .env("GONGFANG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("gongfang up | {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + UP_DEADLINE;
        while !summary.is_file() {
            if let Some(status) = child.try_wait()? {
                bail!("gongfang up exited with {status} before it was ready");
            }
            ensure!(Instant::now() < deadline, "gongfang up wrote no summary within {UP_DEADLINE:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
        let printed = Running::read(&summary)?;
        ensure!(printed.services.len() == services, "{services} defending teams' services: {printed:?}");
        Ok(Up { child, printed, lines, summary })
    }

    /// Ctrl-C, then waits for a clean exit.
    fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        ensure!(Command::new("kill").args(["-INT", &pid]).status()?.success(), "cannot signal gongfang up");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "gongfang up exited with {status} after Ctrl-C");
                break;
            }
            ensure!(Instant::now() < deadline, "gongfang up did not stop within 60 s of Ctrl-C");
            std::thread::sleep(Duration::from_millis(200));
        }
        ensure!(!self.summary.exists(), "the summary is removed when gongfang up stops");
        let said: Vec<String> = self.lines.try_iter().collect();
        ensure!(said.iter().any(|l| l.contains("run the same command again to resume")), "{said:?}");
        Ok(())
    }
}

impl Up {
    /// Kills the platform outright (SIGKILL), as a crash would: nothing of it cleans up.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints the last lines of every container of `drill`, for a failed test's reader.
fn dump_container_logs(drill: &str) {
    let Ok(out) = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter", &format!("label=gongfang.drill={drill}")])
        .output()
    else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        eprintln!("---- logs of container {name} (last 100 lines) ----");
        if let Ok(logs) = Command::new("docker").args(["logs", "--tail", "100", name]).output() {
            eprintln!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
        }
    }
}

/// Removes a drill's containers, networks, images and firewall rules, even after a failure.
struct Teardown(&'static str);

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Ok(binary) = gongfang_binary() {
            let _ = Command::new(binary).args(["down", "--drill", self.0]).status();
        }
    }
}

async fn get_json(web: &str, path: &str) -> anyhow::Result<Value> {
    let answer = request(web, "GET", path, &[], b"").await?;
    ensure!(answer.status == 200, "GET {path}: {} {}", answer.status, answer.text());
    answer.json()
}

async fn put_flags(web: &str, token: &str, flags: &[String]) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(flags)?;
    let headers = [("X-Team-Token", token), ("Content-Type", "application/json")];
    let answer = request(web, "PUT", "/flags", &headers, &body).await?;
    ensure!(answer.status == 200, "PUT /flags: {} {}", answer.status, answer.text());
    answer.json()
}

/// Polls `/api/scoreboard` until `done` holds.
async fn wait_for_board(web: &str, what: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    wait_for_json(web, "/api/scoreboard", what, done).await
}

/// Polls a JSON endpoint for up to two minutes until `done` holds.
async fn wait_for_json(web: &str, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let value = get_json(web, path).await?;
        if done(&value) {
            return Ok(value);
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}; {path} is {value:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A team's verdict in the board's tick: `ok` when every one of its services is, else the
/// first that is not.
fn verdict(board: &Value, team: u64) -> Option<&str> {
    let services = board["teams"].as_array()?.iter().find(|t| t["id"] == team)?["services"].as_array()?;
    let verdicts = services.iter().map(|s| s["verdict"].as_str()).collect::<Option<Vec<&str>>>()?;
    verdicts.iter().find(|v| **v != "ok").or(verdicts.first()).copied()
}

/// What the reference exploit's replay showed about a team's service in the board's tick.
fn replay(board: &Value, team: u64) -> Option<&str> {
    board["teams"].as_array()?.iter().find(|t| t["id"] == team)?["services"][0]["exploit"].as_str()
}

fn all_ok(board: &Value) -> bool {
    (1..=3).all(|t| verdict(board, t) == Some("ok"))
}

/// Runs the team-written exploit against `team` once, from the host or from a team machine's
/// network namespace, and returns the flags it printed.
async fn exploit_once(from: Option<&str>, web: &str, target: &str, team: u16) -> anyhow::Result<Vec<String>> {
    let (host, port) = target.rsplit_once(':').context("address has a port")?;
    let mut run = match from {
        Some(namespace) => {
            let mut command = tokio::process::Command::new("ip");
            command.args(["netns", "exec", namespace, "python3"]);
            command
        }
        None => tokio::process::Command::new("python3"),
    };
    let run = run
        .arg(repo().join("challenges/opendata/exploit/exploit.py"))
        .args([host, port, "--attack-info", &format!("http://{web}/api/attack-info"), "--team", &team.to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(EXPLOIT_RUN, run).await.context("exploit.py ran too long")??;
    ensure!(out.status.success(), "exploit.py failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8(out.stdout)?.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
}

/// Runs the exploit until a run succeeds with an answer `done` accepts, as the other steps
/// poll: a service can be slow for a moment (the checker's turn, a tick closing) without
/// anything being wrong. Fails with every failed run's reason at the deadline.
async fn exploit(
    from: Option<&str>,
    web: &str,
    target: &str,
    team: u16,
    done: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + EXPLOIT_DEADLINE;
    let mut failures = Vec::new();
    loop {
        match exploit_once(from, web, target, team).await {
            Ok(flags) if done(&flags) => return Ok(flags),
            Ok(flags) => failures.push(format!("not yet: {flags:?}")),
            Err(e) => failures.push(format!("{e:#}")),
        }
        ensure!(
            Instant::now() < deadline,
            "the exploit against team {team} at {target} did not succeed within {EXPLOIT_DEADLINE:?}: {failures:#?}"
        );
        eprintln!("exploit against team {team}: {}; retrying", failures.last().map_or("", String::as_str));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Runs `challenges/SERVICE/exploit/SCRIPT` against team 2's copy of `service` at `target`,
/// aimed at the flag ids the scoreboard publishes for `store`, until it prints flags.
async fn exploit_pack_service(
    web: &str,
    target: &str,
    service: &str,
    script: &str,
    store: u8,
) -> anyhow::Result<Vec<String>> {
    let (host, port) = target.rsplit_once(':').context("address has a port")?;
    let deadline = Instant::now() + EXPLOIT_DEADLINE;
    loop {
        let info = get_json(web, "/api/attack-info").await?;
        let team = info["teams"].as_array().context("teams")?.iter().find(|t| t["id"] == 2).context("team 2")?;
        let ids: Vec<String> = team["services"][service]["flag_ids"]
            .as_object()
            .into_iter()
            .flat_map(|ticks| ticks.values())
            .filter_map(|stores| stores[store.to_string()].as_str().map(str::to_owned))
            .collect();
        let run = tokio::process::Command::new("python3")
            .arg(repo().join("challenges").join(service).join("exploit").join(script))
            .args([host, port])
            .args(&ids)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(EXPLOIT_RUN, run).await.context("the exploit ran too long")??;
        let flags: Vec<String> =
            String::from_utf8(out.stdout)?.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
        if out.status.success() && !flags.is_empty() {
            return Ok(flags);
        }
        ensure!(
            Instant::now() < deadline,
            "{script} against team 2's {service} found nothing within {EXPLOIT_DEADLINE:?} (flag ids {ids:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The id of a running container.
fn container_id(name: &str) -> anyhow::Result<String> {
    let out = run_ok("docker", &["inspect", "--format", "{{.Id}}", name])?;
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// The password of the organiser account `olga`.
const OLGA_PASSWORD: &str = "a long passphrase for olga";

/// An organiser account `olga` on the drill in `dir`, made with the organisers' command, and
/// its API token.
fn organiser_token(dir: &Path) -> anyhow::Result<String> {
    let db = format!("sqlite://{}?mode=rwc", dir.join("drill.db").display());
    let binary = gongfang_binary()?;
    let add = Command::new(&binary)
        .args(["account", "add", "--name", "olga", "--role", "organiser"])
        .env("GONGFANG_DATABASE_URL", &db)
        .env("GONGFANG_ACCOUNT_PASSWORD", OLGA_PASSWORD)
        .output()?;
    ensure!(add.status.success(), "account add: {}", String::from_utf8_lossy(&add.stderr));
    let token = Command::new(&binary)
        .args(["account", "token", "--name", "olga"])
        .env("GONGFANG_DATABASE_URL", &db)
        .output()?;
    ensure!(token.status.success(), "account token: {}", String::from_utf8_lossy(&token.stderr));
    Ok(String::from_utf8(token.stdout)?.trim().to_owned())
}

/// Logs in to the console as olga in a headless Chromium, in Hong Kong Chinese, and resets
/// `team`'s `service`: the form filled, the button pressed twice (the second press confirms),
/// the page saying it was done, with no error on the page.
async fn reset_from_the_console(chromium: &Path, web: &str, team: &str, service: &str) -> anyhow::Result<()> {
    let mut browser = Browser::launch(chromium).await?;
    let cdp = &mut browser.cdp;
    let outcome = async {
        cdp.open_page().await?;
        // In Hong Kong Chinese: the console's other actions are pressed in English (`portal.rs`).
        cdp.navigate(&format!("http://{web}/console?lang=zh-HK")).await?;
        cdp.wait_for("the console's login form", PAGE_READY).await?;
        cdp.eval(&fill("login-name", "olga")).await?;
        cdp.eval(&fill("login-password", OLGA_PASSWORD)).await?;
        cdp.eval(&submit("login-form")).await?;
        cdp.wait_for("the console's teams", "document.getElementById('control-team')?.options.length > 0").await?;
        cdp.eval(&fill("control-team", team)).await?;
        cdp.eval(&fill("control-service", service)).await?;
        cdp.eval(&fill("control-action", "reset")).await?;
        cdp.eval(&fill("control-reason", "the team asked for a clean copy")).await?;
        cdp.eval(&click("#control-run")).await?;
        cdp.eval(&click("#control-run")).await?;
        let done = "document.documentElement.lang === 'zh-HK' \
                    && document.getElementById('live')?.textContent === '服務已重設為映像檔的全新副本。'";
        cdp.wait_for("the console saying, in Chinese, that the service was reset", done).await?;
        cdp.screenshot(&target_dir().join("console-reset-zh-HK.png")).await.map(drop)
    }
    .await;
    let problems = std::mem::take(&mut cdp.problems);
    browser.close().await?;
    outcome?;
    ensure!(problems.is_empty(), "the console reported problems: {problems:#?}");
    Ok(())
}

/// Applies the challenge's patch to team 2's running service, as its defenders would in
/// vulnbox mode: edit the code in the container, restart the process.
fn patch_team2() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    std::fs::copy(repo().join("challenges/opendata/service/app.py"), work.path().join("app.py"))?;
    let status = Command::new("patch")
        .current_dir(work.path())
        .args(["-p1", "-i"])
        .arg(repo().join("challenges/opendata/patch/fix.patch"))
        .status()?;
    ensure!(status.success(), "fix.patch does not apply");
    let patched = std::fs::read(work.path().join("app.py"))?;
    let container = format!("gf-{DRILL}-crd-opendata");
    let mut child = Command::new("docker")
        .args(["exec", "-i", &container, "sh", "/srv/opendata/patch-live.sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(&patched)?;
    ensure!(child.wait()?.success(), "the live patch failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_drill_end_to_end() -> anyhow::Result<()> {
    let _one = ONE_DRILL_AT_A_TIME.lock().await;
    if !docker_ready()? {
        return Ok(());
    }
    let _teardown = Teardown(DRILL);
    let result = demo_drill().await;
    if result.is_err() {
        dump_container_logs(DRILL);
    }
    result
}

async fn demo_drill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = scenario(dir.path())?;
    let up = Up::start(dir.path(), &scenario, 3)?;
    let said: Vec<String> = up.lines.try_iter().collect();
    ensure!(
        said.iter().any(|l| l.starts_with("checker of opendata:") && l.ends_with("(present)"))
            && said.iter().any(|l| l.starts_with("service image ") && l.contains(": ready")),
        "gongfang up says what it prepares: {said:?}"
    );
    let web = up.printed.web.clone();

    // After the first ticks every service of every team is up.
    wait_for_board(&web, "every service ok in a scored tick", |b| b["tick"].as_u64().is_some() && all_ok(b)).await?;
    let token = up.printed.tokens.get(&1).context("team 1's token was printed")?.clone();

    // Team 1 breaks into each of team 2's other services with a team-style exploit script and
    // submits what it took (the opendata portal's turn comes below, over both protocols).
    for (service, script, store) in &PACK[1..] {
        let flags =
            exploit_pack_service(&web, &up.printed.addresses[&(2, (*service).to_owned())], service, script, *store)
                .await?;
        let answers = put_flags(&web, &token, &flags).await?;
        let accepted = answers.as_array().context("a JSON list")?;
        ensure!(
            !accepted.is_empty() && accepted.iter().all(|a| a["msg"].as_str().is_some_and(|m| m.contains("Accepted"))),
            "{service}: team 2's flags from {script} are accepted: {answers}"
        );
    }

    // A spectator's websocket, open before the attack.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{web}/ws")).await?;
    let first = ws.next().await.context("the feed closed")??;
    ensure!(first.to_text()?.contains("\"snapshot\""), "the feed starts with a snapshot: {first}");
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            if let Ok(value) = serde_json::from_str::<Value>(message.to_text().unwrap_or_default()) {
                let _ = events_tx.send(value);
            }
        }
    });

    // Team 1 attacks team 2 with the reference exploit.
    let flags = exploit(None, &web, &up.printed.services[&2], 2, |f| f.len() >= 2).await?;

    // Half over TCP (token greeting, then the FAUST protocol)...
    let (tcp_flags, http_flags) = flags.split_at(flags.len() / 2);
    let stream = tokio::net::TcpStream::connect(&up.printed.submit).await?;
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read).lines();
    write.write_all(format!("{token}\n").as_bytes()).await?;
    let mut banner = Vec::new();
    while let Some(line) = read.next_line().await? {
        let end = line.is_empty() && banner.last().is_some_and(|l: &String| l == "One flag per line please!");
        banner.push(line);
        if end {
            break;
        }
    }
    for flag in tcp_flags {
        write.write_all(format!("{flag}\n").as_bytes()).await?;
    }
    for flag in tcp_flags {
        let answer = read.next_line().await?.context("the server closed the connection")?;
        ensure!(answer.starts_with(&format!("{flag} OK")), "TCP answer for {flag}: {answer}");
    }
    // ... half over HTTP, as DestructiveFarm sends them.
    let answers = put_flags(&web, &token, http_flags).await?;
    for answer in answers.as_array().context("a JSON list")? {
        ensure!(answer["msg"].as_str().is_some_and(|m| m.contains("Accepted")), "HTTP answer {answer}");
    }
    // The same flags again are duplicates.
    let again = put_flags(&web, &token, http_flags).await?;
    ensure!(again[0]["msg"].as_str().is_some_and(|m| m.contains("already submitted")), "{again}");

    // The feed reports the capture, then new scores.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut captured, mut scored) = (false, false);
    while !(captured && scored) {
        let left = deadline.saturating_duration_since(Instant::now());
        let event =
            tokio::time::timeout(left, events.recv()).await.context("no capture and score event on the feed")?;
        let event = event.context("the feed closed")?;
        match event["type"].as_str() {
            Some("flag_captured") if event["attacker"] == 1 && event["victim"] == 2 => captured = true,
            Some("scores_updated") if captured => scored = true,
            _ => {}
        }
    }

    // The scoreboard shows team 1's attack points, and agrees with the database.
    let board = wait_for_board(&web, "team 1's attack points", |b| {
        b["teams"].as_array().is_some_and(|ts| ts.iter().any(|t| t["id"] == 1 && t["attack"].as_f64() > Some(0.0)))
    })
    .await?;
    let store = Store::connect(&format!("sqlite://{}?mode=ro", dir.path().join("drill.db").display())).await?;
    let tick = Tick(u32::try_from(board["tick"].as_u64().context("a scored tick")?)?);
    let rows = store.scores_for_tick(tick).await?;
    ensure!(rows.len() == 3, "three teams scored at tick {}", tick.0);
    for row in rows {
        let team =
            board["teams"].as_array().unwrap().iter().find(|t| t["id"] == row.team.0).context("team on the board")?;
        for (field, stored) in [
            ("attack", row.score.attack),
            ("defence", row.score.defence),
            ("sla", row.score.sla),
            ("total", row.score.total),
        ] {
            let shown = team[field].as_f64().context("a number")?;
            ensure!((shown - stored).abs() < 1e-9, "team {} {field}: board {shown}, database {stored}", row.team.0);
        }
    }
    store.close().await?;

    // Team 2 patches its service; afterwards the exploit finds nothing and the checker stays ok.
    patch_team2()?;
    let patched_at = board["clock"]["tick"].as_u64().unwrap_or(0);
    wait_for_board(&web, "two ticks after the patch, all ok", |b| {
        b["status_tick"].as_u64().is_some_and(|t| t >= patched_at + 2) && all_ok(b)
    })
    .await?;
    let after = exploit(None, &web, &up.printed.services[&2], 2, |_| true).await?;
    ensure!(after.is_empty(), "the patched service still leaks flags: {after:?}");

    // An organiser resets team 2's service from the console in a browser (through the live
    // API where no browser is installed): a fresh copy of the scenario's image, so the live
    // patch is gone and the exploit works again.
    let container = format!("gf-{DRILL}-crd-opendata");
    let before = container_id(&container)?;
    let auth = format!("Bearer {}", organiser_token(dir.path())?);
    match chromium_or_skip()? {
        Some(chromium) => reset_from_the_console(&chromium, &web, "crd", "opendata").await?,
        None => {
            let body = serde_json::json!({
                "team": "crd", "service": "opendata", "action": "reset", "reason": "the team asked for a clean copy",
            });
            let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
            let answer = request(&web, "POST", "/api/admin/service", &headers, body.to_string().as_bytes()).await?;
            ensure!(answer.status == 200, "reset: {} {}", answer.status, answer.text());
        }
    }
    ensure!(container_id(&container)? != before, "a reset replaces the container");
    let reopened = exploit(None, &web, &up.printed.services[&2], 2, |f| !f.is_empty()).await?;
    ensure!(!reopened.is_empty(), "the reset service is the scenario's vulnerable one again");
    ensure!(
        audit_log(dir.path())?.iter().any(|l| l.starts_with("account olga|service.reset|")),
        "the reset is audited under the organiser's account"
    );

    // Ctrl-C stops cleanly; running the command again resumes the same drill.
    let last = get_json(&web, "/api/scoreboard").await?["tick"].as_u64().unwrap_or(0);
    let tokens_before = up.printed.tokens_text.clone();
    up.stop()?;
    let up = Up::start(dir.path(), &scenario, 3)?;
    ensure!(up.printed.tokens_text == tokens_before, "tokens are issued once, not again on resume");
    let web = up.printed.web.clone();
    wait_for_board(&web, "the resumed drill scoring a later tick", |b| {
        b["tick"].as_u64().is_some_and(|t| t > last) && b["teams"][0]["total"].as_f64().is_some()
    })
    .await?;
    up.stop()?;
    Ok(())
}

/// The red/blue example runs: attacker-only teams get no containers and may submit flags,
/// defender-only teams get the pack's four services and may not. A blue team added from the console's API
/// while it runs gets its service, checked `ok` like the others, once the drill started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_blue_example_runs() -> anyhow::Result<()> {
    let _one = ONE_DRILL_AT_A_TIME.lock().await;
    if !docker_ready()? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    // The example as shipped, with short ticks, its own slug and networks, absolute paths.
    let example = std::fs::read_to_string(repo().join("challenges/redblue/scenario.toml"))?;
    let text = shipped(example.replace("slug = \"redblue\"", "slug = \"e2e-redblue\""), "120s", "10s")?
        .replace("10.60.", "10.84.");
    ensure!(text.contains("e2e-redblue"), "{text}");
    let scenario = dir.path().join("redblue.toml");
    std::fs::write(&scenario, text)?;

    let _teardown = Teardown("e2e-redblue");
    let up = Up::start(dir.path(), &scenario, 3)?;
    let web = up.printed.web.clone();
    ensure!(
        up.printed.services.keys().copied().collect::<Vec<_>>() == [11, 12, 13],
        "services only for the blue teams: {:?}",
        up.printed.services
    );
    let containers =
        Command::new("docker").args(["ps", "-q", "--filter", "label=gongfang.drill=e2e-redblue"]).output()?;
    ensure!(String::from_utf8(containers.stdout)?.lines().count() == 3 * PACK.len(), "the pack for each blue team");

    let board = wait_for_board(&web, "the blue teams' services ok", |b| {
        b["tick"].as_u64().is_some() && [11, 12, 13].iter().all(|&t| verdict(b, t) == Some("ok"))
    })
    .await?;
    let red = board["teams"].as_array().context("teams")?.iter().find(|t| t["id"] == 1).context("red team 1")?;
    ensure!(red["services"].as_array().is_some_and(Vec::is_empty), "red teams have no services: {red}");

    // A red team steals from a blue team and submits; a blue team may not submit at all.
    let flags = exploit(None, &web, &up.printed.services[&11], 11, |f| !f.is_empty()).await?;
    let answers = put_flags(&web, &up.printed.tokens[&1], &flags[..1]).await?;
    ensure!(answers[0]["msg"].as_str().is_some_and(|m| m.contains("Accepted")), "red team's flag: {answers}");
    let refused = request(
        &web,
        "PUT",
        "/flags",
        &[("X-Team-Token", &up.printed.tokens[&12])],
        serde_json::to_string(&flags[..1])?.as_bytes(),
    )
    .await?;
    let (status, body) = (refused.status, refused.text());
    ensure!(
        status == 200 && !body.contains("Accepted") && body.contains("defend"),
        "a defender-only team's submission is refused, saying why: {status} {body}"
    );

    // A department joins late: an organiser adds it from the console's API; the drill starts
    // again with it (same ports), its service is created and checked like every other.
    let olga = format!("Bearer {}", organiser_token(dir.path())?);
    let organiser = [("Authorization", olga.as_str()), ("Content-Type", "application/json")];
    let bad = serde_json::json!({ "csv": "slug,name\nBad Slug,x\n" }).to_string();
    let r = request(&web, "POST", "/api/admin/teams/import", &organiser, bad.as_bytes()).await?;
    ensure!(r.status == 400 && r.text().contains("line 2"), "a bad row is refused with its line: {}", r.text());
    let csv = "slug,name,name_zh,role\nwsd,Water Supplies Records Office,水務紀錄處,defender\n";
    let body = serde_json::json!({ "csv": csv }).to_string();
    let r = request(&web, "POST", "/api/admin/teams/import", &organiser, body.as_bytes()).await?;
    ensure!(r.status == 200 && r.json()?["added"] == serde_json::json!(["wsd"]), "{} {}", r.status, r.text());
    ensure!(std::fs::read_to_string(&scenario)?.contains("slug = \"wsd\""), "the scenario file holds the new team");
    let board = wait_for_board(&web, "the new team's service ok", |b| {
        b["teams"].as_array().is_some_and(|ts| ts.iter().any(|t| t["slug"] == "wsd")) && verdict(b, 14) == Some("ok")
    })
    .await?;
    ensure!([11, 12, 13].iter().all(|&t| verdict(&board, t).is_some()), "the other teams play on: {board:#}");
    let containers =
        Command::new("docker").args(["ps", "-q", "--filter", "label=gongfang.drill=e2e-redblue"]).output()?;
    ensure!(String::from_utf8(containers.stdout)?.lines().count() == 4 * PACK.len(), "the pack for the new blue team");
    let audit = audit_log(dir.path())?;
    ensure!(
        audit.iter().any(|l| l.starts_with("account olga|team.import|") && l.contains("wsd")),
        "audited under the account: {audit:#?}"
    );
    up.stop()?;
    Ok(())
}

/// The drill teams reach over WireGuard.
const VPN_DRILL: &str = "e2e-vpn";
/// The gateway's tunnel address, the first host of the scenario's VPN range.
const VPN_GATEWAY: &str = "10.86.0.1";

/// Two symmetric teams on the opendata service, reached over WireGuard at the host's address
/// on team 1's link, flags submitted by address.
fn vpn_scenario(dir: &Path, start: chrono::DateTime<chrono::Utc>) -> anyhow::Result<PathBuf> {
    let drill = ScenarioBuilder::new(VPN_DRILL)
        .name("Drill over WireGuard", "經 WireGuard 進行的演練")
        .duration("30m")
        .tick("8s")
        .checker_timeout("3s")
        .start(&start.to_rfc3339())
        .secret("end-to-end-vpn-secret-0123456789")
        .submission(Identify::Address, Some(100), 8)
        .vpn("172.30.1.1:51899", "10.86.0.0/24", 1)
        .team(team(1, "ddb").name("Digital Development Bureau", "數字發展局").network("10.85.1.0/24"))
        .team(team(2, "crd").name("Civic Records Department", "公民紀錄處").network("10.85.2.0/24"))
        .service(opendata());
    let path = dir.join("scenario.toml");
    std::fs::write(&path, drill.toml())?;
    Ok(path)
}

/// Whether the host holds anything of the VPN drill's gateway: its interface, a firewall rule
/// naming it or one of its chains, or a `wireguard-go` serving it.
fn gateway_leftovers() -> anyhow::Result<Vec<String>> {
    let interface = "gf-e2e-vpn";
    let mut left = Vec::new();
    if Command::new("ip").args(["link", "show", "dev", interface]).output()?.status.success() {
        left.push(format!("interface {interface}"));
    }
    for table in ["filter", "nat"] {
        let rules = run_ok("iptables-save", &["-t", table])?;
        left.extend(
            String::from_utf8_lossy(&rules.stdout)
                .lines()
                .filter(|l| l.contains(interface) || l.contains("GF-V"))
                .map(|l| format!("{table}: {l}")),
        );
    }
    let processes = Command::new("pgrep").args(["-af", &format!("wireguard-go.*{interface}")]).output()?;
    left.extend(String::from_utf8_lossy(&processes.stdout).lines().map(|l| format!("process {l}")));
    Ok(left)
}

/// `gongfang vpn config|status` on the VPN drill's database.
fn gongfang_vpn(dir: &Path, scenario: &Path, args: &[&str]) -> anyhow::Result<String> {
    let db = format!("sqlite://{}?mode=rwc", dir.join("drill.db").display());
    let output = Command::new(gongfang_binary()?)
        .arg("vpn")
        .args(args)
        .arg("--scenario")
        .arg(scenario)
        .args(["--database-url", &db])
        .output()?;
    ensure!(
        output.status.success(),
        "gongfang vpn {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Submits flags from a team machine over the TCP server by address (no token, as S4DFarm and
/// ataka do in FAUST mode), and returns the answer lines.
fn submit_from(machine: &TeamMachine, server: &str, flags: &[String]) -> anyhow::Result<Vec<String>> {
    let (host, port) = server.rsplit_once(':').context("host:port")?;
    const CLIENT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
f = s.makefile("rw", newline="\n")
while f.readline().strip() != "One flag per line please!":
    pass
f.readline()
flags = sys.argv[3:]
for flag in flags:
    f.write(flag + "\n")
f.flush()
for _ in flags:
    print(f.readline().rstrip("\n"), flush=True)
"#;
    let output = machine.command("python3").args(["-c", CLIENT, host, port]).args(flags).output()?;
    ensure!(output.status.success(), "submitting over the tunnel failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8(output.stdout)?.lines().map(str::to_owned).collect())
}

/// The source addresses in a service's request log (lines `HH:MM:SS ADDRESS request`).
fn client_addresses(container: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    let logs = run_ok("docker", &["logs", container])?;
    let mut seen = BTreeMap::new();
    for line in String::from_utf8_lossy(&logs.stdout).lines().chain(String::from_utf8_lossy(&logs.stderr).lines()) {
        let mut words = line.split_whitespace();
        if let (Some(time), Some(address)) = (words.next(), words.next())
            && time.len() == 8
            && time.bytes().filter(|b| *b == b':').count() == 2
            && address.parse::<std::net::Ipv4Addr>().is_ok()
        {
            *seen.entry(address.to_owned()).or_default() += 1;
        }
    }
    Ok(seen)
}

/// Teams over WireGuard, on real Docker and real `wireguard-go`: two team machines (network
/// namespaces) bring their tunnels up with `wg-quick` on the files `gongfang vpn config` wrote.
/// Before the drill's start a team reaches its own service and shell entry and not the other's service; the scoreboard
/// and `vpn status` show who is connected. Once the drill runs, team 1 runs the exploit through
/// its tunnel against team 2 and submits the flags by address over TCP: `OK`. Team 2's service
/// saw the checker and team 1 from one address; the gateway's translation log names team 1.
/// Team 1 opens a shell in its own service over SSH through its tunnel, applies the published
/// patch and restarts the service: the exploit finds nothing there any more, the checker stays
/// `ok`, and the platform's replay of the reference exploit turns from exploitable to not; team 2's shell entry is out of team 1's reach and refuses its key; every session is
/// audited. Team 1, even with its config widened to route
/// everything into the tunnel, reaches neither team 2's machine nor the host's other ports.
/// Team 2 gets a fresh config from its portal, then a whole credential pack from the console's
/// API (its config and shell key work at once); taken out of the drill, it reaches only the
/// board through the gateway, and brought back, its service again.
/// A platform killed with SIGKILL leaves its gateway behind, and `gongfang down` removes it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_play_over_wireguard() -> anyhow::Result<()> {
    let _one = ONE_DRILL_AT_A_TIME.lock().await;
    if !docker_ready()? {
        return Ok(());
    }
    if !gongfang_test_support::netns::vpn_ready() {
        return Ok(());
    }
    let _teardown = Teardown(VPN_DRILL);
    let result = drill_over_wireguard().await;
    if result.is_err() {
        dump_container_logs(VPN_DRILL);
    }
    result
}

async fn drill_over_wireguard() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let configs = dir.path().join("configs");
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let scenario = vpn_scenario(dir.path(), later)?;
    for team in ["ddb", "crd"] {
        gongfang_vpn(dir.path(), &scenario, &["config", team, "--out", configs.to_str().context("UTF-8")?])?;
    }
    let mut team1 = TeamMachine::new("gfe2e-team1", "gfe2e-h1", [172, 30, 1])?;
    let mut team2 = TeamMachine::new("gfe2e-team2", "gfe2e-h2", [172, 30, 2])?;
    // Team 2 reaches the gateway's public address (the host's on team 1's link) through its own.
    team2.route_via_host("172.30.1.1/32")?;

    // Before the start: each team prepares its own service only.
    let up = Up::start(dir.path(), &scenario, 2)?;
    team1.tunnel_up(&configs.join("ddb-1.conf"))?;
    team2.tunnel_up(&configs.join("crd-1.conf"))?;
    let port = |address: &str| -> anyhow::Result<SocketAddr> { Ok(address.parse()?) };
    let own = port(&up.printed.services[&1])?;
    let theirs = port(&up.printed.services[&2])?;
    let web_port = port(&up.printed.web)?.port();
    let gateway: std::net::Ipv4Addr = VPN_GATEWAY.parse()?;
    let wait = Duration::from_secs(2);
    ensure!(
        eventually(|| team1.connects(own, wait)).await,
        "team 1 reaches its own service {own} through its tunnel before the start"
    );
    ensure!(!team1.connects(theirs, wait), "team 1 reaches team 2's service {theirs} before the start");
    ensure!(
        team1.connects(SocketAddr::from((gateway, 2201)), wait),
        "team 1 reaches its own shell entry before the start"
    );
    ensure!(
        team1.connects(SocketAddr::from((gateway, web_port)), wait),
        "team 1 reaches the scoreboard on the gateway's address"
    );
    let connections = wait_for_json(&up.printed.web, "/api/connections", "team 1 connected", |c| {
        c["teams"].as_array().is_some_and(|ts| ts.iter().any(|t| t["slug"] == "ddb" && t["peers_connected"] == 1))
    })
    .await?;
    ensure!(connections["teams"][0]["last_handshake"].is_string(), "{connections:#}");
    let status = gongfang_vpn(dir.path(), &scenario, &["status"])?;
    ensure!(
        status.lines().any(|l| l.starts_with("ddb") && l.contains(" s ago)")),
        "vpn status shows team 1's handshake: {status}"
    );
    up.stop()?;

    // The drill starts: attacks are open.
    let scenario = vpn_scenario(dir.path(), chrono::Utc::now() + chrono::Duration::seconds(20))?;
    let up = Up::start(dir.path(), &scenario, 2)?;
    let web_port = port(&up.printed.web)?.port();
    let submit_port = port(&up.printed.submit)?.port();
    wait_for_board(&up.printed.web, "both services ok in a scored tick", |b| {
        b["tick"].as_u64().is_some() && (1..=2).all(|t| verdict(b, t) == Some("ok"))
    })
    .await?;
    let through_tunnel = format!("{VPN_GATEWAY}:{web_port}");
    let flags =
        exploit(Some(&team1.namespace), &through_tunnel, &up.printed.services[&2], 2, |f| !f.is_empty()).await?;
    let answers = submit_from(&team1, &format!("{VPN_GATEWAY}:{submit_port}"), &flags)?;
    ensure!(answers.len() == flags.len(), "one answer per flag: {answers:?}");
    for (flag, answer) in flags.iter().zip(&answers) {
        ensure!(answer.starts_with(&format!("{flag} OK")), "flag submitted by address from team 1's tunnel: {answer}");
    }
    wait_for_board(&up.printed.web, "team 1's attack points", |b| {
        b["teams"].as_array().is_some_and(|ts| ts.iter().any(|t| t["id"] == 1 && t["attack"].as_f64() > Some(0.0)))
    })
    .await?;
    // The checker and team 1 reached team 2's service from one address: its host's.
    let seen = client_addresses(&format!("gf-{VPN_DRILL}-crd-opendata"))?;
    ensure!(seen.keys().eq(["10.85.2.1"]), "team 2's service saw the checker and team 1 as one source: {seen:?}");
    // The gateway's translation log still says it was team 1.
    let theirs_text = theirs.to_string();
    let logged = |log: &str| {
        log.lines().any(|l| {
            l.contains("ddb") && l.contains("10.86.0.2") && l.contains(&theirs_text) && l.contains("10.85.2.1")
        })
    };
    let mut log = String::new();
    for _ in 0..20 {
        log = gongfang_vpn(dir.path(), &scenario, &["log", "--team", "ddb"])?;
        if logged(&log) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(logged(&log), "the translation log shows team 1's peer reaching {theirs} as 10.85.2.1: {log}");

    // The platform's replay of the reference exploit finds both services open.
    wait_for_board(&up.printed.web, "the replay finding both services exploitable", |b| {
        replay(b, 1) == Some("exploitable") && replay(b, 2) == Some("exploitable")
    })
    .await?;
    // Team 1's defenders open a shell in their own service through the tunnel, apply the
    // published patch to its code and restart it: the exploit finds nothing there any more,
    // and the checker still finds the service working, its earlier flags kept.
    let key = configs.join("ddb-1.ssh");
    let patch = std::fs::read(repo().join("challenges/opendata/patch/fix.patch"))?;
    let applied = ssh_from(&team1, &key, 2201, "cd /srv/opendata && patch -p1", &patch)?;
    ensure!(applied.contains("patching file app.py"), "the patch applies in team 1's shell: {applied}");
    let restarted = ssh_from(&team1, &key, 2201, "restart", b"")?;
    ensure!(restarted.contains("restarted opendata"), "team 1 restarts its service: {restarted}");
    let whoami =
        ssh_from(&team1, &key, 2201, "id -u; hostname; test -w / && echo writable-root || echo read-only-root", b"")?;
    ensure!(
        whoami.lines().collect::<Vec<_>>() == ["65534", "opendata", "read-only-root"],
        "the shell runs as the service's user in its own hardened container: {whoami}"
    );
    let patched_at = wait_for_board(&up.printed.web, "a scored tick", |b| b["tick"].as_u64().is_some()).await?["tick"]
        .as_u64()
        .context("tick")?;
    // (Team 2's tunnel shakes hands with the restarted gateway on its first packets: retried.)
    let from_team2 =
        exploit(Some(&team2.namespace), &through_tunnel, &up.printed.services[&1], 1, <[String]>::is_empty).await?;
    ensure!(from_team2.is_empty(), "the exploit still steals from team 1's patched service: {from_team2:?}");
    wait_for_board(&up.printed.web, "team 1's patched service ok two ticks later", |b| {
        b["tick"].as_u64() >= Some(patched_at + 2) && verdict(b, 1) == Some("ok")
    })
    .await?;
    // The replay sees the live patch: team 1 no longer exploitable, team 2 still.
    let board = wait_for_board(&up.printed.web, "the replay seeing team 1's patch", |b| {
        b["tick"].as_u64() >= Some(patched_at + 2) && replay(b, 1) == Some("not-exploitable")
    })
    .await?;
    ensure!(replay(&board, 2) == Some("exploitable"), "team 2 is still exploitable: {board:#}");
    // Each team's shell entry is its own: team 1 cannot reach team 2's, nor open it.
    ensure!(!team1.connects(SocketAddr::from((gateway, 2202)), wait), "team 1 reaches team 2's shell entry");
    ensure!(
        team2.connects(SocketAddr::from((gateway, 2202)), wait),
        "team 2 reaches its own shell entry (or its port is not 2202)"
    );
    let refused = ssh_status(&team2, &configs.join("ddb-1.ssh"), 2202, "true")?;
    ensure!(!refused.success(), "team 1's key opens team 2's shell");
    // Every session is in the audit log: who, from where, which container.
    let audit = audit_log(dir.path())?;
    ensure!(
        audit.iter().any(|l| l.contains("team ddb|shell.open")
            && l.contains(&format!("gf-{VPN_DRILL}-ddb-opendata"))
            && l.contains("10.86.0.2")
            && l.contains("restart")),
        "the restart is audited under team 1 with its container and address: {audit:#?}"
    );

    // Team 1 routes everything into its tunnel: the gateway still forwards nothing else.
    let host = std::net::TcpListener::bind("0.0.0.0:0")?;
    let host_port = host.local_addr()?.port();
    team2.spawn("python3", &["-c", LISTEN_9999])?;
    let team2_peer: std::net::Ipv4Addr = "10.86.0.3".parse()?;
    ensure!(
        eventually(|| team2.connects(SocketAddr::from((team2_peer, 9999)), wait)).await,
        "team 2's own listener answers on its tunnel address (or the peer address is not 10.86.0.3)"
    );
    let gateway_key = std::fs::read_to_string(configs.join("ddb-1.conf"))?
        .lines()
        .find_map(|l| l.strip_prefix("PublicKey = ").map(str::to_owned))
        .context("the config names the gateway's key")?;
    let ns = team1.namespace.clone();
    run_ok("ip", &["netns", "exec", &ns, "wg", "set", "ddb-1", "peer", &gateway_key, "allowed-ips", "0.0.0.0/0"])?;
    for net in ["10.86.0.0/24", "172.30.2.0/24"] {
        run_ok("ip", &["-n", &ns, "route", "replace", net, "dev", "ddb-1"])?;
    }
    ensure!(team1.connects(SocketAddr::from((gateway, web_port)), wait), "the platform's port still answers");
    for (what, target) in [
        ("team 2's peer", SocketAddr::from((team2_peer, 9999))),
        ("team 2's machine outside the game networks", "172.30.2.2:9999".parse()?),
        ("another port of the host on the gateway's address", SocketAddr::from((gateway, host_port))),
        ("another address of the host", SocketAddr::from(([172, 30, 2, 1], host_port))),
    ] {
        ensure!(!team1.connects(target, wait), "team 1 reaches {what} ({target}) through the gateway");
    }
    drop(host);

    // Team 2 lost its config: its portal makes a fresh one for peer 1 (new keys, the old ones
    // refused by the gateway at once), and the tunnel comes up with it.
    let web_on_gateway = SocketAddr::from((gateway, web_port));
    ensure!(team2.connects(web_on_gateway, wait), "team 2's tunnel works before the new config");
    let token = up.printed.tokens.get(&2).context("team 2's token")?;
    let headers = [("X-Team-Token", token.as_str()), ("Content-Type", "application/json")];
    let fresh = request(&up.printed.web, "POST", "/api/portal/vpn", &headers, br#"{"peer":1}"#).await?;
    ensure!(fresh.status == 200 && fresh.text().contains("PrivateKey = "), "{} {}", fresh.status, fresh.text());
    let old_config = std::fs::read_to_string(configs.join("crd-1.conf"))?;
    ensure!(private_key_line(&fresh.text()) != private_key_line(&old_config), "the fresh config has a new key");
    ensure!(!team2.connects(web_on_gateway, wait), "the old config still works after the new one was made");
    team2.tunnel_down(&configs.join("crd-1.conf"))?;
    let fresh_dir = dir.path().join("fresh");
    std::fs::create_dir(&fresh_dir)?;
    let fresh_file = fresh_dir.join("crd-1.conf");
    std::fs::write(&fresh_file, fresh.text())?;
    std::fs::set_permissions(&fresh_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    team2.tunnel_up(&fresh_file)?;
    ensure!(eventually(|| team2.connects(web_on_gateway, wait)).await, "team 2's fresh config works");
    let audit = audit_log(dir.path())?;
    ensure!(audit.iter().any(|l| l.contains("team crd|vpn.config.reissue")), "audited under the team: {audit:#?}");

    // The organisers hand team 2 a whole credential pack from the console's API: its config
    // and shell key work with the running gateway at once, the portal's config no longer.
    let olga = format!("Bearer {}", organiser_token(dir.path())?);
    let organiser = [("Authorization", olga.as_str()), ("Content-Type", "application/json")];
    let body = format!(r#"{{"team":"crd","web":"http://{VPN_GATEWAY}:{web_port}"}}"#);
    let pack = request(&up.printed.web, "POST", "/api/admin/teams/pack", &organiser, body.as_bytes()).await?;
    ensure!(pack.status == 200, "{} {}", pack.status, pack.text());
    let pack_dir = dir.path().join("pack");
    tar::Archive::new(flate2::read::GzDecoder::new(pack.body.as_slice())).unpack(&pack_dir)?;
    ensure!(!team2.connects(web_on_gateway, wait), "the portal's config still works after the pack was made");
    team2.tunnel_down(&fresh_file)?;
    team2.tunnel_up(&pack_dir.join("crd/crd-1.conf"))?;
    ensure!(eventually(|| team2.connects(web_on_gateway, wait)).await, "the pack's config works");
    let pack_key = pack_dir.join("crd/crd-1.ssh");
    ssh_from(&team2, &pack_key, 2202, "true", b"").context("the pack's shell key opens team 2's shell")?;
    let how_to = std::fs::read_to_string(pack_dir.join("crd/how-to.html"))?;
    let token = std::fs::read_to_string(pack_dir.join("crd/token.txt"))?;
    ensure!(how_to.contains(token.trim()) && how_to.contains("crd-1.conf"), "{how_to}");

    // Taken out of the drill, team 2 is cut off at the gateway at once: not its own service,
    // not its shell, only the board; brought back, it has them again.
    let own2 = port(&up.printed.services[&2])?;
    ensure!(team2.connects(own2, wait), "team 2 reaches its own service while it plays");
    let out = br#"{"team":"crd","disabled":true,"reason":"end-to-end test"}"#;
    let r = request(&up.printed.web, "POST", "/api/admin/teams/disable", &organiser, out).await?;
    ensure!(r.status == 200, "{} {}", r.status, r.text());
    ensure!(eventually(|| !team2.connects(own2, wait)).await, "team 2 reaches its service after it was taken out");
    ensure!(!team2.connects(SocketAddr::from((gateway, 2202)), wait), "team 2 reaches its shell entry while out");
    ensure!(team2.connects(web_on_gateway, wait), "team 2 lost the board while out");
    ensure!(team1.connects(own, wait), "team 1 lost its own service when team 2 was taken out");
    let back = br#"{"team":"crd","disabled":false}"#;
    let r = request(&up.printed.web, "POST", "/api/admin/teams/disable", &organiser, back).await?;
    ensure!(r.status == 200, "{} {}", r.status, r.text());
    ensure!(eventually(|| team2.connects(own2, wait)).await, "team 2 does not reach its service once back");

    // A platform killed outright leaves its gateway; `gongfang down` removes every trace.
    up.kill();
    ensure!(!gateway_leftovers()?.is_empty(), "a killed platform's gateway is still there before `down`");
    run_ok(gongfang_binary()?.to_str().context("UTF-8")?, &["down", "--drill", VPN_DRILL])?;
    let left = gateway_leftovers()?;
    ensure!(left.is_empty(), "`gongfang down` left the gateway's {left:#?}");
    Ok(())
}

/// The `PrivateKey = …` line of a `wg-quick` config.
fn private_key_line(config: &str) -> Option<&str> {
    config.lines().find(|l| l.starts_with("PrivateKey = "))
}

/// Runs `command` over SSH from a team machine on its shell entry (`port` on the gateway's
/// address) as the opendata service, with `input` on its standard input; its output.
fn ssh_from(machine: &TeamMachine, key: &Path, port: u16, command: &str, input: &[u8]) -> anyhow::Result<String> {
    let mut child =
        ssh(machine, key, port, command).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    child.stdin.take().context("stdin")?.write_all(input)?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "ssh `{command}` failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn ssh_status(machine: &TeamMachine, key: &Path, port: u16, command: &str) -> anyhow::Result<std::process::ExitStatus> {
    Ok(ssh(machine, key, port, command).stdin(Stdio::null()).output()?.status)
}

fn ssh(machine: &TeamMachine, key: &Path, port: u16, command: &str) -> Command {
    let mut ssh = machine.command("ssh");
    ssh.arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()])
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
        .arg(format!("opendata@{VPN_GATEWAY}"))
        .arg(command);
    ssh
}

/// The drill's audit log, one `actor|action|detail` line per entry, read with the sqlite3 shell.
fn audit_log(dir: &Path) -> anyhow::Result<Vec<String>> {
    let output = run_ok(
        "sqlite3",
        &[dir.join("drill.db").to_str().context("UTF-8")?, "SELECT actor, action, detail FROM audit_log"],
    )?;
    Ok(String::from_utf8(output.stdout)?.lines().map(str::to_owned).collect())
}

/// A listener on every address of a team machine, port 9999.
const LISTEN_9999: &str = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9999))
s.listen(16)
while True:
    c, _ = s.accept()
    c.close()
"#;

/// Polls `check` for up to 30 s: a tunnel's first handshake, a service starting.
async fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

const PATCH_DRILL: &str = "e2e-patch";
/// Points per defended tick in the patch drill.
const PATCH_POINTS: f64 = 10.0;
/// The patch drill's build time limit, in seconds: long enough for a real build on a loaded
/// two-core machine (25 s was not, with the other Docker tests beside it), short enough to wait
/// out the endless build.
const BUILD_LIMIT: u64 = 60;

/// Three departments whose Open Data Portal takes submitted patches, scored per defended tick.
fn patch_scenario(dir: &Path) -> anyhow::Result<PathBuf> {
    let limit = format!("\"{BUILD_LIMIT}s\"");
    let points = PATCH_POINTS.to_string();
    let drill = ScenarioBuilder::new(PATCH_DRILL)
        .name("Patch drill", "修補演練")
        .duration("30m")
        .tick("8s")
        .checker_timeout("3s")
        .secret("end-to-end-patch-secret-0123456789")
        .submission(Identify::Token, Some(100), 8)
        .patches(&[
            ("scoring", "\"defended-ticks\""),
            ("points", &points),
            ("build_timeout", &limit),
            ("rounds", "2"),
            ("max_size", "\"2MiB\""),
            ("start_timeout", "\"20s\""),
            ("max_queued", "5"),
        ]);
    let drill = [(1, "ddb"), (2, "crd"), (3, "emd")]
        .into_iter()
        .fold(drill, |drill, (id, slug)| drill.team(team(id, slug).network(&format!("10.84.{id}.0/24"))))
        .service(
            service("opendata")
                .name("Open Data Portal", "開放數據平台")
                .build_from(&repo().join("challenges/opendata/service"))
                .checker(components::OPENDATA_CHECKER)
                .flag_stores(2)
                .limits(0.5, "256MiB")
                .submitted_patches("/var/lib/opendata", &["run.sh", "patch-live.sh"]),
        );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, drill.toml())?;
    Ok(path)
}

/// A diff of the demo's app.py replacing one line with `replace`, without context lines.
fn app_diff(find: &str, replace: &[&str]) -> anyhow::Result<String> {
    let app = std::fs::read_to_string(repo().join("challenges/opendata/service/app.py"))?;
    let line = app.lines().position(|l| l == find).context("the line to change is in app.py")? + 1;
    let added: String = replace.iter().map(|l| format!("+{l}\n")).collect();
    Ok(format!("--- a/app.py\n+++ b/app.py\n@@ -{line},1 +{line},{} @@\n-{find}\n{added}", replace.len()))
}

/// A tar archive of `(path, kind, data)` entries, names written raw as an attacker would.
fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/shadow")?;
        }
        header.set_cksum();
        builder.append(&header, *data)?;
    }
    Ok(builder.into_inner()?)
}

/// A gzip-compressed tar of one file holding 1 GiB of zeros (about 1 MiB compressed).
fn gigabyte_of_zeros(dir: &Path) -> anyhow::Result<Vec<u8>> {
    run_ok("truncate", &["-s", "1G", dir.join("zeros.bin").to_str().context("UTF-8")?])?;
    run_ok(
        "tar",
        &["-C", dir.to_str().context("UTF-8")?, "-czf", dir.join("zeros.tgz").to_str().context("UTF-8")?, "zeros.bin"],
    )?;
    std::fs::remove_file(dir.join("zeros.bin"))?;
    Ok(std::fs::read(dir.join("zeros.tgz"))?)
}

/// Sends a patch over HTTP for a team; the answer's JSON (`202`), or the error status.
async fn send_patch(web: &str, token: &str, kind: &str, body: &[u8]) -> anyhow::Result<(u16, Value)> {
    let headers = [("X-Team-Token", token), ("Content-Type", "application/octet-stream")];
    let answer = request(web, "POST", &format!("/api/patches?service=opendata&kind={kind}"), &headers, body).await?;
    Ok((answer.status, answer.json().unwrap_or(Value::Null)))
}

/// Polls a team's patch until it is decided (or, with `until`, reaches that status).
async fn patch_decided(web: &str, token: &str, id: &Value, until: &[&str]) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let answer = request(web, "GET", &format!("/api/patches/{id}"), &[("X-Team-Token", token)], b"").await?;
        let patch = answer.json()?;
        if until.contains(&patch["status"].as_str().unwrap_or_default()) {
            return Ok(patch);
        }
        ensure!(Instant::now() < deadline, "patch {id} was not {until:?} in time: {patch:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The image a container runs, by name.
fn image_of(container: &str) -> anyhow::Result<String> {
    let out = run_ok("docker", &["inspect", "--format", "{{.Config.Image}}", container])?;
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// `gongfang-agent` with a team's token against the drill's web.
fn agent(web: &str, token: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let binary = gongfang_binary()?.with_file_name("gongfang-agent");
    ensure!(binary.is_file(), "{} is missing: build it with `cargo build -p gongfang-agent`", binary.display());
    Ok(Command::new(binary).args(["--server", &format!("http://{web}"), "--token", token]).args(args).output()?)
}

/// Submitted patches on real Docker, from `gongfang-agent` and the HTTP API: the published fix
/// is built, staged, deployed with the service's data kept, and the replay then finds that team
/// not exploitable while its checker stays `ok` and the others stay exploitable; the patch score
/// in the standings equals the defended ticks counted here from the store, times the points. A
/// patch that breaks a feature is refused with the checker's message and never reaches the live
/// service; malicious archives (traversal, symlink, 1 GiB of zeros), an oversized body and a build
/// that never ends are refused within their limits; a patch that works in staging but answers
/// wrongly on the live network is rolled back by itself; and a team rolls back by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_patches_are_built_staged_deployed_and_scored() -> anyhow::Result<()> {
    let _one = ONE_DRILL_AT_A_TIME.lock().await;
    if !docker_ready()? {
        return Ok(());
    }
    let _teardown = Teardown(PATCH_DRILL);
    let result = patch_drill().await;
    if result.is_err() {
        dump_container_logs(PATCH_DRILL);
    }
    result
}

async fn patch_drill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = patch_scenario(dir.path())?;
    let up = Up::start(dir.path(), &scenario, 3)?;
    let web = up.printed.web.clone();
    let token = |team: u16| up.printed.tokens[&team].clone();
    let live = |slug: &str| format!("gf-{PATCH_DRILL}-{slug}-opendata");
    let base_image = image_of(&live("crd"))?;
    wait_for_board(&web, "every service ok and exploitable", |b| {
        all_ok(b) && (1..=3).all(|t| replay(b, t) == Some("exploitable"))
    })
    .await?;

    // Team 1 sends the published fix with the agent, which waits for the verdict.
    let fix = repo().join("challenges/opendata/patch/fix.patch");
    let started = Instant::now();
    let (web1, token1) = (web.clone(), token(1));
    let pushed = tokio::task::spawn_blocking(move || {
        agent(&web1, &token1, &["patch", "push", "opendata", fix.to_str().expect("UTF-8")])
    })
    .await??;
    let said = String::from_utf8_lossy(&pushed.stdout);
    ensure!(pushed.status.success(), "patch push failed: {said}{}", String::from_utf8_lossy(&pushed.stderr));
    ensure!(said.contains("accepted and deployed as version 1"), "{said}");
    ensure!(said.contains("the reference exploit captured nothing"), "{said}");
    eprintln!("the fix went from submission to deployment in {:.1} s", started.elapsed().as_secs_f64());
    let deployed_at = get_json(&web, "/api/scoreboard").await?["tick"].as_u64().unwrap_or(0);
    ensure!(image_of(&live("ddb"))? == format!("gongfang/{PATCH_DRILL}-opendata:ddb-v1"));
    let status = agent(&web, &token(1), &["patch", "status"])?;
    ensure!(String::from_utf8_lossy(&status.stdout).contains("opendata v1 diff deployed"), "{status:?}");
    // The source it runs now is the patched one.
    let source =
        request(&web, "GET", "/api/patches/source?service=opendata", &[("X-Team-Token", &token(1))], b"").await?;
    ensure!(source.status == 200, "{}", source.text());
    let mut archive = tar::Archive::new(&source.body[..]);
    let mut app = String::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_str() == Some("app.py") {
            std::io::Read::read_to_string(&mut entry, &mut app)?;
        }
    }
    ensure!(app.contains("EXPORT_NAME_RE"), "the downloaded source is the patched one");

    // Team 2: a patch that breaks listing datasets, then one that answers only on the staging
    // network. Team 3: hostile archives and a build that never ends. All queued at once.
    let broken = app_diff(
        r#"            ("GET", "/api/datasets"): self.api_list_datasets,"#,
        &[r#"            ("GET", "/api/dataset-list"): self.api_list_datasets,"#],
    )?;
    // Staging reaches the service from the staging network (10.251.0.0/16), the live checker
    // from the team's game network.
    let live_only = app_diff(
        "    def send_json(self, status, obj):",
        &[
            "    def send_json(self, status, obj):",
            r#"        status = status if self.client_address[0].startswith("10.251.") else 500"#,
        ],
    )?;
    let zeros = gigabyte_of_zeros(dir.path())?;
    let (status, refused_one) = send_patch(&web, &token(2), "diff", broken.as_bytes()).await?;
    ensure!(status == 202 && refused_one["status"] == "queued", "{status} {refused_one}");
    let (_, rolled) = send_patch(&web, &token(2), "diff", live_only.as_bytes()).await?;
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "outside the build folder",
            raw_tar(&[("../../etc/cron.d/x", tar::EntryType::Regular, b"* * * * * root id\n")])?,
        ),
        ("symbolic link", raw_tar(&[("app.py", tar::EntryType::Symlink, b"")])?),
        ("over the limit", zeros),
        ("stopped after", raw_tar(&[("build.sh", tar::EntryType::Regular, b"#!/bin/sh\nwhile :; do :; done\n")])?),
    ];
    let mut hostile_ids = Vec::new();
    for (want, body) in &hostile {
        let (status, patch) = send_patch(&web, &token(3), "tar", body).await?;
        ensure!(status == 202, "{want}: {status} {patch}");
        hostile_ids.push((*want, patch["id"].clone()));
    }
    let (_, last) = send_patch(&web, &token(3), "diff", broken.as_bytes()).await?;
    ensure!(last["status"] == "queued" && last["queue_position"].as_u64() >= Some(2), "a visible place: {last}");
    // A sixth waiting patch of team 3 is over its queue; a body over max_size is refused unread.
    let (status, full) = send_patch(&web, &token(3), "diff", broken.as_bytes()).await?;
    ensure!(status == 429 && full["error"]["code"] == "patch_queue_full", "{status} {full}");
    let (status, large) = send_patch(&web, &token(1), "tar", &vec![0u8; 3 << 20]).await?;
    ensure!(status == 413 && large["error"]["code"] == "patch_too_large", "{status} {large}");

    let refused = patch_decided(&web, &token(2), &refused_one["id"], &["refused", "failed", "deployed"]).await?;
    ensure!(refused["status"] == "refused", "{refused:#}");
    let message = refused["message"].as_str().unwrap_or_default();
    ensure!(message.contains("in round 1") && message.contains("does not work"), "the checker's words: {message}");
    ensure!(message.contains("the live service is unchanged"), "{message}");
    ensure!(image_of(&live("crd"))? == base_image, "the refused patch never reached team 2's service");
    for (want, id) in &hostile_ids {
        let sent = Instant::now();
        let patch = patch_decided(&web, &token(3), id, &["refused", "failed", "deployed"]).await?;
        ensure!(patch["status"] == "refused", "{want}: {patch:#}");
        ensure!(patch["message"].as_str().unwrap_or_default().contains(want), "{want}: {patch:#}");
        ensure!(sent.elapsed() < Duration::from_secs(BUILD_LIMIT + 30), "{want} took {:?}", sent.elapsed());
    }
    ensure!(image_of(&live("emd"))? == base_image, "no hostile patch reached team 3's service");
    // The endless build's step container is gone with it.
    ensure!(
        eventually(|| run_ok("docker", &["ps", "--format", "{{.Command}}"])
            .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).contains("build.sh")))
        .await,
        "the endless build still runs"
    );

    // The live-only patch passes staging, is deployed, and is rolled back by itself when the
    // live checker finds it answering wrongly.
    let back = patch_decided(&web, &token(2), &rolled["id"], &["rolled-back", "refused", "failed"]).await?;
    ensure!(back["status"] == "rolled-back", "{back:#}");
    ensure!(back["message"].as_str().unwrap_or_default().contains("answering wrongly"), "{back:#}");
    ensure!(image_of(&live("crd"))? == base_image, "team 2 runs the scenario's own version again");

    // From the ticks after the deployment, the replay finds team 1 patched and still ok.
    let board = wait_for_board(&web, "team 1 not exploitable and ok, the others exploitable", |b| {
        b["tick"].as_u64() >= Some(deployed_at + 2)
            && verdict(b, 1) == Some("ok")
            && replay(b, 1) == Some("not-exploitable")
            && replay(b, 3) == Some("exploitable")
            && replay(b, 2) == Some("exploitable")
    })
    .await?;
    // The patch score, counted here from the stored replays and results.
    let tick = board["tick"].as_u64().context("a scored tick")? as u32;
    let store = Store::connect(&format!("sqlite://{}?mode=ro", dir.path().join("drill.db").display())).await?;
    let replays = store.exploit_replays(Tick(0), Tick(tick), None).await?;
    let mut verdicts = Vec::new();
    for t in 0..=tick {
        let results = store.check_results(Tick(t), None).await?;
        for team in 1..=3u16 {
            let mine = results.iter().filter(|r| r.team.0 == team).map(|r| (r.verdict, r.message.as_str()));
            let (v, _) = gongfang_core::plan::tick_verdict(mine);
            verdicts.push((Tick(t), gongfang_core::TeamId(team), gongfang_core::ServiceId(1), v));
        }
    }
    let defended = gongfang_core::patch::defended_cells(&replays, &verdicts);
    let team1 = defended.iter().filter(|c| c.1.0 == 1).count() as f64;
    ensure!(team1 >= 1.0, "team 1 defended some tick: {defended:?}");
    let row = |id: u64| {
        board["teams"].as_array().and_then(|ts| ts.iter().find(|t| t["id"] == id)).cloned().unwrap_or_default()
    };
    ensure!(row(1)["patching"].as_f64() == Some(PATCH_POINTS * team1), "board {} vs {team1} ticks", row(1)["patching"]);
    ensure!(row(3)["patching"].as_f64() == Some(0.0), "team 3 defended nothing: {}", row(3));
    let parts = ["attack", "defence", "sla", "reports", "patching"]
        .iter()
        .map(|k| row(1)[*k].as_f64().unwrap_or(f64::NAN))
        .sum::<f64>();
    ensure!(
        (row(1)["total"].as_f64().unwrap_or(0.0) - parts).abs() < 1e-6,
        "the total counts the patch points: {}",
        row(1)
    );

    // Team 1 rolls back to the organisers' version by hand.
    let (web1, token1) = (web.clone(), token(1));
    let rollback =
        tokio::task::spawn_blocking(move || agent(&web1, &token1, &["patch", "rollback", "opendata", "0"])).await??;
    ensure!(rollback.status.success(), "{rollback:?}");
    ensure!(String::from_utf8_lossy(&rollback.stdout).contains("version 0 runs again"), "{rollback:?}");
    ensure!(image_of(&live("ddb"))? == base_image);
    let audit = audit_log(dir.path())?;
    ensure!(audit.iter().any(|l| l.starts_with("team ddb|patch.submit|")), "{audit:?}");
    ensure!(
        audit.iter().any(|l| l.starts_with("gongfang patches|patch.deploy|") && l.contains("auto-rollback")),
        "{audit:?}"
    );
    up.stop()
}
