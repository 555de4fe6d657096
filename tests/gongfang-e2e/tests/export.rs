//! The drill's export from a real red/blue game: the real engine scores six ticks of real wasm
//! checkers against real service processes on SQLite; a red team captures a flag, a blue
//! team's service goes down, judges rule on an attack and a defence report, an organiser marks a
//! result defective (the engine scores again) and adjusts a score. The export then holds all of
//! it, matches `docs/export.schema.json`, is byte-stable, recomputes to its own standings from
//! its event log alone, and is written as JSON, CSV files and CTFtime's feed without replacing
//! anything.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, TimeZone, Utc};
use gongfang::checker_runner::SandboxRunner;
use gongfang::export::{Format, build, write};
use gongfang_core::export::Export;
use gongfang_core::report::{CheckedReport, Decision, ReportKind, TimeWindow};
use gongfang_core::scenario::{Role, Scenario};
use gongfang_core::scoring::Capture;
use gongfang_core::{AccountRole, FlagCodec, NewSubmission, ServiceId, StoreIdx, Target, TeamId, Tick, Verdict};
use gongfang_e2e::ServiceProcess;
use gongfang_engine::{Engine, EngineConfig, ManualClock};
use gongfang_sandbox::{ActionLimits, Sandbox, SandboxConfig};
use gongfang_test_programs::components;
use gongfang_test_support::TestDb;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use serde_json::Value;
use tokio::sync::broadcast;

const SECRET: &str = "export-test-secret-0123456789abcdef";
const KV: ServiceId = ServiceId(1);
const HARBOUR: TeamId = TeamId(1);
const RECORDS: TeamId = TeamId(2);
const LION: TeamId = TeamId(3);

fn scenario() -> Scenario {
    ScenarioBuilder::new("export-test")
        .name("Harbour Drill", "海港演練")
        .duration("20m")
        .checker_timeout("5s")
        .secret(SECRET)
        .reports(&[("scoring", "\"red-blue\""), ("report_weight", "0.5")])
        .team(
            team(1, "harbour-data")
                .name("Harbour Data Office", "海港數據辦公室")
                .role(Role::Defender)
                .network("10.62.1.0/24"),
        )
        .team(
            team(2, "kowloon-records")
                .name("Kowloon Records Unit", "九龍紀錄組")
                .role(Role::Defender)
                .network("10.62.2.0/24"),
        )
        .team(team(3, "red-lion").name("Red Lion", "紅獅隊").role(Role::Attacker).network("10.62.3.0/24"))
        .service(
            service("kv")
                .name("Key-Value Registry", "鍵值登記系統")
                .image("kv:latest")
                .ports(&[7000])
                .checker(components::GOOD),
        )
        .build()
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn report(kind: ReportKind, target: Option<TeamId>) -> CheckedReport {
    CheckedReport {
        kind,
        target_team: target,
        service: KV,
        window: TimeWindow { from: start(), to: start() + chrono::Duration::minutes(10) },
        technique: "unauthenticated GET of another user's key".into(),
        attack_id: None,
        description: "read the key-value store without logging in".into(),
        evidence: "GET key".into(),
        traced_address: None,
        traced_team: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_holds_the_whole_game_and_recomputes_to_its_standings() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = Arc::new(scenario());
    let program = PathBuf::from(env!("CARGO_BIN_EXE_gongfang-kv-service"));
    let mut services = BTreeMap::new();
    for team in [HARBOUR, RECORDS] {
        let any_port = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        services.insert(team, ServiceProcess::start(&program, any_port, &dir.path().join(format!("{}.log", team.0)))?);
    }
    let addrs: BTreeMap<TeamId, SocketAddr> = services.iter().map(|(t, p)| (*t, p.addr())).collect();
    let targets =
        move |team: TeamId, _: ServiceId| addrs.get(&team).map(|a| Target { address: a.ip(), ports: vec![a.port()] });
    let limits = ActionLimits { timeout: Duration::from_secs(5), ..Default::default() };
    let sandbox = Sandbox::new(SandboxConfig { max_concurrent_actions: 16, limits, ..Default::default() })?;
    let runner = SandboxRunner::load(&sandbox, &scenario)?;

    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    store.sync_scenario(&scenario).await?;
    let (events, _) = broadcast::channel(1024);
    let codec = FlagCodec::for_drill(
        &scenario.drill.flag_prefix,
        SECRET.as_bytes(),
        &scenario.drill.slug,
        store.drill_id().await?,
    );
    let cfg = EngineConfig::new(scenario.clone(), codec.clone(), start());
    let mut engine =
        Engine::resume(cfg, ManualClock::starting_at(start()), runner, store.clone(), targets, events).await?;

    for t in 0..6u32 {
        if t == 2 {
            services.get_mut(&RECORDS).context("records' kv")?.stop();
        }
        if t == 3 {
            services.get_mut(&RECORDS).context("records' kv")?.restart()?;
            // The red team captures the harbour's flag of tick 2.
            let flag = store.planted_flag(Tick(2), HARBOUR, KV, StoreIdx(0)).await?.context("a flag of tick 2")?;
            let capture = Capture {
                attacker: LION,
                victim: HARBOUR,
                service: KV,
                store: StoreIdx(0),
                planted: Tick(2),
                submitted: Tick(3),
            };
            store.insert_submissions(&[NewSubmission { capture, flag: flag.flag, submitted_at: start() }]).await?;
        }
        engine.play_tick(Tick(t)).await?;
    }

    // Judges rule; an organiser marks the harbour's tick 4 defective and adjusts a score.
    let judge = store.create_account("jude", AccountRole::Judge, "a long passphrase for jude").await?;
    let attack = store.file_report(LION, &report(ReportKind::Attack, Some(HARBOUR)), &[], start()).await?;
    let defence = store.file_report(HARBOUR, &report(ReportKind::Defence, None), &[], start()).await?;
    let valid =
        |points| Decision { valid: true, points, reason: String::new(), reason_codes: Vec::new(), finding: None };
    store.rule_report(attack.id, &judge, &valid(40), &scenario.reports, start()).await?;
    store.rule_report(defence.id, &judge, &valid(20), &scenario.reports, start()).await?;
    store.mark_defective(Tick(2), RECORDS, KV, "the checker's network failed", "account olga", Utc::now()).await?;
    engine.rescore().await?;
    store
        .adjust_score(
            RECORDS,
            5.0,
            "restored after a platform fault, with \"quotes\", commas",
            Tick(5),
            "account olga",
            Utc::now(),
        )
        .await?;

    let export = build(&store, &scenario).await?;
    ensure!(export.ticks.len() == 6 && export.rulings.len() == 2 && export.adjustments.len() == 1, "{export:#?}");
    let tick2 = &export.ticks[2];
    let records = tick2.verdicts.iter().find(|v| v.team == RECORDS).context("records' verdicts")?;
    ensure!(records.verdicts == Verdict::Down.letter().to_string(), "tick 2: records' kv down: {tick2:?}");
    ensure!(tick2.defective.len() == 1 && tick2.defective[0].team == RECORDS, "and marked defective: {tick2:?}");
    ensure!(export.ticks[3].captures.len() == 1 && export.ticks[3].captures[0].attacker == LION);

    // The standings: red among red, blue among blue; rulings weighted, the adjustment counted.
    let standing = |team: TeamId| export.standings.iter().find(|s| s.team == team).context("a standing");
    let lion = standing(LION)?;
    ensure!(lion.red_rank == Some(1) && lion.blue_rank.is_none() && lion.reports == 20.0, "{lion:?}");
    let harbour = standing(HARBOUR)?;
    ensure!(
        harbour.blue_rank.is_some() && harbour.report_points.defence == 20 && harbour.reports == 10.0,
        "{harbour:?}"
    );
    let records = standing(RECORDS)?;
    ensure!(records.adjustment == 5.0, "{records:?}");
    // The defective tick costs records nothing: its SLA equals the harbour's own 6 up ticks'.
    let sla = |team: TeamId| export.ticks[5].scores.iter().find(|s| s.team == team).map(|s| s.score.sla);
    ensure!(
        sla(RECORDS) == sla(HARBOUR),
        "records lost no SLA for the defective tick: {:?} {:?}",
        sla(RECORDS),
        sla(HARBOUR)
    );

    // Recomputed from the JSON alone, the standings are the export's own, bit for bit.
    let json = serde_json::to_vec_pretty(&export)?;
    let read: Export = serde_json::from_slice(&json)?;
    ensure!(
        read.recompute()? == export.standings,
        "recomputed:\n{:#?}\nexported:\n{:#?}",
        read.recompute()?,
        export.standings
    );
    let value: Value = serde_json::from_slice(&json)?;
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_path())?)?;
    let mut problems = Vec::new();
    conforms(&value, &schema, &schema, "$", &mut problems);
    ensure!(problems.is_empty(), "the export breaks docs/export.schema.json:\n{}", problems.join("\n"));

    // Written: the same bytes twice, nothing replaced, CSV files and CTFtime's feed.
    let (first, second) = (dir.path().join("one.json"), dir.path().join("two.json"));
    write(&export, Format::Json, &first)?;
    write(&build(&store, &scenario).await?, Format::Json, &second)?;
    ensure!(std::fs::read(&first)? == std::fs::read(&second)?, "the same drill gives the same bytes");
    let again = write(&export, Format::Json, &first).expect_err("an existing file is not replaced");
    ensure!(again.to_string().contains("already exists"), "{again}");
    let csv = dir.path().join("csv");
    let files = write(&export, Format::Csv, &csv)?;
    ensure!(files.len() == 9, "{files:?}");
    let standings = std::fs::read_to_string(csv.join("standings.csv"))?;
    ensure!(
        standings.starts_with("rank,red_rank,blue_rank,team,slug,") && standings.lines().count() == 4,
        "{standings}"
    );
    let verdicts = std::fs::read_to_string(csv.join("verdicts.csv"))?;
    ensure!(verdicts.contains("\r\n2,2,1,down,true\r\n"), "tick 2, records, kv, down, defective: {verdicts}");
    let adjustments = std::fs::read_to_string(csv.join("adjustments.csv"))?;
    ensure!(adjustments.contains("\"restored after a platform fault, with \"\"quotes\"\", commas\""), "{adjustments}");
    ensure!(write(&export, Format::Csv, &csv).is_err(), "a folder with an export is not written into");
    let feed: Value = serde_json::from_slice(&std::fs::read(
        write(&export, Format::Ctftime, &dir.path().join("ctftime.json"))?[0].clone(),
    )?)?;
    ensure!(feed["tasks"] == serde_json::json!(["Key-Value Registry"]), "{feed}");
    let positions: Vec<u64> =
        feed["standings"].as_array().into_iter().flatten().filter_map(|s| s["pos"].as_u64()).collect();
    ensure!(positions == [1, 2, 3], "{feed}");
    Ok(())
}

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/export.schema.json")
}

/// Checks `value` against the parts of JSON Schema the export's schema uses: `type`, `const`,
/// `enum`, `required`, `additionalProperties: false`, `properties`, `items`, `$ref`,
/// `minimum`, and the verdict letters' pattern.
fn conforms(value: &Value, schema: &Value, root: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/$defs/");
        return conforms(value, &root["$defs"][name], root, at, problems);
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |t: &&str| *t == kind || (*t == "number" && kind == "integer");
    if !allowed.is_empty() && !allowed.iter().any(fits) {
        problems.push(format!("{at}: a {kind}, the schema says {allowed:?}"));
    }
    if let Some(c) = schema.get("const").filter(|c| *c != value) {
        problems.push(format!("{at}: {value}, the schema says {c}"));
    }
    if let Some(options) = schema["enum"].as_array().filter(|o| !o.contains(value)) {
        problems.push(format!("{at}: {value} is not one of {options:?}"));
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), value.as_f64())
        && n < min
    {
        problems.push(format!("{at}: {n} is under {min}"));
    }
    if schema["pattern"].is_string() {
        let letters = value.as_str().unwrap_or_default();
        if !letters.chars().all(|c| Verdict::from_letter(c).is_some()) {
            problems.push(format!("{at}: {letters:?} holds a letter that is no verdict"));
        }
    }
    if let Value::Object(fields) = value {
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !fields.contains_key(required) {
                problems.push(format!("{at}: no `{required}`"));
            }
        }
        for (name, field) in fields {
            match schema["properties"].get(name) {
                Some(sub) => conforms(field, sub, root, &format!("{at}.{name}"), problems),
                None if schema["additionalProperties"] == false => {
                    problems.push(format!("{at}: `{name}` is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(item, sub, root, &format!("{at}[{i}]"), problems);
        }
    }
}
