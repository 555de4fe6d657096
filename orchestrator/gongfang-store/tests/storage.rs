//! Storage behaviour on real databases: every test runs once on SQLite and once on PostgreSQL.

mod common;

use anyhow::{Context, ensure};
use chrono::{DateTime, Duration, TimeZone, Utc};
use gongfang_core::AccountRole;
use gongfang_core::Action;
use gongfang_core::CheckResult;
use gongfang_core::NewSubmission;
use gongfang_core::PlantedFlag;
use gongfang_core::ScoreRow;
use gongfang_core::scenario::Role;
use gongfang_core::scoring::Capture;
use gongfang_core::scoring::TeamScore;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_store::{AnnouncementText, DrillState, Store, StoreError, SubmissionOutcome, TOKEN_LEN};

use common::{TestDb, scenario};

gongfang_test_support::backend_tests!(
    migrations_twice_are_a_noop,
    scenario_sync_is_idempotent,
    scenario_sync_updates_names_and_roles,
    add_team_rejects_taken_id_and_slug,
    tokens_are_shown_once_and_stored_hashed,
    a_disabled_team_is_refused_until_brought_back,
    submissions_dedupe,
    submissions_concurrent_same_flag,
    scores_upsert_and_list,
    audit_append_and_list,
    ticks_lifecycle,
    flags_and_flag_ids,
    check_results_round_trip,
    tick_results_batch_and_replay,
    announcements_and_drill_state,
    drill_id_is_made_once_per_database,
    accounts_verify,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap()
}

async fn synced(db: &TestDb) -> anyhow::Result<()> {
    db.store.sync_scenario(&scenario()).await?;
    Ok(())
}

async fn migrations_twice_are_a_noop(db: TestDb) -> anyhow::Result<()> {
    let before = db.store.applied_migrations().await?;
    ensure!(!before.is_empty(), "no migration recorded");
    synced(&db).await?;
    db.store.migrate().await?;
    // A second process migrating the same database changes nothing either.
    let other = Store::connect_and_migrate(&db.url).await?;
    ensure!(other.applied_migrations().await? == before, "migrations changed on re-run");
    ensure!(other.list_teams().await?.len() == 5, "re-running migrations lost rows");
    other.close().await?;
    Ok(())
}

async fn scenario_sync_is_idempotent(db: TestDb) -> anyhow::Result<()> {
    let s = scenario();
    let first = db.store.sync_scenario(&s).await?;
    ensure!(first.teams_added == 5 && first.services_added == 2, "first sync: {first:?}");
    let second = db.store.sync_scenario(&s).await?;
    ensure!(second == Default::default(), "second sync changed something: {second:?}");
    let teams = db.store.list_teams().await?;
    let stored: Vec<_> = teams.iter().map(|t| t.team.clone()).collect();
    ensure!(stored == s.teams, "stored teams differ from the scenario: {stored:?}");
    ensure!(teams.iter().all(|t| !t.has_token), "a synced team has a token");
    Ok(())
}

async fn scenario_sync_updates_names_and_roles(db: TestDb) -> anyhow::Result<()> {
    let mut s = scenario();
    db.store.sync_scenario(&s).await?;
    let issued = db.store.issue_token("blue-one").await?;
    s.teams[2].name.zh = "藍隊一".to_owned();
    s.teams[2].role = Role::Both;
    s.teams.push(common::team(6, "late", Role::Defender));
    s.services[0].name.en = "Notes v2".to_owned();
    let report = db.store.sync_scenario(&s).await?;
    ensure!(
        (report.teams_added, report.teams_updated, report.services_added, report.services_updated) == (1, 1, 0, 1),
        "report {report:?}"
    );
    let blue = db.store.team_by_slug("blue-one").await?.context("blue-one missing")?;
    ensure!(blue.team.role == Role::Both && blue.team.name.zh == "藍隊一", "not updated: {blue:?}");
    ensure!(blue.has_token, "sync dropped the team's token");
    ensure!(db.store.verify_token(issued.token.expose()).await? == Some(TeamId(3)), "token no longer verifies");
    Ok(())
}

async fn add_team_rejects_taken_id_and_slug(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let mut dup_id = common::team(3, "fresh", Role::Defender);
    let err = db.store.add_team(&dup_id).await.unwrap_err();
    ensure!(matches!(err, StoreError::TeamExists { field: "id", .. }), "got {err}");
    dup_id.id = TeamId(42);
    dup_id.slug = "purple".to_owned();
    let err = db.store.add_team(&dup_id).await.unwrap_err();
    ensure!(matches!(err, StoreError::TeamExists { field: "slug", .. }), "got {err}");
    dup_id.slug = "fresh".to_owned();
    db.store.add_team(&dup_id).await?;
    ensure!(db.store.team_by_slug("fresh").await?.map(|t| t.team.id) == Some(TeamId(42)), "fresh team not stored");
    Ok(())
}

async fn a_disabled_team_is_refused_until_brought_back(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let red = db.store.issue_token("red-one").await?;
    let at = Utc.with_ymd_and_hms(2026, 12, 11, 9, 0, 0).unwrap();
    let session = db.store.create_team_session(TeamId(1), std::time::Duration::from_secs(3600), at).await?;
    let err = db.store.set_team_disabled("nobody", true, at).await.unwrap_err();
    ensure!(matches!(err, StoreError::UnknownTeam(_)), "got {err}");

    let (out, changed) = db.store.set_team_disabled("red-one", true, at).await?;
    ensure!(changed && out.disabled_at == Some(at), "stored with its time: {out:?}");
    ensure!(db.store.disabled_teams().await? == [TeamId(1)], "listed as disabled");
    ensure!(db.store.verify_token(red.token.expose()).await?.is_none(), "a disabled team's token works");
    let owner = db.store.token_owner(red.token.expose()).await?;
    ensure!(owner.is_some_and(|o| o.team == TeamId(1) && o.disabled), "the owner is told disabled: {owner:?}");
    ensure!(db.store.session(session.expose(), at).await?.is_none(), "its open session survived");
    // A login that checked the token just before the team was disabled opens a session that
    // opens nothing while the team is out.
    let raced = db.store.create_team_session(TeamId(1), std::time::Duration::from_secs(3600), at).await?;
    ensure!(db.store.session(raced.expose(), at).await?.is_none(), "a session opened meanwhile works");
    let (again, changed) = db.store.set_team_disabled("red-one", true, at + Duration::minutes(5)).await?;
    ensure!(!changed && again.disabled_at == Some(at), "disabling twice keeps the first time: {again:?}");

    let (back, changed) = db.store.set_team_disabled("red-one", false, at + Duration::minutes(9)).await?;
    ensure!(changed && back.disabled_at.is_none(), "brought back: {back:?}");
    ensure!(db.store.disabled_teams().await?.is_empty(), "none disabled");
    ensure!(db.store.verify_token(red.token.expose()).await? == Some(TeamId(1)), "the same token works again");
    let holder = db.store.session(raced.expose(), at).await?;
    ensure!(
        matches!(holder, Some(gongfang_store::SessionHolder::Team(TeamId(1)))),
        "and so does that session: {holder:?}"
    );
    Ok(())
}

async fn tokens_are_shown_once_and_stored_hashed(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let err = db.store.issue_token("nobody").await.unwrap_err();
    ensure!(matches!(err, StoreError::UnknownTeam(_)), "got {err}");

    let red = db.store.issue_token("red-one").await?;
    let blue = db.store.issue_token("blue-one").await?;
    ensure!(red.team == TeamId(1) && blue.team == TeamId(3), "wrong teams");
    ensure!(red.token.expose().len() == TOKEN_LEN, "token length");
    ensure!(red.token != blue.token, "two teams got the same token");
    ensure!(!format!("{red:?}").contains(red.token.expose()), "Debug shows the token");

    let hash = db.store.token_hash("red-one").await?.context("no hash stored")?;
    // A keyed hash (HMAC-SHA256 under the server key): 64 hex digits after the scheme.
    let digest = hash.strip_prefix("hmac-sha256$").with_context(|| format!("unexpected hash format {hash}"))?;
    ensure!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()), "unexpected digest {hash}");
    ensure!(!hash.contains(red.token.expose()), "token stored in clear");

    ensure!(db.store.verify_token(red.token.expose()).await? == Some(TeamId(1)), "right token rejected");
    ensure!(db.store.verify_token(blue.token.expose()).await? == Some(TeamId(3)), "right token rejected");
    // Same lookup prefix, wrong rest: found by the prefix, refused by the keyed hash.
    let mut forged = red.token.expose().to_owned();
    let last = if forged.ends_with('A') { "B" } else { "A" };
    forged.replace_range(TOKEN_LEN - 1.., last);
    ensure!(db.store.verify_token(&forged).await?.is_none(), "forged token accepted");
    ensure!(db.store.verify_token("not a token").await?.is_none(), "garbage accepted");
    ensure!(db.store.verify_token("").await?.is_none(), "empty token accepted");

    // Reissuing replaces the old token.
    let again = db.store.issue_token("red-one").await?;
    ensure!(db.store.verify_token(red.token.expose()).await?.is_none(), "old token still valid");
    ensure!(db.store.verify_token(again.token.expose()).await? == Some(TeamId(1)), "new token rejected");
    let teams = db.store.list_teams().await?;
    let with_token: Vec<_> = teams.iter().filter(|t| t.has_token).map(|t| t.team.slug.as_str()).collect();
    ensure!(with_token == ["red-one", "blue-one"], "has_token wrong: {with_token:?}");
    Ok(())
}

fn sub(attacker: u16, flag: &str, victim: u16) -> NewSubmission {
    NewSubmission {
        capture: Capture {
            attacker: TeamId(attacker),
            victim: TeamId(victim),
            service: ServiceId(1),
            store: StoreIdx(0),
            planted: Tick(2),
            submitted: Tick(3),
        },
        flag: flag.to_owned(),
        submitted_at: t0(),
    }
}

async fn submissions_dedupe(db: TestDb) -> anyhow::Result<()> {
    use SubmissionOutcome::{Duplicate as D, New as N};
    synced(&db).await?;
    ensure!(db.store.insert_submissions(&[]).await?.is_empty(), "empty batch");
    let first = db
        .store
        .insert_submissions(&[
            sub(1, "GF{a}", 3),
            sub(2, "GF{a}", 3), // another attacker may submit the same flag
            sub(1, "GF{a}", 3), // duplicate inside the batch
            sub(1, "GF{b}", 4),
            sub(1, "GF{b}", 4),
        ])
        .await?;
    ensure!(first == [N, N, D, N, D], "first batch: {first:?}");
    let second = db.store.insert_submissions(&[sub(1, "GF{b}", 4), sub(5, "GF{b}", 4), sub(2, "GF{a}", 3)]).await?;
    ensure!(second == [D, N, D], "second batch: {second:?}");
    ensure!(db.store.count_submissions().await? == 4, "row count");

    // A batch larger than one statement's chunk, with duplicates across chunks.
    let big: Vec<_> = (0..1300).map(|i| sub(5, &format!("GF{{big{}}}", i % 1000), 3)).collect();
    let outcomes = db.store.insert_submissions(&big).await?;
    let new = outcomes.iter().filter(|o| **o == N).count();
    ensure!(new == 1000, "big batch: {new} new");
    ensure!(outcomes[..1000].iter().all(|o| *o == N) && outcomes[1000..].iter().all(|o| *o == D), "order");

    let stored = db.store.submissions_in_tick(Tick(3)).await?;
    ensure!(stored.len() == 1004, "stored {}", stored.len());
    ensure!(stored[0].submission == sub(1, "GF{a}", 3), "round trip: {:?}", stored[0]);

    // A batch that breaks a constraint stores nothing at all.
    let bad = db.store.insert_submissions(&[sub(1, "GF{c}", 3), sub(99, "GF{c}", 3)]).await;
    ensure!(bad.is_err(), "unknown attacker accepted");
    ensure!(db.store.count_submissions().await? == 1004, "failed batch left rows behind");
    Ok(())
}

async fn submissions_concurrent_same_flag(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            // Every task races on the contested flag, each with one flag of its own.
            store.insert_submissions(&[sub(1, &format!("GF{{own{i}}}"), 3), sub(1, "GF{contested}", 3)]).await
        }));
    }
    let mut new_contested = 0;
    for task in tasks {
        let outcomes = task.await??;
        ensure!(outcomes[0] == SubmissionOutcome::New, "own flag not new");
        if outcomes[1] == SubmissionOutcome::New {
            new_contested += 1;
        }
    }
    ensure!(new_contested == 1, "contested flag new {new_contested} times");
    ensure!(db.store.count_submissions().await? == 33, "row count");
    Ok(())
}

fn score(tick: u32, team: u16, attack: f64, defence: f64, sla: f64) -> ScoreRow {
    ScoreRow {
        tick: Tick(tick),
        team: TeamId(team),
        score: TeamScore { attack, defence, sla, total: attack + defence + sla },
    }
}

async fn scores_upsert_and_list(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    db.store.upsert_scores(&[score(1, 3, 0.0, -1.5, 10.0), score(1, 1, 12.25, 0.0, 0.0)]).await?;
    db.store.upsert_scores(&[score(2, 1, 3.0, 0.0, 0.0)]).await?;
    // Recomputing tick 1 replaces its rows.
    db.store.upsert_scores(&[score(1, 3, 0.0, -2.0, 9.5)]).await?;
    let tick1 = db.store.scores_for_tick(Tick(1)).await?;
    ensure!(tick1 == [score(1, 1, 12.25, 0.0, 0.0), score(1, 3, 0.0, -2.0, 9.5)], "tick 1: {tick1:?}");
    let all = db.store.list_scores().await?;
    ensure!(all.len() == 3 && all[2] == score(2, 1, 3.0, 0.0, 0.0), "all: {all:?}");
    ensure!(db.store.scores_for_tick(Tick(9)).await?.is_empty(), "tick 9 has scores");
    Ok(())
}

async fn audit_append_and_list(db: TestDb) -> anyhow::Result<()> {
    let a = db.store.append_audit(t0(), "alice", "team.token", &serde_json::json!({"team": "red-one"})).await?;
    let b = db
        .store
        .append_audit(t0() + Duration::seconds(5), "bob", "drill.pause", &serde_json::json!({"reason": "網絡"}))
        .await?;
    ensure!(b.id > a.id, "ids not increasing");
    let all = db.store.list_audit(None, 100).await?;
    ensure!(all == [a.clone(), b.clone()], "list: {all:?}");
    ensure!(all[1].detail["reason"] == "網絡" && all[1].at == t0() + Duration::seconds(5), "round trip");
    ensure!(db.store.list_audit(Some(a.id), 100).await? == [b], "after");
    ensure!(db.store.list_audit(None, 1).await? == [a], "limit");
    Ok(())
}

async fn ticks_lifecycle(db: TestDb) -> anyhow::Result<()> {
    ensure!(db.store.latest_tick().await?.is_none(), "fresh database has a tick");
    ensure!(db.store.open_tick(Tick(0), t0()).await?, "open 0");
    ensure!(!db.store.open_tick(Tick(0), t0() + Duration::seconds(1)).await?, "reopened 0");
    ensure!(!db.store.close_tick(Tick(7), t0()).await?, "closed a tick never opened");
    ensure!(!db.store.mark_tick_scored(Tick(7), t0()).await?, "scored a tick never opened");
    let open = db.store.tick(Tick(0)).await?.context("tick 0 missing")?;
    ensure!(open.opened_at == t0() && !open.is_closed() && !open.is_scored(), "open: {open:?}");
    let closed_at = t0() + Duration::seconds(60);
    ensure!(db.store.close_tick(Tick(0), closed_at).await?, "close 0");
    ensure!(!db.store.close_tick(Tick(0), closed_at + Duration::seconds(1)).await?, "closed twice");
    ensure!(db.store.open_tick(Tick(1), closed_at).await?, "open 1");
    ensure!(db.store.mark_tick_scored(Tick(0), closed_at + Duration::seconds(2)).await?, "score 0");
    ensure!(!db.store.mark_tick_scored(Tick(0), closed_at + Duration::seconds(3)).await?, "scored twice");
    let t = db.store.tick(Tick(0)).await?.context("tick 0 missing")?;
    ensure!(t.closed_at == Some(closed_at) && t.scored_at == Some(closed_at + Duration::seconds(2)), "{t:?}");
    ensure!(db.store.latest_tick().await?.map(|t| t.tick) == Some(Tick(1)), "latest");
    ensure!(db.store.list_ticks().await?.len() == 2, "list");
    Ok(())
}

async fn flags_and_flag_ids(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let mut planted = Vec::new();
    for tick in 0..4u32 {
        for team in [3u16, 4] {
            let f = PlantedFlag {
                tick: Tick(tick),
                team: TeamId(team),
                service: ServiceId(1),
                store: StoreIdx(0),
                flag: format!("GF{{{tick}-{team}}}"),
                flag_id: (team == 3).then(|| format!("user{tick}")),
                state: Some(vec![0, 255, tick as u8]),
                planted_at: t0() + Duration::seconds(i64::from(tick) * 60),
            };
            db.store.record_flag(&f).await?;
            planted.push(f);
        }
    }
    let got = db.store.planted_flag(Tick(2), TeamId(3), ServiceId(1), StoreIdx(0)).await?;
    ensure!(got.as_ref() == Some(&planted[4]), "planted flag: {got:?}");
    ensure!(db.store.planted_flag(Tick(2), TeamId(3), ServiceId(2), StoreIdx(0)).await?.is_none(), "wrong service");

    let ids = db.store.flag_ids(Tick(1), Tick(2)).await?;
    let got: Vec<_> = ids.iter().map(|h| (h.tick.0, h.team.0, h.flag_id.as_str())).collect();
    ensure!(got == [(1, 3, "user1"), (2, 3, "user2")], "flag ids: {got:?}");

    // A retried put replaces the hint and state instead of failing.
    let mut retried = planted[4].clone();
    retried.flag_id = Some("user2-retry".to_owned());
    retried.state = None;
    db.store.record_flag(&retried).await?;
    let got = db.store.planted_flag(Tick(2), TeamId(3), ServiceId(1), StoreIdx(0)).await?;
    ensure!(got == Some(retried), "retried put: {got:?}");
    Ok(())
}

async fn check_results_round_trip(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let mut results = Vec::new();
    for (i, (action, verdict)) in
        [(Action::Put, Verdict::Ok), (Action::Get, Verdict::Corrupt), (Action::Check, Verdict::CheckerError)]
            .into_iter()
            .enumerate()
    {
        let r = CheckResult {
            tick: Tick(4),
            team: TeamId(if i == 2 { 4 } else { 3 }),
            service: ServiceId(2),
            action,
            store: (action != Action::Check).then_some(StoreIdx(1)),
            verdict,
            message: format!("message {i}"),
            log: format!("private log {i}\nline two"),
            duration_ms: 1234 + i as u64,
            recorded_at: t0(),
            fault: None,
        };
        db.store.record_check(&r).await?;
        results.push(r);
    }
    ensure!(db.store.check_results(Tick(4), None).await? == results, "all results");
    ensure!(db.store.check_results(Tick(4), Some(TeamId(4))).await? == results[2..], "team 4");
    ensure!(db.store.check_results(Tick(5), None).await?.is_empty(), "tick 5");
    Ok(())
}

async fn tick_results_batch_and_replay(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    db.store.open_tick(Tick(2), t0()).await?;
    let flags: Vec<PlantedFlag> = (0..1500u32)
        .map(|i| PlantedFlag {
            tick: Tick(2),
            team: TeamId(3),
            service: ServiceId(1),
            store: StoreIdx(0),
            flag: format!("GONGFANG{{batch{i:05}}}"),
            flag_id: (i % 2 == 0).then(|| format!("user-{i}")),
            state: Some(vec![i as u8, 7]),
            planted_at: t0(),
        })
        .collect();
    // More rows than one statement takes, so the chunking is exercised.
    let results: Vec<CheckResult> = (0..2500u64)
        .map(|i| CheckResult {
            tick: Tick(2),
            team: TeamId(4),
            service: ServiceId(2),
            action: Action::Get,
            store: Some(StoreIdx(1)),
            verdict: if i == 7 { Verdict::Mumble } else { Verdict::Ok },
            message: format!("m{i}"),
            log: String::new(),
            duration_ms: i,
            recorded_at: t0(),
            fault: None,
        })
        .collect();
    db.store.record_tick_results(&flags, &results).await?;
    // Planting the same flags again (a replayed tick) keeps one row per flag.
    db.store.record_tick_results(&flags[..10], &[]).await?;
    let planted = db.store.planted_flags(Tick(1), Tick(2)).await?;
    ensure!(planted == flags, "planted flags read back in order, once each");
    ensure!(db.store.planted_flags(Tick(3), Tick(9)).await?.is_empty(), "no flags in later ticks");
    ensure!(db.store.check_results(Tick(2), None).await? == results, "results read back in order");

    // A tick that never closed can be replayed: its results are dropped first.
    ensure!(db.store.discard_open_tick_results(Tick(2)).await? == 2500, "all of the tick's results dropped");
    ensure!(db.store.check_results(Tick(2), None).await?.is_empty(), "none left");
    db.store.record_tick_results(&[], &results[..3]).await?;
    db.store.close_tick(Tick(2), t0()).await?;
    let err = db.store.discard_open_tick_results(Tick(2)).await.unwrap_err();
    ensure!(matches!(err, StoreError::TickClosed(2)), "a closed tick's results are final, got {err}");
    ensure!(db.store.check_results(Tick(2), None).await?.len() == 3, "closed tick kept its results");
    Ok(())
}

async fn announcements_and_drill_state(db: TestDb) -> anyhow::Result<()> {
    let welcome = AnnouncementText {
        title: "Welcome".into(),
        body: "The drill starts at 09:00.".into(),
        title_zh: Some("歡迎".into()),
        body_zh: Some("演習於上午九時開始。".into()),
    };
    let a = db.store.post_announcement(t0(), "account alice", &welcome).await?;
    let lunch = AnnouncementText { title: "Pause".into(), body: "Lunch".into(), ..Default::default() };
    let b = db.store.post_announcement(t0() + Duration::seconds(9), "account bob", &lunch).await?;
    ensure!(a.text == welcome && b.text.title_zh.is_none(), "the texts as posted, Chinese optional: {a:?} {b:?}");
    ensure!(db.store.list_announcements(10).await? == [b.clone(), a], "announcements newest first");
    ensure!(db.store.list_announcements(1).await? == [b], "only the latest `limit`");

    ensure!(db.store.drill_state().await? == DrillState::default(), "fresh drill state");
    let s = DrillState { paused: true, current_tick: Some(Tick(17)), started_at: Some(t0()) };
    db.store.set_drill_state(s, t0()).await?;
    db.store.set_drill_state(s, t0()).await?;
    ensure!(db.store.drill_state().await? == s, "drill state");
    Ok(())
}

/// Flag keys derive from the drill id: it must outlive restarts and state changes of one
/// database and differ between two (a rehearsal and the real drill).
async fn drill_id_is_made_once_per_database(db: TestDb) -> anyhow::Result<()> {
    let id = db.store.drill_id().await?;
    synced(&db).await?;
    db.store
        .set_drill_state(DrillState { paused: true, current_tick: Some(Tick(3)), started_at: Some(t0()) }, t0())
        .await?;
    db.store.migrate().await?;
    let other = Store::connect_and_migrate(&db.url).await?;
    ensure!(other.drill_id().await? == id, "the drill id changed on reconnecting and migrating again");
    other.close().await?;
    ensure!(db.store.drill_id().await? == id, "the drill id changed");

    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("rehearsal.db").display());
    let rehearsal = Store::connect_and_migrate(&url).await?;
    ensure!(rehearsal.drill_id().await? != id, "two databases share a drill id");
    rehearsal.close().await?;
    Ok(())
}

async fn accounts_verify(db: TestDb) -> anyhow::Result<()> {
    let judge = db.store.create_account("judy", AccountRole::Judge, "correct horse").await?;
    ensure!(judge.role == AccountRole::Judge, "role");
    let err = db.store.create_account("judy", AccountRole::Organiser, "x").await.unwrap_err();
    ensure!(matches!(err, StoreError::AccountExists(_)), "got {err}");
    ensure!(db.store.verify_account("judy", "correct horse").await? == Some(judge), "right password");
    ensure!(db.store.verify_account("judy", "wrong").await?.is_none(), "wrong password");
    ensure!(db.store.verify_account("nobody", "correct horse").await?.is_none(), "unknown name");
    Ok(())
}

/// SQLite runs in WAL mode, so readers (the scoreboard) never block the flag writer.
#[tokio::test]
async fn sqlite_uses_wal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("drill.db");
    let store = Store::connect_and_migrate(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    store.sync_scenario(&scenario()).await?;
    let wal = dir.path().join("drill.db-wal");
    ensure!(wal.exists(), "no write-ahead log next to the database");
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_leaking_passwords() {
    let err = Store::connect("mysql://root:hunter2@db/gf").await.unwrap_err();
    ensure_msg(&err.to_string(), "unsupported database URL");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = Store::connect("postgres://gf:hunter2@127.0.0.1:1/gf").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

fn ensure_msg(msg: &str, want: &str) {
    assert!(msg.contains(want), "`{msg}` does not say `{want}`");
}
