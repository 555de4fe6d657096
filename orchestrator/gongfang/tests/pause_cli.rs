//! `gongfang pause` and `gongfang resume` end to end: the built binary on a temp SQLite file;
//! the stored flag the engine reads, and the audit log.

use std::process::Command;

use gongfang_store::Store;

fn gongfang(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .args(args)
        .env("GONGFANG_DATABASE_URL", url)
        .env("GONGFANG_LOG", "warn")
        .output()
        .expect("run gongfang");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "gongfang {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test]
async fn pause_and_resume_set_the_flag_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());

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
