//! Writers racing to store the same name: the ones that lose hear that the name is taken, as a
//! caller can match on, never an opaque database failure. SQLite and PostgreSQL.

use anyhow::ensure;
use gongfang_core::AccountRole;
use gongfang_store::StoreError;
use gongfang_test_support::TestDb;

gongfang_test_support::backend_tests!(concurrent_accounts_with_one_name);

/// Accounts created at once under one name. Hashing the password leaves time between the
/// check for the name and the insert, so several creations pass the check; the unique key
/// decides, and every loser answers `AccountExists`.
async fn concurrent_accounts_with_one_name(db: TestDb) -> anyhow::Result<()> {
    let store = db.store.clone();
    let attempts: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.create_account("judy", AccountRole::Judge, &format!("password {i}")).await },
            )
        })
        .collect();
    let mut stored = 0;
    for attempt in attempts {
        match attempt.await? {
            Ok(_) => stored += 1,
            Err(StoreError::AccountExists(name)) => ensure!(name == "judy", "the error names another account: {name}"),
            Err(e) => anyhow::bail!("a losing creation failed otherwise: {e}"),
        }
    }
    ensure!(stored == 1, "{stored} creations stored the same name");
    store.close().await?;
    Ok(())
}
