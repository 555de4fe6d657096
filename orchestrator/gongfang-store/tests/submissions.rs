//! The submission insert path on real databases (SQLite and PostgreSQL): batches of every size
//! the statements are split into, duplicates within and across batches, odd flag text,
//! atomicity, concurrent batches in opposite orders, the references to teams and services
//! (foreign keys on SQLite, statement-level triggers on PostgreSQL), the captured-services
//! query that first blood is decided from, and the migration that changed the table's indexes
//! under stored rows.

mod common;

use std::collections::HashSet;

use anyhow::ensure;
use chrono::{TimeZone, Utc};
use gongfang_core::NewSubmission;
use gongfang_core::scoring::Capture;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};
use gongfang_store::{Store, SubmissionOutcome};

use common::{TestDb, scenario};

gongfang_test_support::backend_tests!(
    batches_of_every_size_answer_each_row,
    odd_flag_text_round_trips_and_dedupes,
    a_failing_row_stores_nothing_of_its_batch,
    concurrent_batches_in_opposite_orders_all_complete,
    batches_expected_new_get_the_same_answers_when_they_are_not,
    captured_services_come_from_the_store,
    the_index_migration_keeps_what_was_stored,
    references_are_enforced_by_the_schema,
);

fn sub(attacker: u16, flag: &str, victim: u16, service: u8) -> NewSubmission {
    NewSubmission {
        capture: Capture {
            attacker: TeamId(attacker),
            victim: TeamId(victim),
            service: ServiceId(service),
            store: StoreIdx(1),
            planted: Tick(7),
            submitted: Tick(8),
        },
        flag: flag.to_owned(),
        // Sub-second precision must survive the trip.
        submitted_at: Utc.timestamp_opt(1_790_000_000, 123_456_000).unwrap(),
    }
}

async fn synced(db: &TestDb) -> anyhow::Result<()> {
    db.store.sync_scenario(&scenario()).await?;
    Ok(())
}

/// Inserts `batch` and checks every outcome against `seen`, the pairs stored so far.
async fn insert_checked(
    store: &Store,
    batch: &[NewSubmission],
    seen: &mut HashSet<(u16, String)>,
) -> anyhow::Result<()> {
    let outcomes = store.insert_submissions(batch).await?;
    ensure!(outcomes.len() == batch.len(), "{} outcomes for {} rows", outcomes.len(), batch.len());
    for (i, (s, outcome)) in batch.iter().zip(&outcomes).enumerate() {
        let expected = if seen.insert((s.capture.attacker.0, s.flag.clone())) {
            SubmissionOutcome::New
        } else {
            SubmissionOutcome::Duplicate
        };
        ensure!(
            *outcome == expected,
            "row {i} of {} ({}, {}): {outcome:?}, expected {expected:?}",
            batch.len(),
            s.capture.attacker,
            s.flag
        );
    }
    Ok(())
}

async fn batches_of_every_size_answer_each_row(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let mut seen = HashSet::new();
    let mut n = 0;
    // Sizes around the statement sizes a batch is split into (powers of two up to 1024).
    for size in [1, 2, 3, 7, 1023, 1024, 1025, 2500] {
        let mut batch = Vec::new();
        for i in 0..size {
            // Every fifth row repeats a flag stored by an earlier batch, every seventh one
            // repeats a row of this batch; the rest are new. Attackers alternate.
            let flag = if i % 5 == 4 && n > 10 {
                format!("GF{{{}}}", n / 2)
            } else if i % 7 == 6 {
                batch.last().map_or_else(|| format!("GF{{{n}}}"), |s: &NewSubmission| s.flag.clone())
            } else {
                format!("GF{{{n}}}")
            };
            let attacker = if i % 7 == 6 {
                batch.last().map_or(1, |s: &NewSubmission| s.capture.attacker.0)
            } else {
                1 + (n % 2) as u16
            };
            batch.push(sub(attacker, &flag, 3, 1));
            n += 1;
        }
        insert_checked(&db.store, &batch, &mut seen).await?;
    }
    ensure!(db.store.count_submissions().await? as usize == seen.len(), "stored rows differ from new answers");
    let stored = db.store.submissions_in_tick(Tick(8)).await?;
    let keys: HashSet<(u16, String)> =
        stored.iter().map(|s| (s.submission.capture.attacker.0, s.submission.flag.clone())).collect();
    ensure!(keys == seen, "stored keys differ from what was answered new");
    ensure!(
        stored.iter().all(|s| s.submission == sub(s.submission.capture.attacker.0, &s.submission.flag, 3, 1)),
        "a field changed"
    );
    Ok(())
}

async fn odd_flag_text_round_trips_and_dedupes(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    // Quotes, backslashes, non-ASCII, JSON and SQL look-alikes: stored as given, and found
    // again when a later batch mixes them with new rows.
    let odd = ["GF{\"q\"}", "GF{back\\slash}", "GF{攻防}", "GF{[1,\"x\"]}", "GF{'); DROP TABLE submissions;--}", ""];
    let mut seen = HashSet::new();
    let first: Vec<_> = odd.iter().map(|f| sub(2, f, 4, 2)).collect();
    insert_checked(&db.store, &first, &mut seen).await?;
    let mut second: Vec<_> = odd.iter().rev().map(|f| sub(2, f, 4, 2)).collect();
    second.insert(3, sub(2, "GF{fresh}", 4, 2));
    insert_checked(&db.store, &second, &mut seen).await?;
    let stored: HashSet<String> =
        db.store.submissions_in_tick(Tick(8)).await?.into_iter().map(|s| s.submission.flag).collect();
    let expected: HashSet<String> = odd.iter().map(|f| (*f).to_owned()).chain(["GF{fresh}".to_owned()]).collect();
    ensure!(stored == expected, "stored {stored:?}");
    Ok(())
}

async fn a_failing_row_stores_nothing_of_its_batch(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    // The bad row (no team 99) comes last in key order, so earlier statements of the same
    // batch have already inserted when it fails.
    let mut batch: Vec<_> = (0..1500).map(|i| sub(1, &format!("GF{{{i}}}"), 3, 1)).collect();
    batch.push(sub(99, "GF{bad}", 3, 1));
    ensure!(db.store.insert_submissions(&batch).await.is_err(), "a row of an unknown attacker was accepted");
    ensure!(db.store.count_submissions().await? == 0, "a failed batch left rows behind");
    // The same rows without the bad one go in whole afterwards.
    let outcomes = db.store.insert_submissions(&batch[..1500]).await?;
    ensure!(outcomes.iter().all(|o| *o == SubmissionOutcome::New), "rows of the failed batch count as seen");
    Ok(())
}

async fn concurrent_batches_in_opposite_orders_all_complete(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    // Batches that share keys, submitted concurrently in opposite orders, would wait on each
    // other's row locks in a cycle if rows went in as given (PostgreSQL then aborts one).
    for round in 0..5 {
        let rows: Vec<_> = (0..300).map(|i| sub(1, &format!("GF{{r{round}-{i}}}"), 3, 1)).collect();
        let mut tasks = Vec::new();
        for k in 0..4 {
            let store = db.store.clone();
            let mut batch = rows.clone();
            if k % 2 == 1 {
                batch.reverse();
            }
            tasks.push(tokio::spawn(async move { store.insert_submissions(&batch).await }));
        }
        let mut new = vec![0; rows.len()];
        for (k, task) in tasks.into_iter().enumerate() {
            let outcomes = task.await??;
            for (i, o) in outcomes.into_iter().enumerate() {
                let row = if k % 2 == 1 { rows.len() - 1 - i } else { i };
                new[row] += usize::from(o == SubmissionOutcome::New);
            }
        }
        ensure!(new.iter().all(|&n| n == 1), "round {round}: each row must be new exactly once: {new:?}");
    }
    ensure!(db.store.count_submissions().await? == 1500, "row count");
    Ok(())
}

/// `insert_new_submissions` is a hint to the store, never a promise: a stored flag in the
/// batch, or the same flag inserted concurrently, still gets exactly one `New`.
async fn batches_expected_new_get_the_same_answers_when_they_are_not(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    db.store.insert_submissions(&[sub(1, "GF{a}", 3, 1)]).await?;
    let outcomes =
        db.store.insert_new_submissions(&[sub(1, "GF{a}", 3, 1), sub(1, "GF{b}", 3, 1), sub(1, "GF{b}", 3, 1)]).await?;
    ensure!(
        outcomes == [SubmissionOutcome::Duplicate, SubmissionOutcome::New, SubmissionOutcome::Duplicate],
        "a stored flag in the batch: {outcomes:?}"
    );
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = db.store.clone();
        racing.spawn(async move { store.insert_new_submissions(&[sub(2, "GF{c}", 3, 1)]).await });
    }
    let mut new = 0;
    while let Some(outcomes) = racing.join_next().await {
        new += usize::from(outcomes?? == [SubmissionOutcome::New]);
    }
    ensure!(new == 1, "{new} of 8 concurrent inserts of one flag were new");
    ensure!(db.store.count_submissions().await? == 3, "row count");
    Ok(())
}

async fn captured_services_come_from_the_store(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    ensure!(db.store.captured_services().await?.is_empty(), "nothing captured yet");
    db.store.insert_submissions(&[sub(1, "GF{a}", 3, 2)]).await?;
    ensure!(db.store.captured_services().await? == [ServiceId(2)], "service 2 captured");
    db.store.insert_submissions(&[sub(2, "GF{b}", 4, 1), sub(5, "GF{c}", 3, 2)]).await?;
    ensure!(db.store.captured_services().await? == [ServiceId(1), ServiceId(2)], "both captured");
    // What a restarted server sees: a new connection to the same database.
    let reopened = Store::connect(&db.url).await?;
    ensure!(reopened.captured_services().await? == [ServiceId(1), ServiceId(2)], "after reopening");
    reopened.close().await?;
    Ok(())
}

/// The migration that changed the submissions' indexes (BRIN, byte-order flags, and the
/// `captured_services` table on PostgreSQL), undone and redone under stored rows: what was
/// captured before it is still captured after it, and a stored flag is still a duplicate.
async fn the_index_migration_keeps_what_was_stored(db: TestDb) -> anyhow::Result<()> {
    use gongfang_migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    const MIGRATION: &str = "m20261124_000001_submission_indexes";
    synced(&db).await?;
    db.store.insert_submissions(&[sub(1, "GF{a}", 3, 2)]).await?;
    let raw = sea_orm::Database::connect(db.url.as_str()).await?;
    let steps = Migrator::migrations().iter().rev().position(|m| m.name() == MIGRATION).map(|i| i + 1);
    let steps = steps.ok_or_else(|| anyhow::anyhow!("{MIGRATION} is not among the migrations"))?;
    Migrator::down(&raw, Some(u32::try_from(steps)?)).await?;
    // A row stored by the older schema.
    raw.execute_unprepared(
        "INSERT INTO submissions (attacker, flag, victim, service, store, tick_planted, tick_submitted, submitted_at) \
         VALUES (2, 'GF{b}', 4, 1, 1, 7, 8, '2026-05-04T09:00:00Z')",
    )
    .await?;
    Migrator::up(&raw, None).await?;
    raw.close().await?;
    ensure!(db.store.captured_services().await? == [ServiceId(1), ServiceId(2)], "captures from both schemas");
    let outcomes = db.store.insert_submissions(&[sub(2, "GF{b}", 4, 1), sub(2, "GF{c}", 4, 1)]).await?;
    ensure!(outcomes == [SubmissionOutcome::Duplicate, SubmissionOutcome::New], "after the migration: {outcomes:?}");
    ensure!(db.store.count_submissions().await? == 3, "row count");
    Ok(())
}

async fn references_are_enforced_by_the_schema(db: TestDb) -> anyhow::Result<()> {
    use sea_orm::{ConnectOptions, ConnectionTrait, SqlErr};
    synced(&db).await?;
    db.store.insert_submissions(&[sub(1, "GF{a}", 3, 1)]).await?;
    // Any client of the database, not just the store, is held to the rule.
    let postgres = db.url.starts_with("postgres");
    let mut options = ConnectOptions::new(db.url.clone());
    options.max_connections(1).sqlx_logging(false);
    let raw = sea_orm::Database::connect(options).await?;
    if !postgres {
        raw.execute_unprepared("PRAGMA foreign_keys = ON").await?;
    }
    let refused = [
        "DELETE FROM teams WHERE id = 3",
        "DELETE FROM teams WHERE id = 1",
        "UPDATE teams SET id = 33 WHERE id = 3",
        "DELETE FROM services WHERE id = 1",
        "UPDATE services SET id = 9 WHERE id = 1",
        "INSERT INTO submissions (attacker, flag, victim, service, store, tick_planted, tick_submitted, submitted_at) \
         VALUES (1, 'GF{x}', 42, 1, 0, 7, 8, '2026-05-04T09:00:00Z')",
        "INSERT INTO submissions (attacker, flag, victim, service, store, tick_planted, tick_submitted, submitted_at) \
         VALUES (1, 'GF{y}', 3, 7, 0, 7, 8, '2026-05-04T09:00:00Z')",
        "UPDATE submissions SET attacker = 77",
        "UPDATE submissions SET service = 9",
    ];
    // Other tables' foreign keys refuse a plain TRUNCATE; CASCADE would pass them by.
    for sql in refused.iter().copied().chain(postgres.then_some("TRUNCATE teams, services CASCADE")) {
        match raw.execute_unprepared(sql).await {
            Err(e) if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) => {}
            // SQLite reports a parent row still referenced with an extended code sea-orm does
            // not classify.
            Err(e) if !postgres && e.to_string().contains("FOREIGN KEY constraint failed") => {}
            Err(e) => anyhow::bail!("{sql}: failed, but not as a broken reference: {e}"),
            Ok(_) => anyhow::bail!("{sql}: allowed, leaving a submission without its team or service"),
        }
    }
    // What the references do not forbid still works.
    raw.execute_unprepared("UPDATE teams SET name_en = 'Renamed' WHERE id = 3").await?;
    raw.execute_unprepared("DELETE FROM teams WHERE id = 4").await?;
    raw.execute_unprepared("DELETE FROM services WHERE id = 2").await?;
    raw.close().await?;
    ensure!(db.store.count_submissions().await? == 1, "row count");
    ensure!(db.store.list_teams().await?.len() == 4, "the unreferenced team is gone");
    Ok(())
}
