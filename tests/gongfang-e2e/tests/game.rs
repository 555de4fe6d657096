//! A twenty-tick game in simulated time: four teams × two services, real wasm checkers in the
//! sandbox against real service processes, a real SQLite store. The test breaks services on
//! purpose (stops one, deletes a flag, makes one answer garbage) and a checker breaks itself;
//! the verdict table that comes out is asserted cell by cell, and the scoreboard's past (the
//! board after every tick, the score series, each team's status series) against it. The
//! drill's export recomputes to its own standings from its event log alone.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use chrono::{DateTime, TimeZone, Utc};
use gongfang::checker_runner::SandboxRunner;
use gongfang_core::NewSubmission;
use gongfang_core::clock::{DrillClock, Phase};
use gongfang_core::event::GameEvent;
use gongfang_core::plan::tick_verdict;
use gongfang_core::scenario::Scenario;
use gongfang_core::scoring::{
    Capture, ScoredService, ScoredTeam, Scorer, ServiceVerdict, TickEvents, TickScores, recompute,
};
use gongfang_core::{ActionCtx, FaultKind, FlagCodec, ServiceId, StoreIdx, Target, TeamId, Tick, Verdict};
use gongfang_e2e::ServiceProcess;
use gongfang_engine::{Engine, EngineConfig, ManualClock};
use gongfang_sandbox::{ActionLimits, Sandbox, SandboxConfig};
use gongfang_store::Store;
use gongfang_test_programs::components;
use gongfang_test_support::TestDb;
use gongfang_test_support::http::get;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use gongfang_web::{WebSettings, WebState};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot, watch};

const SECRET: &str = "game-test-secret-0123456789abcdef";
const TICKS: u32 = 20;
const NOTES_NAME: &str = "Notes (its checker has a bug at ticks 12 and 15)";
const KV: ServiceId = ServiceId(1);
const NOTES: ServiceId = ServiceId(2);

fn scenario(kv_checker: &str, notes_checker: &str) -> Scenario {
    let teams = (1..=4).map(|i| team(i, &format!("team{i}")).network(&format!("10.61.{i}.0/24")));
    let scenario = ScenarioBuilder::new("game-test").duration("20m").checker_timeout("5s").secret(SECRET);
    teams
        .fold(scenario, ScenarioBuilder::team)
        .service(service("kv").image("kv:latest").ports(&[7000]).checker(kv_checker))
        .service(service("notes").name(NOTES_NAME, NOTES_NAME).image("kv:latest").ports(&[7000]).checker(notes_checker))
        .build()
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

/// The verdict every cell should have, given what the test does.
fn expected(tick: u32, team: u16, service: ServiceId) -> Verdict {
    match (tick, team, service) {
        // The notes checker panics at tick 12 and spins at tick 15: our fault, for everyone.
        (12 | 15, _, NOTES) => Verdict::CheckerError,
        // Team 2's kv process is stopped before tick 5 and started again before tick 8.
        (5..=7, 2, KV) => Verdict::Down,
        // The flag team 3's kv got at tick 9 is deleted before tick 10 and put back after it.
        (10, 3, KV) => Verdict::Corrupt,
        // Team 4's notes answer garbage during tick 17.
        (17, 4, NOTES) => Verdict::Mumble,
        _ => Verdict::Ok,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_ticks_with_real_checkers_and_services() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = Arc::new(scenario(components::GOOD, components::FLAKY));

    // One real process per team × service.
    let program = PathBuf::from(env!("CARGO_BIN_EXE_gongfang-kv-service"));
    let mut services: BTreeMap<(u16, ServiceId), ServiceProcess> = BTreeMap::new();
    for team in 1..=4u16 {
        for service in [KV, NOTES] {
            let data = dir.path().join(format!("team{team}-{}.log", service.0));
            let any_port = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            services.insert((team, service), ServiceProcess::start(&program, any_port, &data)?);
        }
    }
    let addrs: BTreeMap<(TeamId, ServiceId), SocketAddr> =
        services.iter().map(|(&(team, service), p)| ((TeamId(team), service), p.addr())).collect();
    let targets = move |team: TeamId, service: ServiceId| {
        addrs.get(&(team, service)).map(|a| Target { address: a.ip(), ports: vec![a.port()] })
    };

    let limits =
        ActionLimits { timeout: Duration::from_secs(5), cpu_time: Duration::from_millis(300), ..Default::default() };
    let sandbox = Sandbox::new(SandboxConfig { max_concurrent_actions: 64, limits, ..Default::default() })?;
    let runner = SandboxRunner::load(&sandbox, &scenario)?;
    let exploit = sandbox.load(components::GOOD)?;

    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    store.sync_scenario(&scenario).await?;
    let (events, _) = broadcast::channel(4096);
    // The drill's codec, as `gongfang up` builds it: the secret, the slug and the database's drill id.
    let codec = FlagCodec::for_drill(
        &scenario.drill.flag_prefix,
        SECRET.as_bytes(),
        &scenario.drill.slug,
        store.drill_id().await?,
    );
    let mut cfg = EngineConfig::new(scenario.clone(), codec.clone(), start());
    cfg.max_concurrency = 16;
    let mut engine =
        Engine::resume(cfg, ManualClock::starting_at(start()), runner, store.clone(), targets, events.clone()).await?;

    let mut table: BTreeMap<(u32, u16, ServiceId), Verdict> = BTreeMap::new();
    let mut captured = 0;
    for t in 0..TICKS {
        let tick = Tick(t);
        match t {
            5 => services.get_mut(&(2, KV)).unwrap().stop(),
            8 => services.get_mut(&(2, KV)).unwrap().restart()?,
            10 => {
                let key = planted_key(&store, Tick(9), TeamId(3), KV).await?;
                assert_eq!(services[&(3, KV)].command(&format!("DEL {key}"))?, "DELETED");
            }
            17 => assert_eq!(services[&(4, NOTES)].command("MODE garbage")?, "OK"),
            18 => assert_eq!(services[&(4, NOTES)].command("MODE normal")?, "OK"),
            _ => {}
        }
        // Team 1 attacks team 2's kv with the reference exploit every third tick, using the
        // public flag id of the previous tick's flag, and "submits" what it finds.
        if t % 3 == 2 {
            let hints = store.flag_ids(Tick(t - 1), Tick(t - 1)).await?;
            let hint = hints.iter().find(|h| h.team == TeamId(2) && h.service == KV);
            if let Some(hint) = hint {
                let target = services[&(2, KV)].addr();
                let ctx = ActionCtx { team: TeamId(2), tick, seed: u64::from(t) };
                let got = exploit.exploit(&Target::from_addr(target), &ctx, StoreIdx(0), &hint.flag_id).await;
                for flag in got.flags {
                    let info = codec.parse(&flag)?;
                    let row = NewSubmission {
                        capture: Capture {
                            attacker: TeamId(1),
                            victim: info.team,
                            service: info.service,
                            store: info.store,
                            planted: info.tick,
                            submitted: tick,
                        },
                        flag,
                        submitted_at: start(),
                    };
                    store.insert_submissions(&[row]).await?;
                    captured += 1;
                }
            }
        }
        let report = engine.play_tick(tick).await?;
        if t == 10 {
            // Put the deleted flag back: only tick 10 may see it missing.
            let (key, flag) = planted(&store, Tick(9), TeamId(3), KV).await?;
            assert_eq!(services[&(3, KV)].command(&format!("PUT {key} {flag}"))?, "OK");
        }
        for ((team, service), (verdict, _)) in &report.verdicts {
            table.insert((t, team.0, *service), *verdict);
        }
    }

    // The whole table, cell by cell.
    let mut wrong = Vec::new();
    for t in 0..TICKS {
        for team in 1..=4u16 {
            for service in [KV, NOTES] {
                let want = expected(t, team, service);
                let got = table.get(&(t, team, service)).copied();
                if got != Some(want) {
                    wrong.push(format!("tick {t} team {team} service {}: expected {want}, got {got:?}", service.0));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "verdicts differ from the expected table:\n{}", wrong.join("\n"));
    // Attempts at ticks 2, 5, 8, 11, 14 and 17; at 5 the target is stopped, and at 8 it has
    // no flag from tick 7, when it was down.
    assert_eq!(captured, 4, "the exploit captures a flag on every attempt against a live target");

    // Public messages: a checker failure never blames the team.
    let results = store.check_results(Tick(12), Some(TeamId(1))).await?;
    let notes: Vec<_> = results.iter().filter(|r| r.service == NOTES).collect();
    assert!(!notes.is_empty() && notes.iter().all(|r| r.verdict == Verdict::CheckerError));
    assert!(notes.iter().all(|r| r.message == "the checker failed; this does not count against you"), "{notes:?}");
    assert!(notes.iter().all(|r| r.log.contains("checker trapped")), "the private log says why: {notes:?}");
    assert!(notes.iter().all(|r| r.fault == Some(FaultKind::Crash)), "stored as a crash: {notes:?}");
    let spun = store.check_results(Tick(15), Some(TeamId(1))).await?;
    let spun: Vec<_> = spun.iter().filter(|r| r.service == NOTES).collect();
    assert!(!spun.is_empty() && spun.iter().all(|r| r.fault == Some(FaultKind::Timeout)), "tick 15 spins: {spun:?}");

    // No SLA lost to the checker's bug: team 1, hit only by it, has the SLA of a perfect game.
    let last = store.scores_for_tick(Tick(TICKS - 1)).await?;
    let team1 = last.iter().find(|r| r.team == TeamId(1)).unwrap();
    assert_eq!(team1.score.sla, perfect_sla(&scenario, TeamId(1))?, "checker errors cost team 1 SLA");
    for team in [2, 3, 4] {
        let row = last.iter().find(|r| r.team == TeamId(team)).unwrap();
        assert!(row.score.sla < team1.score.sla, "team {team} lost SLA for its own faults");
    }
    // Team 1 gained attack points, team 2 lost defence points.
    assert!(team1.score.attack > 0.0);
    assert!(last.iter().find(|r| r.team == TeamId(2)).unwrap().score.defence < 0.0);

    // An audit: every stored score equals a recomputation from the stored events alone.
    let mut ticks = Vec::new();
    for t in 0..TICKS {
        let results = store.check_results(Tick(t), None).await?;
        let mut verdicts = Vec::new();
        for team in &scenario.teams {
            for service in &scenario.services {
                let actions = results
                    .iter()
                    .filter(|r| r.team == team.id && r.service == service.id)
                    .map(|r| (r.verdict, r.message.as_str()));
                verdicts.push(ServiceVerdict { team: team.id, service: service.id, verdict: tick_verdict(actions).0 });
            }
        }
        let captures = store.submissions_in_tick(Tick(t)).await?.into_iter().map(|s| s.submission.capture).collect();
        ticks.push(TickEvents { tick: Tick(t), verdicts, captures });
    }
    let teams: Vec<ScoredTeam> = scenario.teams.iter().map(ScoredTeam::from).collect();
    let services: Vec<ScoredService> = scenario.services.iter().map(ScoredService::from).collect();
    let recomputed = recompute(scenario.drill.scoring, &teams, &services, &ticks)?;
    let stored = store.list_scores().await?;
    assert_eq!(stored.len(), recomputed.len() * 4);
    for tick in &recomputed {
        for t in &tick.teams {
            let row = stored.iter().find(|r| r.tick == tick.tick && r.team == t.team).expect("a stored row");
            let got = (row.score.attack, row.score.defence, row.score.sla, row.score.total);
            let want = (t.score.attack, t.score.defence, t.score.sla, t.score.total);
            assert_eq!(got, want, "tick {} team {}: stored scores equal the recomputation", tick.tick.0, t.team.0);
        }
    }

    scoreboard_past_agrees(&store, &scenario, events, &recomputed, &table).await?;

    // The export: the same bytes every time, and its event log alone gives its standings.
    let export = gongfang::export::build(&store, &scenario).await?;
    let bytes = serde_json::to_vec(&export)?;
    assert_eq!(bytes, serde_json::to_vec(&gongfang::export::build(&store, &scenario).await?)?, "byte-stable");
    let read: gongfang_core::export::Export = serde_json::from_slice(&bytes)?;
    assert_eq!(read, export, "the JSON reads back whole");
    assert_eq!(read.ticks.len(), TICKS as usize);
    let standings = read.recompute()?;
    assert_eq!(standings, export.standings, "the standings recomputed from the exported events");
    let final_tick = recomputed.last().expect("twenty ticks");
    for s in &export.standings {
        assert_eq!(Some(s.total), final_tick.team(s.team).map(|t| t.score.total), "team {}'s final total", s.team.0);
    }
    let team3 = &read.ticks[10].verdicts.iter().find(|v| v.team == TeamId(3)).expect("team 3 defends").verdicts;
    assert_eq!(team3, "co", "tick 10: team 3's kv corrupt, its notes ok");

    after_action_reports_agree(&store, &scenario, &export, &table, dir.path()).await?;

    // The final scoreboard, rounded so the snapshot reads well.
    let board: Vec<String> = last
        .iter()
        .map(|r| {
            format!(
                "team {}: attack {:.4} defence {:.4} sla {:.4} total {:.4}",
                r.team.0, r.score.attack, r.score.defence, r.score.sla, r.score.total
            )
        })
        .collect();
    insta::assert_yaml_snapshot!("scoreboard_after_20_ticks", board);
    Ok(())
}

/// The real scoreboard over the game's store answers the game's past as the recomputation and
/// the verdict table have it: `/api/scoreboard?tick=N` for every N ranks each team at its
/// recomputed total after tick N, `/api/history` gives the same totals tick by tick, and
/// `/api/history/TEAM` every verdict of the table.
async fn scoreboard_past_agrees(
    store: &Store,
    scenario: &Arc<Scenario>,
    events: broadcast::Sender<GameEvent>,
    recomputed: &[TickScores],
    table: &BTreeMap<(u32, u16, ServiceId), Verdict>,
) -> anyhow::Result<()> {
    let over = DrillClock {
        phase: Phase::Over,
        tick: None,
        tick_started_at: None,
        tick_length: Duration::from_secs(60),
        drill_starts_at: Some(start()),
        drill_ends_at: Some(start() + chrono::Duration::minutes(20)),
    };
    let (_clock, clock) = watch::channel(over);
    let state = WebState::new(scenario.clone(), store.clone(), events, clock, Vec::new(), WebSettings::default());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gongfang_web::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let total = |teams: &Value, slug: &str| {
        teams.as_array().and_then(|t| t.iter().find(|t| t["slug"] == slug)).and_then(|t| t["total"].as_f64())
    };

    for scores in recomputed {
        let n = scores.tick.0;
        let board = get(addr, &format!("/api/scoreboard?tick={n}")).await?.json()?;
        ensure!(board["replay"] == n && board["tick"] == n && board["status_tick"] == n, "tick {n}: {board}");
        for t in &scores.teams {
            let shown = total(&board["teams"], &format!("team{}", t.team.0));
            ensure!(
                shown == Some(t.score.total),
                "tick {n}, team {}: board {shown:?}, recomputed {}",
                t.team.0,
                t.score.total
            );
        }
        let order: Vec<u64> =
            board["teams"].as_array().into_iter().flatten().filter_map(|t| t["id"].as_u64()).collect();
        let ranking: Vec<u64> = scores.ranking().into_iter().map(|t| u64::from(t.0)).collect();
        ensure!(order == ranking, "tick {n}: the board's order {order:?} is the core's ranking {ranking:?}");
    }

    let history = get(addr, "/api/history").await?.json()?;
    let ticks: Vec<u64> = (0..u64::from(TICKS)).collect();
    ensure!(history["ticks"] == serde_json::json!(ticks) && history["sampled"] == false, "{history}");
    for (i, scores) in recomputed.iter().enumerate() {
        for t in &scores.teams {
            let slug = format!("team{}", t.team.0);
            let series = history["teams"].as_array().and_then(|all| all.iter().find(|s| s["slug"] == slug));
            let shown = series.and_then(|s| s["totals"][i].as_f64()).unwrap_or(f64::NAN);
            ensure!(
                (shown - t.score.total).abs() <= 0.005,
                "tick {i}, {slug}: series {shown}, recomputed {}",
                t.score.total
            );
        }
    }

    for team in 1..=4u16 {
        let status = get(addr, &format!("/api/history/team{team}")).await?.json()?;
        ensure!(status["through"] == TICKS - 1, "team {team}: {status}");
        for (service, slug) in [(KV, "kv"), (NOTES, "notes")] {
            let letters = status["services"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["slug"] == slug))
                .and_then(|s| s["verdicts"].as_str())
                .unwrap_or_default();
            ensure!(letters.len() == TICKS as usize, "team {team} {slug}: {letters:?}");
            for (t, letter) in letters.chars().enumerate() {
                let want = table[&(t as u32, team, service)].to_string();
                let got = &status["legend"][letter.to_string()];
                ensure!(*got == want, "team {team} {slug} tick {t}: series says {got}, the engine said {want}");
            }
        }
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Every team's after-action report, in both languages, says what the store holds: its
/// verdicts tick by tick, the flags it lost and to whom; each is printed to PDF by headless
/// Chromium, its pages drawn with `pdftoppm` and its first page's text read with `pdftotext`.
async fn after_action_reports_agree(
    store: &Store,
    scenario: &Scenario,
    export: &gongfang_core::export::Export,
    table: &BTreeMap<(u32, u16, ServiceId), Verdict>,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    use gongfang_reports::after_action::{Lang, build};
    let mut lost_by_victim: BTreeMap<TeamId, u32> = BTreeMap::new();
    for t in 0..TICKS {
        for s in store.submissions_in_tick(Tick(t)).await? {
            *lost_by_victim.entry(s.submission.capture.victim).or_default() += 1;
        }
    }
    for team in 1..=4u16 {
        let report = build(store, scenario, export, &format!("team{team}")).await?;
        ensure!(report.ticks == TICKS, "team {team}: {} ticks", report.ticks);
        for s in &report.services {
            let verdicts: Vec<Verdict> = (0..TICKS).map(|t| table[&(t, team, s.service)]).collect();
            let faulty = verdicts.iter().filter(|v| v.is_teams_fault()).count() as u32;
            let ok = verdicts.iter().filter(|v| **v == Verdict::Ok).count() as u32;
            let letters: String = verdicts.iter().map(|v| v.letter()).collect();
            ensure!(
                (s.ok, s.faulty, s.letters.as_str()) == (ok, faulty, letters.as_str()),
                "team {team} service {}: report {:?}, engine {ok} ok {faulty} faulty {letters}",
                s.service.0,
                (s.ok, s.faulty, &s.letters)
            );
        }
        let lost = lost_by_victim.get(&TeamId(team)).copied().unwrap_or(0);
        ensure!(report.flags_lost() == lost, "team {team} lost {lost} flags, the report says {}", report.flags_lost());
        for lang in [Lang::En, Lang::ZhHk] {
            let html = report.html(lang);
            let heading = if lang == Lang::En { "After-action report" } else { "事後檢討報告" };
            ensure!(html.contains(heading) && !report.recommendations.is_empty(), "team {team} {lang:?}");
        }
    }
    // Team 2 lost its kv flags to team 1 and was down three ticks: both are recommended on.
    let report = build(store, scenario, export, "team2").await?;
    let advice: Vec<&str> = report.recommendations.iter().map(|r| r.en.as_str()).collect();
    ensure!(advice.iter().any(|r| r.contains("in 3 of 20 ticks")), "availability, with its figures: {advice:#?}");
    ensure!(
        advice.iter().any(|r| r.contains("took 4 flags from it")),
        "the lost flag store, with its figures: {advice:#?}"
    );
    // Other teams are named in the field only when the scenario allows it.
    let html = report.html(Lang::En);
    ensure!(report.field.named.is_empty() && !html.contains("team3"), "anonymised by default");
    let named = gongfang_reports::after_action::assemble(export, TeamId(2), &[], &[], &[], true);
    let teams: Vec<u16> = named.field.named.iter().map(|r| r.team.0).collect();
    ensure!(teams == [1, 2, 3, 4], "every defending team by name when allowed: {teams:?}");
    let lost: Vec<u32> = named.field.named.iter().map(|r| r.lost).collect();
    ensure!(lost == [0, 4, 0, 0], "each team's flags lost: {lost:?}");
    ensure!(named.html(Lang::En).contains("team3"), "named in the page");

    let Some(_) = gongfang_test_support::browser::chromium_or_skip()? else { return Ok(()) };
    for team in 1..=4u16 {
        let report = build(store, scenario, export, &format!("team{team}")).await?;
        for (lang, words) in [(Lang::En, "After-action report"), (Lang::ZhHk, "事後檢討報告")] {
            let name = format!("team{team}-{lang:?}");
            let pdf = dir.join(format!("after-action-{name}.pdf"));
            gongfang::after_action::write(&report, lang, &pdf)?;
            let prefix = dir.join(format!("page-{name}"));
            let drawn =
                std::process::Command::new("pdftoppm").args(["-r", "40", "-png"]).arg(&pdf).arg(&prefix).output()?;
            ensure!(drawn.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&drawn.stderr));
            let pictures: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("page-{name}-"))))
                .collect();
            ensure!(!pictures.is_empty(), "{name}: no page drawn");
            let text =
                std::process::Command::new("pdftotext").args(["-f", "1", "-l", "1"]).arg(&pdf).arg("-").output()?;
            let text = String::from_utf8_lossy(&text.stdout);
            ensure!(
                text.contains(words) && text.contains(&format!("Team team{team}")),
                "{name}: the first page says {text:?}"
            );
            if team == 2 {
                let kv = if lang == Lang::En { "took 4 flags" } else { "4 面旗幟" };
                ensure!(text.contains(kv), "{name}: the first page cites the figures: {text:?}");
                let first = pictures
                    .iter()
                    .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("page-{name}-1"))))
                    .context("the first page's picture")?;
                let kept =
                    gongfang_test_support::browser::target_dir().join(format!("after-action-{lang:?}-page-1.png"));
                std::fs::copy(first, &kept)?;
                eprintln!("after-action report: {} pages; first page: {}", pictures.len(), kept.display());
            }
        }
    }
    Ok(())
}

/// The SLA `team` earns when every tick of every service is `ok`.
fn perfect_sla(s: &Scenario, team: TeamId) -> anyhow::Result<f64> {
    let teams: Vec<ScoredTeam> = s.teams.iter().map(ScoredTeam::from).collect();
    let services: Vec<ScoredService> = s.services.iter().map(ScoredService::from).collect();
    let mut scorer = Scorer::new(s.drill.scoring, &teams, &services)?;
    let mut sla = 0.0;
    for t in 0..TICKS {
        let verdicts = s
            .teams
            .iter()
            .flat_map(|tm| {
                s.services.iter().map(move |sv| ServiceVerdict { team: tm.id, service: sv.id, verdict: Verdict::Ok })
            })
            .collect();
        let scores = scorer.close_tick(&TickEvents { tick: Tick(t), verdicts, captures: vec![] })?;
        sla = scores.team(team).unwrap().score.sla;
    }
    Ok(sla)
}

/// The key and flag of the flag planted at `tick` (the checker uses the flag id as the key).
async fn planted(store: &Store, tick: Tick, team: TeamId, service: ServiceId) -> anyhow::Result<(String, String)> {
    let flag = store.planted_flag(tick, team, service, StoreIdx(0)).await?.ok_or_else(|| {
        anyhow::anyhow!("no flag planted at tick {} for team {} service {}", tick.0, team.0, service.0)
    })?;
    Ok((flag.flag_id.unwrap_or_default(), flag.flag))
}

async fn planted_key(store: &Store, tick: Tick, team: TeamId, service: ServiceId) -> anyhow::Result<String> {
    Ok(planted(store, tick, team, service).await?.0)
}
