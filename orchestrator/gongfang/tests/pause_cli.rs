//! `gongfang account`, `pause`, `resume` and `announce` end to end with no drill answering:
//! the built binary on a temp SQLite file acts on the drill's database as the organiser whose
//! API token it was given; the stored flag the engine reads at its next tick, the audit log
//! under that account; other roles, wrong tokens and a database without a drill refused.

use std::path::Path;
use std::process::{Command, Output};

use gongfang_core::AccountRole;
use gongfang_store::Store;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

/// Where no drill answers: nothing listens on port 1 of the loopback.
const NO_DRILL: &str = "http://127.0.0.1:1";

fn run(dir: &Path, url: Option<&str>, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gongfang"));
    cmd.current_dir(dir)
        .args(args)
        .env("GONGFANG_LOG", "warn")
        .env("GONGFANG_SERVER", NO_DRILL)
        .env_remove("GONGFANG_DATABASE_URL")
        .env_remove("GONGFANG_TOKEN");
    if let Some(url) = url {
        cmd.env("GONGFANG_DATABASE_URL", url);
    }
    if let Some(token) = token {
        cmd.env("GONGFANG_TOKEN", token);
    }
    cmd.output().expect("run gongfang")
}

fn gongfang(url: &str, token: Option<&str>, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), Some(url), token, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "gongfang {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn refused(url: &str, token: Option<&str>, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), Some(url), token, args);
    assert!(!out.status.success(), "gongfang {args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A database holding a drill, as `gongfang up` leaves it: migrated, the scenario loaded.
async fn drill_database(url: &str) -> Store {
    let scenario = ScenarioBuilder::new("pause-test").team(team(1, "alpha")).service(service("notes")).build();
    let store = Store::connect_and_migrate(url).await.unwrap();
    store.sync_scenario(&scenario).await.unwrap();
    store
}

#[tokio::test]
async fn without_a_running_drill_pause_and_resume_act_on_its_database_under_the_tokens_account() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let store = drill_database(&url).await;
    store.create_account("olga", AccountRole::Organiser, "organiser password").await.unwrap();
    store.create_account("oscar", AccountRole::Observer, "observer password").await.unwrap();
    let olga = store.issue_api_token("olga", chrono::Utc::now()).await.unwrap().unwrap();
    let oscar = store.issue_api_token("oscar", chrono::Utc::now()).await.unwrap().unwrap();
    let olga = Some(olga.expose().as_str());

    let err = refused(&url, None, &["pause"]);
    assert!(err.contains("no API token") && err.contains("GONGFANG_TOKEN"), "{err}");
    let err = refused(&url, Some(oscar.expose()), &["pause"]);
    assert!(err.contains("only organisers") && err.contains("observer"), "{err}");
    let err = refused(&url, Some(&format!("gfo_{}", "1".repeat(64))), &["pause"]);
    assert!(err.contains("not valid"), "{err}");
    assert!(!store.drill_state().await.unwrap().paused, "refusals change nothing");

    let said = gongfang(&url, olga, &["pause", "--reason", "network maintenance"]);
    assert!(said.contains("now paused (from its next tick on)"), "{said}");
    let said = gongfang(&url, olga, &["pause"]);
    assert!(said.contains("already paused"), "pausing twice changes nothing: {said}");
    assert!(store.drill_state().await.unwrap().paused);
    let said = gongfang(&url, olga, &["resume"]);
    assert!(said.contains("now running"), "{said}");
    assert!(!store.drill_state().await.unwrap().paused);
    let err = refused(&url, olga, &["extend", "--minutes", "30"]);
    assert!(err.contains("moves the end of a running drill only"), "{err}");
    assert_eq!(store.drill_extension().await.unwrap(), std::time::Duration::ZERO, "no drill, no extension");
    let said = gongfang(&url, olga, &["announce", "--title", "Lunch", "--title-zh", "午膳"]);
    assert!(said.contains("posted"), "{said}");
    let posted = store.list_announcements(5).await.unwrap();
    assert_eq!((posted[0].text.title.as_str(), posted[0].text.title_zh.as_deref()), ("Lunch", Some("午膳")));

    let audit = store.list_audit(None, 100).await.unwrap();
    let lines: Vec<(String, String, String)> =
        audit.iter().map(|a| (a.actor.clone(), a.action.clone(), a.detail["reason"].to_string())).collect();
    let line = |action: &str, reason: &str| ("account olga".to_owned(), action.to_owned(), reason.to_owned());
    assert_eq!(
        lines,
        [
            line("drill.pause", r#""network maintenance""#),
            line("drill.resume", r#""""#),
            line("announcement.post", "null"),
        ],
        "one audit line per change, under the token's account"
    );
}

#[tokio::test]
async fn accounts_and_their_api_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    drill_database(&url).await.close().await.unwrap();
    let add = |name: &str, role: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_gongfang"))
            .args(["account", "add", "--name", name, "--role", role, "--actor", "setup"])
            .env("GONGFANG_DATABASE_URL", &url)
            .env("GONGFANG_ACCOUNT_PASSWORD", "a long enough password")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, said) = add("olga", "organiser");
    assert!(ok && said.contains("organiser `olga` created"), "{said}");
    let (ok, said) = add("oscar", "referee");
    assert!(!ok && said.contains("use organiser, judge or observer"), "{said}");

    let token = gongfang(&url, None, &["account", "token", "--name", "olga"]).trim().to_owned();
    assert!(token.starts_with("gfo_") && token.len() == 68, "one line, the token: {token}");
    let list = gongfang(&url, None, &["account", "list"]);
    assert!(list.contains("olga") && list.contains("organiser") && !list.contains(&token), "{list}");
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.api_token_account(&token).await.unwrap().map(|a| a.name), Some("olga".to_owned()));
    gongfang(&url, None, &["account", "revoke", "--name", "olga"]);
    assert_eq!(store.api_token_account(&token).await.unwrap(), None, "revoked at once");
    let err = refused(&url, None, &["account", "revoke", "--name", "olga"]);
    assert!(err.contains("holds no API token"), "{err}");
    let audit: Vec<String> = store.list_audit(None, 10).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(audit, ["account.add", "account.token", "account.revoke"]);
}

#[tokio::test]
async fn pause_refuses_a_database_without_a_drill() {
    let token = format!("gfo_{}", "2".repeat(64));
    // The default database, in a folder where no drill ever ran: not created, refused.
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), None, Some(&token), &["pause"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pause without a drill must fail; it said {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("no drill answers at http://127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("database sqlite://gongfang.db") && stderr.contains("holds no drill"), "{stderr}");
    assert!(stderr.contains("--database-url") && stderr.contains("GONGFANG_DATABASE_URL"), "{stderr}");
    assert!(!dir.path().join("gongfang.db").exists(), "refusing creates no database");

    // A database that exists but into which no scenario was ever loaded.
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("empty.db").display());
    Store::connect_and_migrate(&url).await.unwrap().close().await.unwrap();
    let out = run(dir.path(), Some(&url), Some(&token), &["resume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "resume without a drill must fail");
    assert!(stderr.contains(&format!("database {url} holds no drill")), "names the database it opened: {stderr}");
    let store = Store::connect(&url).await.unwrap();
    assert!(store.list_audit(None, 10).await.unwrap().is_empty(), "nothing recorded");
}
