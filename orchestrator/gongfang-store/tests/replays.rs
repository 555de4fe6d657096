//! Exploit replays on real databases (SQLite and PostgreSQL): stored per tick, team, service
//! and store, read back by tick range and team, unique per cell, and dropped with the other
//! results of a tick played again after a restart.

mod common;

use anyhow::ensure;
use chrono::{TimeZone, Utc};
use gongfang_core::{ExploitReplay, Exposure, ServiceId, StoreIdx, TeamId, Tick};

use common::TestDb;

gongfang_test_support::backend_tests!(replays_are_stored_read_and_dropped_with_a_replayed_tick,);

fn replay(tick: u32, team: u16, store: u8, exposure: Exposure) -> ExploitReplay {
    ExploitReplay {
        tick: Tick(tick),
        team: TeamId(team),
        service: ServiceId(1),
        store: StoreIdx(store),
        exposure,
        message: format!("tick {tick}"),
        recorded_at: Utc.with_ymd_and_hms(2026, 11, 21, 9, tick, 0).unwrap(),
    }
}

async fn replays_are_stored_read_and_dropped_with_a_replayed_tick(db: TestDb) -> anyhow::Result<()> {
    db.store.sync_scenario(&common::scenario()).await?;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    for t in 1..=2 {
        db.store.open_tick(Tick(t), at).await?;
    }
    db.store.close_tick(Tick(1), at).await?;
    let stored = vec![
        replay(1, 3, 0, Exposure::Exploitable),
        replay(1, 4, 0, Exposure::Unknown),
        replay(2, 3, 0, Exposure::NotExploitable),
        replay(2, 3, 1, Exposure::Exploitable),
    ];
    db.store.record_exploit_replays(&stored).await?;
    ensure!(db.store.exploit_replays(Tick(0), Tick(9), None).await? == stored, "read back as written");
    let blue_one = db.store.exploit_replays(Tick(2), Tick(2), Some(TeamId(3))).await?;
    ensure!(blue_one == stored[2..], "{blue_one:?}");
    // One replay per tick, team, service and store.
    ensure!(db.store.record_exploit_replays(&stored[..1]).await.is_err(), "a second replay of one cell was stored");
    ensure!(db.store.exploit_replays(Tick(1), Tick(1), None).await?.len() == 2);
    // Tick 2 never closed: played again, its replays go with its results; tick 1's stay.
    db.store.discard_open_tick_results(Tick(2)).await?;
    ensure!(db.store.exploit_replays(Tick(0), Tick(9), None).await? == stored[..2], "tick 2's replays survived");
    Ok(())
}
