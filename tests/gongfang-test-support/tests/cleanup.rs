//! A test's database is removed when the test is over, whether it passed, returned an error or
//! panicked: no `gongfang_test_*` databases pile up on the PostgreSQL server, no files in the
//! temporary folder.

use std::sync::{Arc, Mutex};

use gongfang_store::Store;
use gongfang_test_support::{Backend, TestDb, keep, run};

/// How a test body ends.
#[derive(Debug, Clone, Copy)]
enum End {
    Passes,
    Fails,
    Panics,
}

/// Runs a body that ends as `end` on `backend`; the URL of the database it had, or `None` when
/// PostgreSQL is not configured.
async fn database_of(backend: Backend, end: End) -> Option<String> {
    let url = Arc::new(Mutex::new(None));
    let seen = url.clone();
    let test = tokio::spawn(run(backend, keep, move |db: TestDb| async move {
        *seen.lock().unwrap() = Some(db.url.clone());
        match end {
            End::Passes => Ok(()),
            End::Fails => anyhow::bail!("failing on purpose"),
            End::Panics => panic!("panicking on purpose"),
        }
    }))
    .await;
    assert_eq!(test.is_ok(), matches!(end, End::Passes), "{end:?}: {test:?}");
    url.lock().unwrap().take()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_removed_however_the_test_ends() {
    for end in [End::Passes, End::Fails, End::Panics] {
        let url = database_of(Backend::Sqlite, end).await.expect("SQLite always runs");
        let file = url.trim_start_matches("sqlite://").trim_end_matches("?mode=rwc");
        assert!(!std::path::Path::new(file).exists(), "{end:?}: {file} is still there");

        let Some(url) = database_of(Backend::Postgres, end).await else { continue };
        assert!(Store::connect(&url).await.is_err(), "{end:?}: {url} can still be opened");
    }
}
