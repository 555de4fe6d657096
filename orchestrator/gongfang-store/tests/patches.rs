//! Submitted patches on real databases (SQLite and PostgreSQL): numbered per team and service
//! and audited with their hash, queued with a visible position and a cap per team, taken one
//! per team, put back in the queue after a restart; build folders stored once per content;
//! versions deployed and rolled back; and the defended cells counted by the database exactly as
//! the domain's rule says.

mod common;

use anyhow::ensure;
use chrono::{TimeZone, Utc};
use gongfang_core::patch::{DeployCause, Deployment, NewPatch, PatchKind, PatchStatus, defended_cells};
use gongfang_core::scenario::PatchRules;
use gongfang_core::{Action, CheckResult, ExploitReplay, Exposure, ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_store::{PatchOutcome, PatchRefused};

use common::TestDb;

gongfang_test_support::backend_tests!(
    patches_are_numbered_queued_and_audited,
    patches_sent_at_once_get_versions_of_their_own,
    sources_and_deployments_give_each_version,
    defended_cells_follow_the_domain_rule,
);

/// The default rules with `queued` patches waiting at most per team, and 6 in all.
fn rules(queued: u32) -> PatchRules {
    PatchRules { max_queued: queued, max_per_team: 6, ..PatchRules::default() }
}

fn diff(team: u16, service: u8, body: &str) -> NewPatch {
    NewPatch {
        team: TeamId(team),
        service: ServiceId(service),
        kind: PatchKind::Diff,
        body: body.as_bytes().to_vec(),
        target: None,
    }
}

async fn patches_are_numbered_queued_and_audited(db: TestDb) -> anyhow::Result<()> {
    let store = &db.store;
    store.sync_scenario(&common::scenario()).await?;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let first = store.submit_patch(&diff(3, 1, "one"), &rules(2), at).await?.expect("queued");
    let second = store.submit_patch(&diff(3, 1, "two"), &rules(2), at).await?.expect("queued");
    let other_service = store.submit_patch(&diff(4, 2, "x"), &rules(2), at).await?.expect("queued");
    ensure!((first.version, second.version, other_service.version) == (1, 2, 1), "versions per team and service");
    ensure!(first.status == PatchStatus::Queued && first.size == 3);
    ensure!(first.sha256 == "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed", "{}", first.sha256);
    ensure!(store.patch_body(first.id).await? == Some(b"one".to_vec()));
    // Two waiting is this team's cap; other teams are not held by it.
    ensure!(store.submit_patch(&diff(3, 2, "three"), &rules(2), at).await? == Err(PatchRefused::QueueFull(2)));
    let positions = (
        store.queue_position(first.id).await?,
        store.queue_position(second.id).await?,
        store.queue_position(other_service.id).await?,
    );
    ensure!(positions == (1, 2, 3), "{positions:?}");
    // One at a time per team: with team 3 busy, team 4's is next.
    let heads = |h: Vec<gongfang_core::PatchRecord>| h.iter().map(|p| p.id).collect::<Vec<_>>();
    ensure!(heads(store.queue_heads(&[]).await?) == [first.id, other_service.id], "each team's oldest");
    ensure!(heads(store.queue_heads(&[TeamId(3)]).await?) == [other_service.id]);
    ensure!(store.queue_heads(&[TeamId(3), TeamId(4)]).await?.is_empty());

    let building =
        PatchOutcome { status: PatchStatus::Building, message: "building".into(), checks: vec![], exploit: None };
    store.set_patch_outcome(first.id, &building, at).await?;
    ensure!(store.queue_position(second.id).await? == 1, "the queue moved up");
    ensure!(store.patch(first.id).await?.unwrap().decided_at.is_none(), "building is not decided");
    // A restart puts the half-built patch back.
    ensure!(store.requeue_unfinished_patches().await? == 1);
    ensure!(store.patch(first.id).await?.unwrap().status == PatchStatus::Queued);
    let refused = PatchOutcome {
        status: PatchStatus::Refused,
        message: "refused: round 1 check mumble".into(),
        checks: vec!["round 1 check: no dataset list".into()],
        exploit: Some(Exposure::NotExploitable),
    };
    store.set_patch_outcome(first.id, &refused, at).await?;
    let read = store.patch(first.id).await?.unwrap();
    ensure!(read.status == PatchStatus::Refused && read.decided_at == Some(at) && read.checks == refused.checks);
    ensure!(read.exploit == Some(Exposure::NotExploitable));
    ensure!(
        store.patches_of(TeamId(3), None, 10).await?.iter().map(|p| p.id).collect::<Vec<_>>() == [second.id, first.id]
    );
    ensure!(store.patches_of(TeamId(3), Some(ServiceId(2)), 10).await?.is_empty());

    // Rolling back to a version never deployed is refused; to 0 (the organisers') always works.
    let back = |version| NewPatch {
        team: TeamId(4),
        service: ServiceId(2),
        kind: PatchKind::Rollback,
        body: vec![],
        target: Some(version),
    };
    ensure!(store.submit_patch(&back(1), &rules(9), at).await? == Err(PatchRefused::NoSuchVersion(1)));
    let to_zero = store.submit_patch(&back(0), &rules(9), at).await?.expect("queued");
    ensure!(to_zero.version == 0 && to_zero.kind == PatchKind::Rollback);
    ensure!(
        store.submit_patch(&diff(4, 2, "y"), &rules(9), at).await?.unwrap().version == 2,
        "a rollback takes no version"
    );
    // Team 4 has sent 3 (a refusal is not stored); three more make its 6 for the drill.
    for body in ["z1", "z2", "z3"] {
        ensure!(store.submit_patch(&diff(4, 2, body), &rules(9), at).await?.is_ok());
    }
    ensure!(store.submit_patch(&diff(4, 2, "z4"), &rules(9), at).await? == Err(PatchRefused::TeamLimit(6)));

    let audit = store.list_audit(None, 100).await?;
    let submits: Vec<_> = audit.iter().filter(|a| a.action == "patch.submit").collect();
    ensure!(submits.len() == 7 && submits[0].actor == "team blue-one", "{audit:?}");
    ensure!(submits[0].detail["sha256"] == first.sha256.as_str() && submits[0].detail["version"] == 1);
    ensure!(audit.iter().any(|a| a.action == "patch.rollback" && a.actor == "team blue-two"));
    Ok(())
}

/// Many patches of one team at once: each its own version, and the limits hold.
async fn patches_sent_at_once_get_versions_of_their_own(db: TestDb) -> anyhow::Result<()> {
    let store = &db.store;
    store.sync_scenario(&common::scenario()).await?;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let limits = PatchRules { max_queued: 100, max_per_team: 6, ..PatchRules::default() };
    let sends = (0..10).map(|n| {
        let (store, limits) = (store.clone(), limits);
        tokio::spawn(async move { store.submit_patch(&diff(3, 1, &format!("patch {n}")), &limits, at).await })
    });
    let mut versions = Vec::new();
    let mut refused = 0;
    for send in sends {
        match send.await?? {
            Ok(patch) => versions.push(patch.version),
            Err(PatchRefused::TeamLimit(6)) => refused += 1,
            Err(other) => anyhow::bail!("{other:?}"),
        }
    }
    versions.sort_unstable();
    ensure!(versions == [1, 2, 3, 4, 5, 6] && refused == 4, "{versions:?}, {refused} refused");
    Ok(())
}

async fn sources_and_deployments_give_each_version(db: TestDb) -> anyhow::Result<()> {
    let store = &db.store;
    store.sync_scenario(&common::scenario()).await?;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let (team, service) = (TeamId(3), ServiceId(1));
    let base = store.put_source(service, b"base folder", true, at).await?;
    ensure!(store.put_source(service, b"base folder", true, at).await? == base, "one row per content");
    ensure!(store.version_source(team, service, 0).await? == Some(base.clone()));
    let patch = store.submit_patch(&diff(3, 1, "d"), &rules(4), at).await?.unwrap();
    ensure!(store.version_source(team, service, 1).await?.is_none(), "not built yet");
    let built = store.put_source(service, b"patched folder", false, at).await?;
    store.set_patch_source(patch.id, &built).await?;
    ensure!(store.version_source(team, service, 1).await? == Some(built.clone()));
    ensure!(store.source(service, &built).await? == Some(b"patched folder".to_vec()));
    ensure!(store.source(ServiceId(2), &built).await?.is_none(), "sources are per service");
    // The organisers changed the folder: the newest base is version 0.
    let later = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
    let new_base = store.put_source(service, b"base folder, fixed", true, later).await?;
    ensure!(store.version_source(team, service, 0).await? == Some(new_base));

    ensure!(store.current_deployments().await?.is_empty());
    let deploy = |version, cause, minute| Deployment {
        team,
        service,
        version,
        patch: Some(patch.id),
        cause,
        at: Utc.with_ymd_and_hms(2026, 11, 21, 9, minute, 0).unwrap(),
    };
    store.record_deployment(&deploy(1, DeployCause::Patch, 1), "gongfang patches").await?;
    store.record_deployment(&deploy(0, DeployCause::AutoRollback, 2), "gongfang patches").await?;
    let versions: Vec<u32> = store.deployments_of(team, service).await?.iter().map(|d| d.version).collect();
    ensure!(versions == [1, 0], "{versions:?}");
    let current = store.current_deployments().await?;
    ensure!(current.len() == 1 && current[0].version == 0 && current[0].cause == DeployCause::AutoRollback);
    let audit = store.list_audit(None, 100).await?;
    ensure!(audit.iter().filter(|a| a.action == "patch.deploy").count() == 2);
    // Rolling back to version 1 is allowed now that it ran.
    let back = NewPatch { team, service, kind: PatchKind::Rollback, body: vec![], target: Some(1) };
    ensure!(store.submit_patch(&back, &rules(4), at).await?.is_ok());
    Ok(())
}

async fn defended_cells_follow_the_domain_rule(db: TestDb) -> anyhow::Result<()> {
    let store = &db.store;
    store.sync_scenario(&common::scenario()).await?;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    for t in 1..=3 {
        store.open_tick(Tick(t), at).await?;
    }
    let result = |tick: u32, team: u16, verdict| CheckResult {
        tick: Tick(tick),
        team: TeamId(team),
        service: ServiceId(1),
        action: Action::Check,
        store: None,
        verdict,
        message: String::new(),
        log: String::new(),
        duration_ms: 1,
        recorded_at: at,
        fault: None,
    };
    let replay = |tick: u32, team: u16, s: u8, exposure| ExploitReplay {
        tick: Tick(tick),
        team: TeamId(team),
        service: ServiceId(1),
        store: StoreIdx(s),
        exposure,
        message: String::new(),
        recorded_at: at,
    };
    let results = vec![
        result(1, 3, Verdict::Ok),
        result(1, 4, Verdict::Ok),
        result(1, 5, Verdict::Ok),
        result(2, 3, Verdict::Ok),
        result(2, 3, Verdict::Mumble),
        result(2, 4, Verdict::Ok),
        result(3, 3, Verdict::Ok),
    ];
    let replays = vec![
        replay(1, 3, 0, Exposure::NotExploitable),
        replay(1, 3, 1, Exposure::NotExploitable),
        replay(1, 4, 0, Exposure::NotExploitable),
        replay(1, 4, 1, Exposure::Exploitable),
        replay(1, 5, 0, Exposure::Unknown),
        replay(2, 3, 0, Exposure::NotExploitable),
        replay(2, 4, 0, Exposure::NotExploitable),
        replay(3, 3, 0, Exposure::NotExploitable),
    ];
    store.record_tick_results(&[], &results).await?;
    store.record_exploit_replays(&replays).await?;
    let verdicts: Vec<_> = [
        (1, 3, Verdict::Ok),
        (1, 4, Verdict::Ok),
        (1, 5, Verdict::Ok),
        (2, 3, Verdict::Mumble),
        (2, 4, Verdict::Ok),
        (3, 3, Verdict::Ok),
    ]
    .into_iter()
    .map(|(t, team, v)| (Tick(t), TeamId(team), ServiceId(1), v))
    .collect();
    let expected = defended_cells(&replays, &verdicts);
    ensure!(expected.len() == 3, "{expected:?}");
    ensure!(store.defended_cells(Tick(0), Tick(3)).await? == expected, "the database and the domain agree");
    ensure!(store.defended_cells(Tick(0), Tick(1)).await? == expected[..1], "only the ticks asked");
    ensure!(store.defended_cells(Tick(2), Tick(3)).await? == expected[1..], "only the ticks asked");
    Ok(())
}
