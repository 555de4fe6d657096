//! Login sessions on real databases (SQLite and PostgreSQL): they survive a restart, expire,
//! end at logout, and end when their account is deleted or changes role. Accounts' API tokens
//! (one each, replaced and revoked) and the paused flag the engine watches.

mod common;

use std::time::Duration;

use anyhow::{Context, ensure};
use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::AccountRole;
use gongfang_store::Store;

use common::TestDb;

gongfang_test_support::backend_tests!(
    a_session_survives_a_new_store_and_ends_at_logout,
    sessions_expire,
    sessions_end_with_their_account_or_its_role,
    tokens_of_the_wrong_shape_or_unknown_are_refused,
    api_tokens_are_one_per_account_and_revocable,
    a_pause_reaches_watchers_in_the_same_step,
    extensions_add_up_and_outlive_other_state_changes,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

async fn a_session_survives_a_new_store_and_ends_at_logout(db: TestDb) -> anyhow::Result<()> {
    let judy = db.store.create_account("judy", AccountRole::Judge, "correct horse battery").await?;
    let token = db.store.create_session(&judy, HOUR, t0()).await?;
    ensure!(token.expose().len() == 64, "session tokens are 256 bits as hex");
    ensure!(!format!("{token:?}").contains(token.expose()), "Debug shows the session token");
    ensure!(db.store.session_account(token.expose(), t0()).await? == Some(judy.clone()), "session not found");

    // Another process (or this one after a restart) opens the same database and finds it.
    let restarted = Store::connect_and_migrate(&db.url).await?;
    let found = restarted.session_account(token.expose(), t0() + chrono::Duration::minutes(5)).await?;
    ensure!(found == Some(judy.clone()), "the session did not survive a new store: {found:?}");

    // A second session of the same judge is independent of the first.
    let other = db.store.create_session(&judy, HOUR, t0()).await?;
    ensure!(other.expose() != token.expose(), "two logins got the same token");

    // Logout through the new store ends it for every store.
    ensure!(restarted.revoke_session(token.expose()).await?, "logout found no session");
    ensure!(db.store.session_account(token.expose(), t0()).await?.is_none(), "revoked session still open");
    ensure!(restarted.session_account(token.expose(), t0()).await?.is_none(), "revoked session still open");
    ensure!(!db.store.revoke_session(token.expose()).await?, "a second logout found a session");
    ensure!(db.store.session_account(other.expose(), t0()).await? == Some(judy), "logout ended another session");
    restarted.close().await?;
    Ok(())
}

async fn sessions_expire(db: TestDb) -> anyhow::Result<()> {
    let judy = db.store.create_account("judy", AccountRole::Judge, "correct horse battery").await?;
    let token = db.store.create_session(&judy, HOUR, t0()).await?;
    let open = db.store.session_account(token.expose(), t0() + chrono::Duration::minutes(59)).await?;
    ensure!(open.is_some(), "the session ended early");
    let late = db.store.session_account(token.expose(), t0() + chrono::Duration::minutes(60)).await?;
    ensure!(late.is_none(), "the session outlived its time to live");
    // A login after that sweeps expired sessions; the new one works.
    let fresh = db.store.create_session(&judy, HOUR, t0() + chrono::Duration::hours(2)).await?;
    ensure!(db.store.session_account(fresh.expose(), t0() + chrono::Duration::hours(2)).await?.is_some());
    ensure!(db.store.session_account(token.expose(), t0()).await?.is_none(), "an expired session was not removed");
    Ok(())
}

async fn sessions_end_with_their_account_or_its_role(db: TestDb) -> anyhow::Result<()> {
    let judy = db.store.create_account("judy", AccountRole::Judge, "correct horse battery").await?;
    let ana = db.store.create_account("ana", AccountRole::Judge, "staple ribbon lamp").await?;
    let judy_token = db.store.create_session(&judy, HOUR, t0()).await?;
    let ana_token = db.store.create_session(&ana, HOUR, t0()).await?;

    // A role change ends the account's sessions, and changing it back does not revive them.
    ensure!(db.store.set_account_role("judy", AccountRole::Organiser).await?, "judy not found");
    ensure!(db.store.session_account(judy_token.expose(), t0()).await?.is_none(), "session kept after role change");
    ensure!(db.store.set_account_role("judy", AccountRole::Judge).await?);
    ensure!(db.store.session_account(judy_token.expose(), t0()).await?.is_none(), "role change back revived it");
    ensure!(!db.store.set_account_role("nobody", AccountRole::Judge).await?, "an unknown account changed role");
    let judy_now = db.store.account("judy").await?.context("judy is gone")?;
    ensure!(judy_now.role == AccountRole::Judge, "role not stored");

    // A deleted account has no sessions; another account's session is untouched.
    let again = db.store.create_session(&judy_now, HOUR, t0()).await?;
    ensure!(db.store.session_account(again.expose(), t0()).await?.is_some());
    ensure!(db.store.delete_account("judy").await?, "judy not deleted");
    ensure!(db.store.session_account(again.expose(), t0()).await?.is_none(), "a deleted account's session works");
    ensure!(db.store.account("judy").await?.is_none(), "judy still stored");
    ensure!(!db.store.delete_account("judy").await?, "deleted twice");
    ensure!(db.store.session_account(ana_token.expose(), t0()).await? == Some(ana), "another judge lost her session");
    Ok(())
}

async fn tokens_of_the_wrong_shape_or_unknown_are_refused(db: TestDb) -> anyhow::Result<()> {
    let judy = db.store.create_account("judy", AccountRole::Judge, "correct horse battery").await?;
    let token = db.store.create_session(&judy, HOUR, t0()).await?;
    for wrong in ["", "00ff", "not a token at all", &"0".repeat(64), &token.expose().to_uppercase()] {
        ensure!(db.store.session_account(wrong, t0()).await?.is_none(), "`{wrong}` opened a session");
        ensure!(!db.store.revoke_session(wrong).await?, "`{wrong}` revoked a session");
    }
    // A team token is not a session token.
    db.store.sync_scenario(&common::scenario()).await?;
    let team = db.store.issue_token("red-one").await?;
    ensure!(db.store.session_account(team.token.expose(), t0()).await?.is_none(), "a team token opened a session");
    ensure!(db.store.verify_token(token.expose()).await?.is_none(), "a session token passed as a team token");
    ensure!(db.store.session_account(token.expose(), t0()).await? == Some(judy));
    Ok(())
}

async fn api_tokens_are_one_per_account_and_revocable(db: TestDb) -> anyhow::Result<()> {
    let olga = db.store.create_account("olga", AccountRole::Organiser, "correct horse battery").await?;
    let vic = db.store.create_account("vic", AccountRole::Observer, "staple ribbon lamp").await?;
    ensure!(db.store.issue_api_token("nobody", t0()).await?.is_none(), "a token for an unknown account");

    let first = db.store.issue_api_token("olga", t0()).await?.context("olga has no account")?;
    ensure!(first.expose().starts_with("gfo_") && first.expose().len() == 68, "shape of {}", first.expose().len());
    ensure!(!format!("{first:?}").contains(first.expose()), "Debug shows the API token");
    ensure!(db.store.api_token_account(first.expose()).await? == Some(olga.clone()), "the token is not olga's");

    // A new token replaces the old one, which stops working at once, in every store.
    let second = db.store.issue_api_token("olga", t0()).await?.context("olga has no account")?;
    let other = Store::connect_and_migrate(&db.url).await?;
    ensure!(other.api_token_account(first.expose()).await?.is_none(), "the replaced token still works");
    ensure!(other.api_token_account(second.expose()).await? == Some(olga.clone()), "the new token does not work");
    other.close().await?;

    let vics = db.store.issue_api_token("vic", t0()).await?.context("vic has no account")?;
    ensure!(db.store.api_token_account(vics.expose()).await? == Some(vic), "each account has its own");
    let listed = db.store.list_accounts().await?;
    let names: Vec<(&str, bool)> =
        listed.iter().map(|a| (a.account.name.as_str(), a.api_token_issued_at.is_some())).collect();
    ensure!(names == [("olga", true), ("vic", true)], "{names:?}");

    // Revoked: the token is refused and the account listed without one.
    ensure!(db.store.revoke_api_token("olga").await?, "olga's token not revoked");
    ensure!(!db.store.revoke_api_token("olga").await?, "revoked twice");
    ensure!(db.store.api_token_account(second.expose()).await?.is_none(), "a revoked token works");
    ensure!(db.store.list_accounts().await?[0].api_token_issued_at.is_none(), "olga still listed with a token");

    // Other credentials are not API tokens, and an API token is no session or team token.
    let session = db.store.create_session(&olga, HOUR, t0()).await?;
    for wrong in ["", "gfo_", session.expose(), &format!("gfo_{}", "0".repeat(64)), &vics.expose().to_uppercase()] {
        ensure!(db.store.api_token_account(wrong).await?.is_none(), "`{wrong}` passed as an API token");
    }
    ensure!(db.store.session_account(vics.expose(), t0()).await?.is_none(), "an API token opened a session");
    ensure!(db.store.verify_token(vics.expose()).await?.is_none(), "an API token passed as a team token");
    Ok(())
}

async fn a_pause_reaches_watchers_in_the_same_step(db: TestDb) -> anyhow::Result<()> {
    let watch = db.store.paused_watch();
    ensure!(!*watch.borrow(), "a new drill starts running");
    ensure!(db.store.set_paused(true, t0()).await?, "the first pause changed nothing");
    // The watcher sees it by the time the call returns, without waiting.
    ensure!(*watch.borrow(), "the watch did not follow the pause");
    ensure!(db.store.drill_state().await?.paused, "the pause is not stored");
    ensure!(!db.store.set_paused(true, t0()).await?, "pausing a paused drill changed something");

    // Another process (the `gongfang` command with no drill answering) resumes in the
    // database; this process's watch follows when it next reads the flag.
    let other = Store::connect_and_migrate(&db.url).await?;
    ensure!(other.set_paused(false, t0()).await?, "the resume changed nothing");
    ensure!(*watch.borrow(), "the watch changed before this process read the flag");
    ensure!(!db.store.sync_paused().await?, "sync read the old flag");
    ensure!(!*watch.borrow(), "the watch did not follow the stored flag");
    other.close().await?;

    // Only the flag changes: the tick and start time set by the engine stay.
    let state = gongfang_store::DrillState {
        paused: false,
        current_tick: Some(gongfang_core::Tick(4)),
        started_at: Some(t0()),
    };
    db.store.set_drill_state(state, t0()).await?;
    db.store.set_paused(true, t0()).await?;
    ensure!(
        db.store.drill_state().await? == gongfang_store::DrillState { paused: true, ..state },
        "other fields changed"
    );
    Ok(())
}

async fn extensions_add_up_and_outlive_other_state_changes(db: TestDb) -> anyhow::Result<()> {
    use std::time::Duration;
    ensure!(db.store.drill_extension().await? == Duration::ZERO, "a new drill ends when its scenario says");
    ensure!(db.store.extend_drill(Duration::from_secs(1800), t0()).await? == Duration::from_secs(1800));
    ensure!(db.store.extend_drill(Duration::from_secs(600), t0()).await? == Duration::from_secs(2400), "they add up");
    // The engine's state writes and a pause leave the extension alone.
    let state = gongfang_store::DrillState {
        paused: false,
        current_tick: Some(gongfang_core::Tick(9)),
        started_at: Some(t0()),
    };
    db.store.set_drill_state(state, t0()).await?;
    db.store.set_paused(true, t0()).await?;
    ensure!(db.store.drill_extension().await? == Duration::from_secs(2400), "another write lost the extension");
    ensure!(db.store.drill_state().await?.current_tick == Some(gongfang_core::Tick(9)), "extending moved the tick");
    Ok(())
}
