//! The first drill end to end, on real Docker: `gongfang up` with three teams and short ticks
//! builds the demo service's image, starts the containers, the engine, both submission servers
//! and the scoreboard. The test then plays team 1: it runs the reference exploit against team
//! 2, submits the stolen flags over TCP and over HTTP, watches the websocket feed report the
//! capture and the new scores, checks `/api/scoreboard` against the database, patches team 2's
//! service as a defender would (live, in its container), and sees the exploit get nothing while
//! the checker stays `ok`. Finally it stops the drill with Ctrl-C and starts it again: the same
//! drill resumes.
//!
//! Needs Docker, root (the base image is built with debootstrap), python3 and `patch`; skipped
//! with a notice without Docker unless `GONGFANG_REQUIRE_DOCKER=1`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use gongfang_core::Tick;
use gongfang_e2e::http;
use gongfang_store::Store;
use gongfang_test_programs::components;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const DRILL: &str = "e2e-up";

/// The drills of this file run one after the other: they share the base image and two cores.
static ONE_DRILL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const BASE_IMAGE: &str = "gongfang/python:bookworm";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository folder")
}

fn docker_available() -> bool {
    Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output().is_ok_and(|o| o.status.success())
}

/// The organisers' binary, built by `cargo test --workspace` (or `cargo build -p gongfang`).
fn gongfang_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).context("test binary has no target folder")?;
    let binary = profile_dir.join("gongfang");
    ensure!(binary.is_file(), "{} is missing: build it first with `cargo build -p gongfang`", binary.display());
    Ok(binary)
}

fn scenario(dir: &Path) -> anyhow::Result<PathBuf> {
    let service = repo().join("challenges/opendata/service");
    let teams: String = [
        (1, "moda", "Ministry of Digital Affairs"),
        (2, "moi", "Ministry of the Interior"),
        (3, "moenv", "Ministry of Environment"),
    ]
    .iter()
    .map(|(id, slug, name)| {
        format!("[[team]]\nid = {id}\nslug = \"{slug}\"\nname = \"{name}\"\nnetwork = \"10.83.{id}.0/24\"\n\n")
    })
    .collect();
    let text = format!(
        r#"[drill]
slug = "{DRILL}"
name = "End-to-end drill"
duration = "30m"
tick = "8s"
checker_timeout = "3s"
flag_lifetime = 5
secret = "end-to-end-test-secret-0123456789"

[submission]
identify = "token"
rate_limit = 100
max_connections = 8

{teams}
[[service]]
slug = "opendata"
name = "Open Data Portal"
build = "{}"
ports = [8080]
checker = "{}"
flag_stores = 2
cpus = 0.5
memory = "256MiB"
"#,
        service.display(),
        components::OPENDATA_CHECKER
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// What `gongfang up` printed about where things are.
#[derive(Debug, Default)]
struct Printed {
    web: String,
    submit: String,
    tokens: BTreeMap<u16, String>,
    services: BTreeMap<u16, String>,
}

/// A running `gongfang up`: its printed addresses, and the rest of its output for failures.
struct Up {
    child: Child,
    printed: Printed,
    lines: mpsc::Receiver<String>,
}

impl Up {
    fn start(dir: &Path, scenario: &Path) -> anyhow::Result<Up> {
        let db = format!("sqlite://{}?mode=rwc", dir.join("drill.db").display());
        let mut child = Command::new(gongfang_binary()?)
            .current_dir(dir)
            .args(["up"])
            .arg(scenario)
            .args(["--database-url", &db, "--web", "127.0.0.1:0", "--submit", "127.0.0.1:0"])
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
        let mut printed = Printed::default();
        let mut team = 0;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .context("gongfang up did not print its addresses within 300 s")?;
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["scoreboard:", url] => {
                    printed.web = url.trim_start_matches("http://").trim_end_matches('/').to_owned()
                }
                ["flag", "submission:", "nc", ip, port, ..] => printed.submit = format!("{ip}:{port}"),
                ["team", id, _slug, "token", token, ..] => {
                    team = id.parse()?;
                    if !token.starts_with('(') {
                        printed.tokens.insert(team, (*token).to_owned());
                    }
                }
                ["opendata", addr] => {
                    printed.services.insert(team, (*addr).to_owned());
                }
                [first, ..] if first.starts_with("Ctrl-C") => break,
                _ => {}
            }
        }
        ensure!(!printed.web.is_empty() && !printed.submit.is_empty() && printed.services.len() == 3, "{printed:?}");
        Ok(Up { child, printed, lines })
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
        let said: Vec<String> = self.lines.try_iter().collect();
        ensure!(said.iter().any(|l| l.contains("run the same command again to resume")), "{said:?}");
        Ok(())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let (status, body) = http(web, "GET", path, &[], b"").await?;
    ensure!(status == 200, "GET {path}: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

async fn put_flags(web: &str, token: &str, flags: &[String]) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(flags)?;
    let headers = [("X-Team-Token", token), ("Content-Type", "application/json")];
    let (status, answer) = http(web, "PUT", "/flags", &headers, &body).await?;
    ensure!(status == 200, "PUT /flags: {status} {answer}");
    Ok(serde_json::from_str(&answer)?)
}

/// Polls `/api/scoreboard` until `done` holds.
async fn wait_for_board(web: &str, what: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let board = get_json(web, "/api/scoreboard").await?;
        if done(&board) {
            return Ok(board);
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}; the board is {board:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn verdict(board: &Value, team: u64) -> Option<&str> {
    board["teams"].as_array()?.iter().find(|t| t["id"] == team)?["services"][0]["verdict"].as_str()
}

fn all_ok(board: &Value) -> bool {
    (1..=3).all(|t| verdict(board, t) == Some("ok"))
}

/// Runs the team-written exploit against `team` and returns the flags it printed.
fn exploit(web: &str, target: &str, team: u16) -> anyhow::Result<Vec<String>> {
    let (host, port) = target.rsplit_once(':').context("address has a port")?;
    let out = Command::new("python3")
        .arg(repo().join("challenges/opendata/exploit/exploit.py"))
        .args([host, port, "--attack-info", &format!("http://{web}/api/attack-info"), "--team", &team.to_string()])
        .output()?;
    ensure!(out.status.success(), "exploit.py failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
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
    let container = format!("gf-{DRILL}-moi-opendata");
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
    if !docker_available() {
        if std::env::var("GONGFANG_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            bail!("Docker is required (GONGFANG_REQUIRE_DOCKER=1) but not reachable");
        }
        eprintln!("skipping: no Docker engine");
        return Ok(());
    }
    let status = Command::new("bash")
        .arg(repo().join("infra/base-image/build.sh"))
        .args(["--tag", BASE_IMAGE, "--include=python3"])
        .status()?;
    ensure!(status.success(), "cannot build {BASE_IMAGE}");

    let dir = tempfile::tempdir()?;
    let scenario = scenario(dir.path())?;
    let _teardown = Teardown(DRILL);
    let up = Up::start(dir.path(), &scenario)?;
    let web = up.printed.web.clone();

    // After the first ticks every service is up.
    wait_for_board(&web, "every service ok in a scored tick", |b| b["tick"].as_u64().is_some() && all_ok(b)).await?;

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
    let flags = exploit(&web, &up.printed.services[&2], 2)?;
    ensure!(flags.len() >= 2, "the exploit stole flags from team 2: {flags:?}");
    let token = up.printed.tokens.get(&1).context("team 1's token was printed")?.clone();

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
        for (field, stored) in
            [("attack", row.attack), ("defence", row.defence), ("sla", row.sla), ("total", row.total)]
        {
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
    let after = exploit(&web, &up.printed.services[&2], 2)?;
    ensure!(after.is_empty(), "the patched service still leaks flags: {after:?}");

    // Ctrl-C stops cleanly; running the command again resumes the same drill.
    let last = get_json(&web, "/api/scoreboard").await?["tick"].as_u64().unwrap_or(0);
    up.stop()?;
    let up = Up::start(dir.path(), &scenario)?;
    ensure!(up.printed.tokens.is_empty(), "tokens are issued once, not again on resume");
    let web = up.printed.web.clone();
    wait_for_board(&web, "the resumed drill scoring a later tick", |b| {
        b["tick"].as_u64().is_some_and(|t| t > last) && b["teams"][0]["total"].as_f64().is_some()
    })
    .await?;
    up.stop()?;
    Ok(())
}

/// The red/blue example runs: attacker-only teams get no containers and may submit flags,
/// defender-only teams get the services and may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_blue_example_runs() -> anyhow::Result<()> {
    let _one = ONE_DRILL_AT_A_TIME.lock().await;
    if !docker_available() {
        if std::env::var("GONGFANG_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            bail!("Docker is required (GONGFANG_REQUIRE_DOCKER=1) but not reachable");
        }
        eprintln!("skipping: no Docker engine");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    // The example as shipped, with short ticks, its own slug and networks, absolute paths.
    let example = std::fs::read_to_string(repo().join("challenges/redblue/scenario.toml"))?;
    let text = example
        .replace("slug = \"redblue\"", "slug = \"e2e-redblue\"")
        .replace("tick = \"120s\"", "tick = \"8s\"")
        .replace("checker_timeout = \"30s\"", "checker_timeout = \"3s\"")
        .replace("10.60.", "10.84.")
        .replace(
            "build = \"../opendata/service\"",
            &format!("build = \"{}\"", repo().join("challenges/opendata/service").display()),
        )
        .replace(
            "checker = \"../../sandbox/guests/target/wasm32-wasip2/release/opendata_checker.wasm\"",
            &format!("checker = \"{}\"", components::OPENDATA_CHECKER),
        );
    ensure!(
        text.contains("e2e-redblue") && text.contains("tick = \"8s\"") && text.contains(components::OPENDATA_CHECKER),
        "{text}"
    );
    let scenario = dir.path().join("redblue.toml");
    std::fs::write(&scenario, text)?;
    let status = Command::new("bash")
        .arg(repo().join("infra/base-image/build.sh"))
        .args(["--tag", BASE_IMAGE, "--include=python3"])
        .status()?;
    ensure!(status.success(), "cannot build {BASE_IMAGE}");

    let _teardown = Teardown("e2e-redblue");
    let up = Up::start(dir.path(), &scenario)?;
    let web = up.printed.web.clone();
    ensure!(
        up.printed.services.keys().copied().collect::<Vec<_>>() == [11, 12, 13],
        "services only for the blue teams: {:?}",
        up.printed.services
    );
    let containers =
        Command::new("docker").args(["ps", "-q", "--filter", "label=gongfang.drill=e2e-redblue"]).output()?;
    ensure!(String::from_utf8(containers.stdout)?.lines().count() == 3, "one container per blue team");

    let board = wait_for_board(&web, "the blue teams' services ok", |b| {
        b["tick"].as_u64().is_some() && [11, 12, 13].iter().all(|&t| verdict(b, t) == Some("ok"))
    })
    .await?;
    let red = board["teams"].as_array().context("teams")?.iter().find(|t| t["id"] == 1).context("red team 1")?;
    ensure!(red["services"].as_array().is_some_and(Vec::is_empty), "red teams have no services: {red}");

    // A red team steals from a blue team and submits; a blue team may not submit at all.
    let flags = exploit(&web, &up.printed.services[&11], 11)?;
    ensure!(!flags.is_empty(), "the exploit stole flags from a blue team");
    let answers = put_flags(&web, &up.printed.tokens[&1], &flags[..1]).await?;
    ensure!(answers[0]["msg"].as_str().is_some_and(|m| m.contains("Accepted")), "red team's flag: {answers}");
    let (status, body) = http(
        &web,
        "PUT",
        "/flags",
        &[("X-Team-Token", &up.printed.tokens[&12])],
        serde_json::to_string(&flags[..1])?.as_bytes(),
    )
    .await?;
    ensure!(
        status == 200 && !body.contains("Accepted") && body.contains("defend"),
        "a defender-only team's submission is refused, saying why: {status} {body}"
    );
    up.stop()?;
    Ok(())
}
