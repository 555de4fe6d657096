//! The engine's lease on real databases (SQLite always, PostgreSQL when configured): one
//! holder at a time, the next refused and told who holds it, a lease not renewed taken over,
//! renewals failing for the holder that lost it, a given-up lease free at once.

mod common;

use anyhow::ensure;
use chrono::{DateTime, Duration, TimeZone, Utc};
use gongfang_store::StoreError;
use gongfang_store::lease::{LeaseClaim, STALE_AFTER};

use common::TestDb;

gongfang_test_support::backend_tests!(one_engine_holds_the_lease_at_a_time, two_engines_starting_at_once_get_one_lease);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn claim(holder: &str, pid: u32) -> LeaseClaim {
    LeaseClaim { holder: holder.into(), host: "drill-host-1".into(), pid }
}

async fn one_engine_holds_the_lease_at_a_time(db: TestDb) -> anyhow::Result<()> {
    let (a, b) = (claim("a", 100), claim("b", 200));
    ensure!(db.store.engine_lease().await?.is_none(), "a new drill has no engine");
    db.store.acquire_engine_lease(&a, t0(), STALE_AFTER).await?;
    db.store.acquire_engine_lease(&a, t0() + Duration::seconds(1), STALE_AFTER).await?;
    ensure!(db.store.renew_engine_lease("a", t0() + Duration::seconds(20)).await?, "the holder renews");
    // Within STALE_AFTER of the last renewal, another engine is refused and told who runs.
    let e = db.store.acquire_engine_lease(&b, t0() + Duration::seconds(45), STALE_AFTER).await.unwrap_err();
    let StoreError::EngineRunning { holder: Some(ref held) } = e else { anyhow::bail!("{e:?}") };
    ensure!(held.pid == 100 && held.host == "drill-host-1", "{held:?}");
    let message = e.to_string();
    ensure!(message.contains("process 100 on drill-host-1") && message.contains("30 seconds"), "{message}");
    // Not renewed for longer than that: stale, taken over; the old holder learns it lost it.
    db.store.acquire_engine_lease(&b, t0() + Duration::seconds(51), STALE_AFTER).await?;
    ensure!(!db.store.renew_engine_lease("a", t0() + Duration::seconds(52)).await?, "a lost its lease");
    ensure!(db.store.engine_lease().await?.is_some_and(|h| h.pid == 200), "b holds it");
    // Giving up is only the holder's; then the next engine starts at once.
    db.store.release_engine_lease("a").await?;
    ensure!(db.store.engine_lease().await?.is_some(), "a cannot give up b's lease");
    db.store.release_engine_lease("b").await?;
    db.store.acquire_engine_lease(&a, t0() + Duration::seconds(53), STALE_AFTER).await?;
    ensure!(db.store.engine_lease().await?.is_some_and(|h| h.pid == 100), "a holds it again");
    Ok(())
}

async fn two_engines_starting_at_once_get_one_lease(db: TestDb) -> anyhow::Result<()> {
    for round in 0..5 {
        let (s1, s2) = (db.store.clone(), db.store.clone());
        let at = t0() + Duration::hours(round);
        let one = tokio::spawn(async move { s1.acquire_engine_lease(&claim("one", 1), at, STALE_AFTER).await });
        let two = tokio::spawn(async move { s2.acquire_engine_lease(&claim("two", 2), at, STALE_AFTER).await });
        let results = [one.await?, two.await?];
        let won = results.iter().filter(|r| r.is_ok()).count();
        ensure!(won == 1, "round {round}: {results:?}");
        ensure!(
            results.iter().any(|r| matches!(r, Err(StoreError::EngineRunning { .. }))),
            "round {round}: the other is told an engine runs: {results:?}"
        );
        for holder in ["one", "two"] {
            db.store.release_engine_lease(holder).await?;
        }
    }
    Ok(())
}
