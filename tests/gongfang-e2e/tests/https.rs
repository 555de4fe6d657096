//! A drill served over HTTPS end to end: `gongfang serve --tls-cert --tls-key` with a
//! certificate of the drill's own authority, and the organisers' `gongfang pause` reaching it
//! only when it trusts that authority. A refused handshake or plain HTTP never makes the
//! command fall back to the database behind the running drill's back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, ensure};
use gongfang_e2e::hostile::{DrillProcess, DrillSpec, gongfang_binary};
use gongfang_store::Store;
use gongfang_test_programs::components;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use gongfang_test_support::tls::certificates;

const SECRET: &str = "https-drill-test-secret-0123456789abcdef";
const PREFIX: &str = "GONGFANG";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the organisers' command with `token` as GONGFANG_TOKEN.
fn gongfang(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let mut cmd = Command::new(binary);
    cmd.args(args).env("GONGFANG_LOG", "warn").env_remove("GONGFANG_CA_CERT").env_remove("GONGFANG_SERVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd.output()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drill_serves_https_and_organisers_pause_it_through_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = certificates(dir.path());
    let scenario = ScenarioBuilder::new("https-drill")
        .duration("1h")
        .tick("3s")
        .checker_timeout("2s")
        .flag_prefix(PREFIX)
        .secret(SECRET)
        .team(team(1, "kowloon-cyber").network("127.60.1.0/24"))
        .team(team(2, "harbour-data").network("127.60.2.0/24"))
        .service(service("kv").image("kv:latest").ports(&[7000]).checker(components::TRIVIAL))
        .toml();
    let spec = DrillSpec {
        scenario,
        flag_prefix: PREFIX.to_owned(),
        secret: SECRET.to_owned(),
        checker_cache: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("https-checker-cache"),
        extra_args: vec![
            "--tls-cert".to_owned(),
            certs.cert.display().to_string(),
            "--tls-key".to_owned(),
            certs.key.display().to_string(),
        ],
    };
    let binary = gongfang_binary()?;
    let drill = DrillProcess::start(&binary, dir.path(), &spec).await?;
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("serve.json"))?)?;
    let scoreboard = summary["scoreboard"].as_str().context("scoreboard")?;
    ensure!(scoreboard.starts_with("https://"), "the summary says the HTTPS address: {scoreboard}");

    // An organiser with an API token, made on the drill's machine.
    let db = ("GONGFANG_DATABASE_URL", drill.database_url.as_str());
    let out = gongfang(
        &binary,
        &["account", "add", "--name", "olga", "--role", "organiser"],
        &[db, ("GONGFANG_ACCOUNT_PASSWORD", "a passphrase for olga")],
    )?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let out = gongfang(&binary, &["account", "token", "--name", "olga"], &[db])?;
    ensure!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let auth = ("GONGFANG_TOKEN", token.as_str());
    let https = format!("https://localhost:{}", drill.web.port());
    let plain = format!("http://localhost:{}", drill.web.port());
    let ca = certs.ca.display().to_string();

    let refused = gongfang(&binary, &["pause", "--server", &plain], &[db, auth])?;
    ensure!(!refused.status.success(), "plain HTTP to the HTTPS port: {}", text(&refused.stdout));
    let refused = gongfang(&binary, &["pause", "--server", &https], &[db, auth])?;
    let err = text(&refused.stderr);
    ensure!(!refused.status.success() && err.contains("--ca-cert"), "an untrusted certificate: {err}");
    let store = Store::connect(&drill.database_url).await?;
    ensure!(!store.drill_state().await?.paused, "no refusal fell back to the database");

    let out = gongfang(&binary, &["pause", "--server", &https, "--ca-cert", &ca, "--reason", "TLS test"], &[db, auth])?;
    ensure!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    ensure!(
        text(&out.stdout).contains("no checker action is dispatched"),
        "answered by the drill: {}",
        text(&out.stdout)
    );
    ensure!(!text(&out.stderr).contains("no drill answers"), "{}", text(&out.stderr));
    ensure!(store.drill_state().await?.paused, "paused");
    let audit = store.list_audit(None, 20).await?;
    let pause = audit.iter().find(|a| a.action == "drill.pause").context("the pause is audited")?;
    ensure!(pause.actor == "account olga" && pause.detail["reason"] == "TLS test", "{pause:?}");
    store.close().await?;
    drop(drill);
    Ok(())
}
