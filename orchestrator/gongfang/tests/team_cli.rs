//! `gongfang migrate` and `gongfang team ...` end to end: the built binary on a temp SQLite file.

use std::process::{Command, Output};

use gongfang_core::TeamId;
use gongfang_store::Store;

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

const ADD_BLUE: &[&str] = &[
    "team",
    "add",
    "--slug",
    "blue-07",
    "--id",
    "7",
    "--name-en",
    "Blue Seven",
    "--name-zh",
    "藍七",
    "--role",
    "defender",
    "--network",
    "10.60.7.0/24",
    "--actor",
    "carol",
];

#[test]
fn migrate_add_token_list() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());

    let (out, _) = ok(&url, &["migrate"]);
    // Every migration is new to a fresh database: "migrated: N new, N applied in all".
    let counts: Vec<&str> = out.split_whitespace().filter(|w| w.chars().all(|c| c.is_ascii_digit())).collect();
    assert!(out.contains("migrated: ") && counts.len() == 2 && counts[0] == counts[1] && counts[0] != "0", "{out}");
    let applied = counts[0];
    // --database-url wins over the environment.
    let (out, _) = ok("sqlite:///nonexistent-dir/x.db", &["migrate", "--database-url", &url]);
    assert!(out.contains(&format!("up to date ({applied} migrations applied)")), "{out}");

    let (out, _) = ok(&url, ADD_BLUE);
    assert!(out.contains("added team blue-07 (id 7, defender, 10.60.7.0/24)"), "{out}");

    // Mistakes are refused with what to fix.
    let (slug, id, role, network) = (3, 5, 11, 13);
    let refused = |args: &[&str], want: &str| {
        let stderr = fails(&url, args);
        assert!(stderr.contains(want), "gongfang {args:?}: stderr `{stderr}` does not say `{want}`");
    };
    let mut args = ADD_BLUE.to_vec();
    args[role] = "defence";
    refused(&args, "use one of attacker, defender, both");
    let mut args = ADD_BLUE.to_vec();
    args[slug] = "Blue_7";
    refused(&args, "lowercase letters, digits");
    let mut args = ADD_BLUE.to_vec();
    args[slug] = "red-01";
    args[id] = "8";
    args[network] = "10.60.7.128/25";
    refused(&args, "overlaps team `blue-07`");
    args[network] = "10.60.8.0/24";
    args[id] = "7";
    refused(&args, "a team with id `7` already exists");
    args[id] = "70000";
    refused(&args, "from 1 to 65535");
    args[id] = "8";
    args[network] = "10.60.8.1/24";
    refused(&args, "host bits");

    let (list, _) = ok(&url, &["team", "list"]);
    let line = list.lines().find(|l| l.contains("blue-07")).expect("blue-07 listed");
    assert!(line.contains("defender") && line.contains("10.60.7.0/24") && line.contains("Blue Seven / 藍七"), "{line}");
    assert!(line.split_whitespace().nth(5) == Some("no"), "token column: {line}");
    assert!(!list.contains("red-01"), "a refused team was stored: {list}");

    let (token, warning) = ok(&url, &["team", "token", "blue-07"]);
    let token = token.trim().to_owned();
    assert_eq!(token.len(), 32, "token line: {token:?}");
    assert!(warning.contains("shown only now"), "{warning}");
    assert!(fails(&url, &["team", "token", "nobody"]).contains("no team with slug `nobody`"));

    let (list, _) = ok(&url, &["team", "list"]);
    let line = list.lines().find(|l| l.contains("blue-07")).unwrap();
    assert!(line.split_whitespace().nth(5) == Some("yes"), "token column: {line}");

    // The printed token is the team's, and the audit log names who did what, never the token.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.verify_token(&token).await.unwrap(), Some(TeamId(7)));
        let audit = store.list_audit(None, 100).await.unwrap();
        let actions: Vec<_> = audit.iter().map(|e| (e.actor.as_str(), e.action.as_str())).collect();
        assert_eq!(actions, [("carol", "team.add"), ("alice", "team.token.issue")]);
        assert_eq!(audit[0].detail["network"], "10.60.7.0/24");
        assert_eq!(audit[1].detail["team"], "blue-07");
        assert!(audit.iter().all(|e| !e.detail.to_string().contains(&token)), "token in audit log");
    });
}

/// `--log-format json`: every line on standard error is one JSON object a log collector reads,
/// with its level, message and fields; the default stays text for people.
#[test]
fn logs_are_one_json_object_per_line_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let run = |format: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gongfang"))
            .args(format)
            .args(["migrate", "--database-url", &url])
            .env("GONGFANG_LOG", "debug")
            .output()
            .expect("run gongfang");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let json = run(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> =
        json.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.iter().any(|l| l["level"] == "DEBUG" && l["fields"]["message"] == "database opened"), "{json}");
    let plain = run(&[]);
    assert!(plain.contains("database opened") && !plain.trim_start().starts_with('{'), "{plain}");
}
