//! The scorer's snapshot on real databases (SQLite always, PostgreSQL when configured): none
//! in a new drill, the bytes back exactly as saved (every byte value, as PostgreSQL's `bytea`
//! and SQLite's blob must keep them), a later one replacing the earlier, and the digest of the
//! marks it was taken with independent of their order and changed by any mark.

mod common;

use anyhow::ensure;
use chrono::{TimeZone, Utc};
use gongfang_core::{ServiceId, TeamId, Tick};
use gongfang_store::{DefectiveCells, ScorerSnapshot, marks_digest};

use common::TestDb;

gongfang_test_support::backend_tests!(the_latest_snapshot_is_kept_byte_for_byte);

async fn the_latest_snapshot_is_kept_byte_for_byte(db: TestDb) -> anyhow::Result<()> {
    ensure!(db.store.scorer_snapshot().await?.is_none(), "a new drill has no snapshot");
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let first = ScorerSnapshot {
        tick: Tick(41),
        marks: marks_digest(&DefectiveCells::new()),
        state: (0..=255u8).cycle().take(70_000).collect(),
        taken_at: at,
    };
    db.store.save_scorer_snapshot(&first).await?;
    ensure!(db.store.scorer_snapshot().await?.as_ref() == Some(&first), "read back as saved");
    let second =
        ScorerSnapshot { tick: Tick(42), state: vec![0, 0, 255], taken_at: at + chrono::Duration::hours(1), ..first };
    db.store.save_scorer_snapshot(&second).await?;
    ensure!(db.store.scorer_snapshot().await?.as_ref() == Some(&second), "the later one replaces it");
    Ok(())
}

#[test]
fn the_marks_digest_depends_on_the_marks_only() {
    let cell = |t, team, s| (Tick(t), TeamId(team), ServiceId(s));
    let a: DefectiveCells = [cell(3, 2, 1), cell(4, 2, 1), cell(4, 7, 2)].into();
    let b: DefectiveCells = [cell(4, 7, 2), cell(3, 2, 1), cell(4, 2, 1)].into_iter().collect();
    assert_eq!(marks_digest(&a), marks_digest(&b), "order does not matter");
    let mut c = a.clone();
    c.insert(cell(5, 2, 1));
    assert_ne!(marks_digest(&a), marks_digest(&c), "one more mark changes it");
    let moved: DefectiveCells = [cell(3, 2, 1), cell(4, 2, 1), cell(4, 7, 3)].into();
    assert_ne!(marks_digest(&a), marks_digest(&moved), "so does another cell");
    assert_ne!(marks_digest(&a), marks_digest(&DefectiveCells::new()));
}
