//! Exactly one engine runs a drill: with `gongfang serve` running, a second `gongfang serve` on
//! the same database refuses to start and says which process holds the drill; once that
//! process is killed (no clean shutdown), a new one takes over at once, without waiting for the
//! lease to go stale.
//!
//! Needs the `gongfang` binary (`cargo build -p gongfang`; `GONGFANG_BIN` names another).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use gongfang_e2e::hostile::{DrillProcess, DrillSpec, gongfang_binary};
use gongfang_test_programs::components;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

const SECRET: &str = "one-engine-test-secret-0123456789abcdef";
const PREFIX: &str = "GONGFANG";

/// The lease's holder once it names `pid` (the server listens a moment before its engine
/// takes the lease), or whoever holds it after 20 s.
async fn holder(store: &gongfang_store::Store, pid: u32) -> anyhow::Result<Option<u32>> {
    for _ in 0..200 {
        if store.engine_lease().await?.is_some_and(|h| h.pid == pid) {
            return Ok(Some(pid));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(store.engine_lease().await?.map(|h| h.pid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_engine_on_the_same_drill_refuses_to_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = ScenarioBuilder::new("one-engine")
        .name("One engine", "單一引擎")
        .duration("1h")
        .tick("5s")
        .checker_timeout("3s")
        .flag_prefix(PREFIX)
        .secret(SECRET)
        // Nothing listens on these loopback addresses: every check is refused at once.
        .team(team(1, "kowloon-cyber").network("127.61.1.0/24"))
        .team(team(2, "harbour-data").network("127.61.2.0/24"))
        .service(service("kv").image("kv:latest").ports(&[7000]).checker(components::GOOD))
        .toml();
    let spec = DrillSpec {
        scenario,
        flag_prefix: PREFIX.to_owned(),
        secret: SECRET.to_owned(),
        checker_cache: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("one-engine-checker-cache"),
        extra_args: Vec::new(),
    };
    let binary = gongfang_binary()?;
    let first = DrillProcess::start(&binary, dir.path(), &spec).await?;
    let store = first.store().await?;
    let held = holder(&store, first.pid).await?;
    ensure!(held == Some(first.pid), "the lease names the running process: {held:?}");

    // A second engine on the same database: refused, told who runs the drill.
    let mut second = Command::new(&binary);
    second
        .current_dir(dir.path())
        .arg("serve")
        .arg(dir.path().join("scenario.toml"))
        .args(["--database-url", &first.database_url, "--web", "127.0.0.1:0", "--submit", "127.0.0.1:0"])
        .arg("--checker-cache")
        .arg(&spec.checker_cache)
        .env("GONGFANG_LOG", "warn")
        .stdin(Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || second.output()))
        .await
        .context("the second engine neither started nor stopped within 2 minutes")???;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "a second engine started: {stderr}");
    ensure!(
        stderr.contains("another engine runs this drill") && stderr.contains(&format!("process {}", first.pid)),
        "the refusal names the running engine: {stderr}"
    );
    ensure!(store.engine_lease().await?.is_some_and(|h| h.pid == first.pid), "the refusal took nothing");

    // The first dies without giving the lease up; the next one on this machine starts at once.
    drop(first);
    let mut next = DrillProcess::start(&binary, dir.path(), &spec).await.context("the engine after a crash")?;
    ensure!(next.is_running(), "the engine after a crash runs");
    let held = holder(&store, next.pid).await?;
    ensure!(
        held == Some(next.pid),
        "the new engine ({}) holds the lease: {held:?}; its log:\n{}",
        next.pid,
        next.last_log()
    );
    Ok(())
}
