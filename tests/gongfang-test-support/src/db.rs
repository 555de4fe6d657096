//! A fresh, migrated database per test: a SQLite file in a temporary folder, or a database
//! created for the test on the PostgreSQL server named by `GONGFANG_TEST_POSTGRES_URL`. Either
//! is removed when the [`TestDb`] is dropped, so a failing test leaves nothing behind either.

use std::future::Future;

use gongfang_store::{Backend, Store};
use rand::Rng;

/// The PostgreSQL server tests create their databases on, as a URL naming a database the user
/// may connect to (e.g. `postgres://gongfang@127.0.0.1:55432/postgres`).
pub const POSTGRES_URL_VAR: &str = "GONGFANG_TEST_POSTGRES_URL";
/// Set to `1` (as CI does) to fail PostgreSQL tests instead of skipping them without a server.
pub const REQUIRE_POSTGRES_VAR: &str = "GONGFANG_REQUIRE_POSTGRES";

/// A migrated database of one test. `url` lets a test open another connection or hand the
/// database to a child process.
#[derive(Debug)]
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _cleanup: Cleanup,
}

impl TestDb {
    /// A database on `backend`, or `None` (after saying so) when the PostgreSQL tests are to be
    /// skipped because no server is configured.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite().await),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A fresh SQLite file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder for the test database");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
        let store = Store::connect_and_migrate(&url).await.expect("open and migrate SQLite");
        TestDb { store, url, _cleanup: Cleanup::Sqlite { _dir: dir } }
    }

    /// A fresh database on the configured PostgreSQL server; `None` when there is none, unless
    /// PostgreSQL is required, which panics.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(server) = std::env::var(POSTGRES_URL_VAR) else {
            if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                panic!("{POSTGRES_URL_VAR} is not set but {REQUIRE_POSTGRES_VAR}=1: PostgreSQL tests must run");
            }
            eprintln!("SKIPPED: PostgreSQL test; set {POSTGRES_URL_VAR}=postgres://USER@HOST:PORT/postgres to run it");
            return None;
        };
        let name = format!("gongfang_test_{:016x}", rand::rng().random::<u64>());
        let url = Store::create_database(&server, &name).await.expect("create the test database");
        // From here on the guard drops the database, even if migrating fails.
        let cleanup = Cleanup::Postgres { server, name };
        let store = Store::connect_and_migrate(&url).await.expect("open and migrate PostgreSQL");
        Some(TestDb { store, url, _cleanup: cleanup })
    }
}

/// What to remove when the test is over.
#[derive(Debug)]
enum Cleanup {
    /// Removed with the folder when dropped.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        server: String,
        name: String,
    },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Cleanup::Postgres { server, name } = self else { return };
        let (server, name) = (std::mem::take(server), std::mem::take(name));
        // Drop may run inside the test's runtime, even while it unwinds from a panic: drop the
        // database from a thread with a runtime of its own and wait for it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(Store::drop_database(&server, &name)).map_err(anyhow::Error::from)
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database: {e:#}"),
            Err(_) => eprintln!("dropping the test database panicked"),
        }
    }
}

/// Runs `body` against a fresh database on `backend` (skipping as [`TestDb::postgres`] does),
/// after `setup` turned the database into what the body takes. The body runs as a task of its
/// own; its error or panic fails the test, and the database is removed either way.
pub async fn run<T, S, SFut, B, BFut>(backend: Backend, setup: S, body: B)
where
    S: FnOnce(TestDb) -> SFut,
    SFut: Future<Output = T>,
    B: FnOnce(T) -> BFut,
    BFut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let Some(db) = TestDb::new(backend).await else { return };
    match tokio::spawn(body(setup(db).await)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("test failed: {e:#}"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}

/// The setup of tests that take the database itself.
pub async fn keep(db: TestDb) -> TestDb {
    db
}
