//! `gongfang pause` and `gongfang resume` end to end: the built binary on a temp SQLite file;
//! the stored flag the engine reads, and the audit log; a database without a drill refused.

use std::path::Path;
use std::process::{Command, Output};

use gongfang_store::Store;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

fn run(dir: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gongfang"));
    cmd.current_dir(dir).args(args).env("GONGFANG_LOG", "warn").env_remove("GONGFANG_DATABASE_URL");
    if let Some(url) = url {
        cmd.env("GONGFANG_DATABASE_URL", url);
    }
    cmd.output().expect("run gongfang")
}

fn gongfang(url: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), Some(url), args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "gongfang {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A database holding a drill, as `gongfang up` leaves it: migrated, the scenario loaded.
async fn drill_database(url: &str) -> Store {
    let scenario = ScenarioBuilder::new("pause-test").team(team(1, "alpha")).service(service("notes")).build();
    let store = Store::connect_and_migrate(url).await.unwrap();
    store.sync_scenario(&scenario).await.unwrap();
    store
}

#[tokio::test]
async fn pause_and_resume_set_the_flag_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    drill_database(&url).await.close().await.unwrap();

    let said = gongfang(&url, &["pause", "--actor", "alice", "--reason", "network maintenance"]);
    assert!(said.contains("now paused"), "{said}");
    let said = gongfang(&url, &["pause", "--actor", "alice"]);
    assert!(said.contains("already paused"), "pausing twice changes nothing: {said}");
    let store = Store::connect(&url).await.unwrap();
    assert!(store.drill_state().await.unwrap().paused);

    let said = gongfang(&url, &["resume", "--actor", "bob"]);
    assert!(said.contains("now running"), "{said}");
    assert!(!store.drill_state().await.unwrap().paused);

    let audit = store.list_audit(None, 100).await.unwrap();
    let lines: Vec<(String, String, String)> =
        audit.iter().map(|a| (a.actor.clone(), a.action.clone(), a.detail.to_string())).collect();
    assert_eq!(
        lines,
        [
            ("alice".to_owned(), "drill.pause".to_owned(), r#"{"reason":"network maintenance"}"#.to_owned()),
            ("bob".to_owned(), "drill.resume".to_owned(), r#"{"reason":""}"#.to_owned()),
        ],
        "one audit line per change, with who and why"
    );
}

#[tokio::test]
async fn pause_refuses_a_database_without_a_drill() {
    // The default database, in a folder where no drill ever ran: not created, refused.
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), None, &["pause", "--actor", "alice"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pause without a drill must fail; it said {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("database sqlite://gongfang.db") && stderr.contains("holds no drill"), "{stderr}");
    assert!(stderr.contains("--database-url") && stderr.contains("GONGFANG_DATABASE_URL"), "{stderr}");
    assert!(!dir.path().join("gongfang.db").exists(), "refusing creates no database");

    // A database that exists but into which no scenario was ever loaded.
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("empty.db").display());
    Store::connect_and_migrate(&url).await.unwrap().close().await.unwrap();
    let out = run(dir.path(), Some(&url), &["resume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "resume without a drill must fail");
    assert!(stderr.contains(&format!("database {url} holds no drill")), "names the database it opened: {stderr}");
    let store = Store::connect(&url).await.unwrap();
    assert!(store.list_audit(None, 10).await.unwrap().is_empty(), "nothing recorded");
}
