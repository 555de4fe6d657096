//! `gongfang export` as organisers run it after a drill: the JSON document, the CSV folder and
//! CTFtime's feed from the drill's SQLite file; nothing replaced; a missing database and an
//! unknown format refused with a message that says what to do.

use std::path::Path;
use std::process::{Command, Output};

use chrono::{TimeZone, Utc};
use gongfang_core::scoring::TeamScore;
use gongfang_core::{ScoreRow, TeamId, Tick};
use gongfang_store::Store;

fn gongfang(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .args(args)
        .env("GONGFANG_DATABASE_URL", url)
        .env("GONGFANG_LOG", "warn")
        .output()
        .expect("run gongfang")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scenario(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("notes.wasm"), b"").unwrap();
    let file = dir.join("scenario.toml");
    std::fs::write(
        &file,
        "[drill]\nslug = \"results\"\nname = \"Harbour Drill\"\nname_zh = \"海港演練\"\nduration = \"1h\"\ndemo = true\n\
         secret = \"0123456789abcdef\"\n\n\
         [[team]]\nid = 1\nslug = \"harbour-data\"\nname = \"=Harbour Data Office\"\nname_zh = \"海港數據辦公室\"\n\
         network = \"10.60.1.0/24\"\n\n\
         [[team]]\nid = 2\nslug = \"kowloon-records\"\nname = \"Kowloon Records Unit\"\nname_zh = \"九龍紀錄組\"\n\
         network = \"10.60.2.0/24\"\n\n\
         [[service]]\nslug = \"notes\"\nname = \"Notes\"\nimage = \"notes:latest\"\nports = [8080]\nchecker = \"notes.wasm\"\n",
    )
    .unwrap();
    file
}

#[test]
fn the_drill_is_exported_as_json_csv_and_ctftime_without_replacing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let scenario_file = scenario(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::connect_and_migrate(&url).await.unwrap();
        let scenario = gongfang::scenario_file::load(&scenario_file).unwrap();
        store.sync_scenario(&scenario).await.unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
        store.open_tick(Tick(0), at).await.unwrap();
        store.close_tick(Tick(0), at).await.unwrap();
        let score = |total| TeamScore { attack: 0.0, defence: 0.0, sla: total, total };
        let rows = [(1, 3.5), (2, 7.25)].map(|(team, total)| ScoreRow {
            tick: Tick(0),
            team: TeamId(team),
            score: score(total),
        });
        store.upsert_scores(&rows).await.unwrap();
        store.mark_tick_scored(Tick(0), at).await.unwrap();
    });
    let scenario = scenario_file.to_str().unwrap();

    let json = dir.path().join("results.json");
    let run = gongfang(&url, &["export", "--scenario", scenario, "--out", json.to_str().unwrap()]);
    assert!(run.status.success(), "{}\n{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(text(&run.stdout).trim(), json.display().to_string(), "the file written is listed");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["format"], "gongfang-export/1");
    assert_eq!(doc["standings"][0]["slug"], "kowloon-records", "ranked by total: {doc}");
    assert_eq!(doc["standings"][0]["total"], 7.25);
    assert_eq!(doc["ticks"][0]["verdicts"][0]["verdicts"], "e", "no results: scored as a checker error");

    let again = gongfang(&url, &["export", "--scenario", scenario, "--out", json.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));

    let csv = dir.path().join("csv");
    let run = gongfang(&url, &["export", "--scenario", scenario, "--format", "csv", "--out", csv.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout).lines().count(), 9, "nine files: {}", text(&run.stdout));
    let teams = std::fs::read_to_string(csv.join("teams.csv")).unwrap();
    assert!(teams.contains("1,harbour-data,'=Harbour Data Office,"), "a formula-like name is defused: {teams}");

    let feed = dir.path().join("ctftime.json");
    let run =
        gongfang(&url, &["export", "--scenario", scenario, "--format", "ctftime", "--out", feed.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let feed: serde_json::Value = serde_json::from_slice(&std::fs::read(&feed).unwrap()).unwrap();
    assert_eq!(feed["standings"][0], serde_json::json!({"pos": 1, "team": "Kowloon Records Unit", "score": 7.25}));

    let missing = format!("sqlite://{}", dir.path().join("nowhere.db").display());
    let out = dir.path().join("x.json");
    let run = gongfang(&missing, &["export", "--scenario", scenario, "--out", out.to_str().unwrap()]);
    assert!(!run.status.success() && text(&run.stderr).contains("does not exist"), "{}", text(&run.stderr));
    assert!(!out.exists(), "nothing written");
    let run = gongfang(&url, &["export", "--scenario", scenario, "--format", "xml", "--out", out.to_str().unwrap()]);
    assert!(
        !run.status.success() && text(&run.stderr).contains("possible values: json, csv, ctftime"),
        "{}",
        text(&run.stderr)
    );
}
