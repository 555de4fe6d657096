//! Refusing a wrong team token costs no argon2 run, on SQLite and PostgreSQL: the store's
//! count of argon2 runs does not move while a thousand wrong tokens are refused, and does move
//! for one password check, so the count is not simply dead.
//!
//! The count is process-wide, so this file's tests take turns (one lock) and nothing else in
//! this test binary hashes a password.

mod common;

use anyhow::ensure;
use gongfang_core::AccountRole;
use gongfang_store::{TOKEN_LEN, argon2_runs, generate_token};

use common::TestDb;

gongfang_test_support::backend_tests!(wrong_team_tokens_cost_no_argon2_run);

static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn wrong_team_tokens_cost_no_argon2_run(db: TestDb) -> anyhow::Result<()> {
    let _turn = TURNS.lock().await;
    db.store.sync_scenario(&common::scenario()).await?;
    let red = db.store.issue_token("red-one").await?;
    db.store.issue_token("blue-one").await?;
    let before = argon2_runs();
    for i in 0..1_000 {
        let wrong = match i % 4 {
            // A right lookup prefix with a wrong rest: found, then refused by the keyed hash.
            0 => format!("{}{}", &red.token.expose()[..8], &generate_token().expose()[8..]),
            // A well-formed token nobody holds.
            1 => generate_token().into_inner(),
            // Wrong shapes: refused before any lookup.
            2 => "x".repeat(TOKEN_LEN + 1),
            _ => format!("{}!", &generate_token().expose()[1..]),
        };
        ensure!(wrong != *red.token.expose());
        ensure!(db.store.verify_token(&wrong).await?.is_none(), "wrong token {i} accepted");
    }
    ensure!(db.store.verify_token(red.token.expose()).await?.is_some(), "the right token was refused");
    ensure!(argon2_runs() == before, "team tokens ran argon2 {} times", argon2_runs() - before);

    // A password check does run argon2, and is counted.
    db.store.create_account("judy", AccountRole::Judge, "correct horse battery").await?;
    ensure!(db.store.verify_account("judy", "wrong password").await?.is_none());
    ensure!(argon2_runs() >= before + 2, "password checks were not counted");
    Ok(())
}
