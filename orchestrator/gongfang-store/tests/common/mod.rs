//! Test harness: a fresh, migrated database per test, on SQLite (a temp file) or PostgreSQL
//! (a database created for the test on the server named by `GONGFANG_TEST_POSTGRES_URL`, and
//! dropped afterwards), so tests run in parallel and never see each other's rows.

#![allow(dead_code)]

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use gongfang_core::scenario::{
    Drill, Identify, ImageSource, Ipv4Net, Limits, Names, PatchMode, Role, Scenario, ScoringFormula, SecretSource,
    Service, Submission, Team,
};
use gongfang_core::{ServiceId, TeamId};
use gongfang_store::Store;
use rand::Rng;
use sea_orm::ConnectionTrait;

pub const POSTGRES_URL_VAR: &str = "GONGFANG_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "GONGFANG_REQUIRE_POSTGRES";

/// A migrated database for one test. `url` lets a test open a second connection.
pub struct TestDb {
    pub store: Store,
    pub url: String,
}

/// Runs `body` against a fresh SQLite file.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let store = Store::connect_and_migrate(&url).await.expect("open and migrate SQLite");
    let result = tokio::spawn(body(TestDb { store, url })).await;
    drop(dir);
    finish(result);
}

/// Runs `body` against a database created for it on the PostgreSQL server, or skips (or
/// fails, when PostgreSQL is required) if no server is configured.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
        if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
            panic!("{POSTGRES_URL_VAR} is not set but {REQUIRE_POSTGRES_VAR}=1: PostgreSQL tests must run");
        }
        eprintln!("SKIPPED: PostgreSQL test; set {POSTGRES_URL_VAR}=postgres://USER@HOST:PORT/postgres to run it");
        return;
    };
    let name = format!("gongfang_test_{:016x}", rand::rng().random::<u64>());
    let admin = sea_orm::Database::connect(admin_url.as_str()).await.expect("connect to PostgreSQL admin database");
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let url = with_database(&admin_url, &name);
    let store = Store::connect_and_migrate(&url).await.expect("open and migrate PostgreSQL");
    let result = tokio::spawn(body(TestDb { store, url })).await;
    // The body's store clones are dropped with its task; FORCE ends any straggling session.
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop test database");
    admin.close().await.ok();
    finish(result);
}

fn finish(result: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("test failed: {e:#}"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}

/// `admin_url` with its database name replaced by `db`.
fn with_database(admin_url: &str, db: &str) -> String {
    let (base, query) = admin_url.split_once('?').map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Generates `sqlite_NAME` and `postgres_NAME` tests running the async fn `NAME(TestDb)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::with_sqlite(super::$name).await;
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

pub fn names(en: &str, zh: &str) -> Names {
    Names { en: en.to_owned(), zh: zh.to_owned() }
}

pub fn team(id: u16, slug: &str, role: Role) -> Team {
    Team {
        id: TeamId(id),
        slug: slug.to_owned(),
        name: names(&format!("Team {slug}"), &format!("隊伍 {slug}")),
        role,
        network: Ipv4Net { addr: Ipv4Addr::new(10, 60, u8::try_from(id).unwrap(), 0), prefix: 24 },
        nop: false,
    }
}

pub fn service(id: u8, slug: &str) -> Service {
    Service {
        id: ServiceId(id),
        slug: slug.to_owned(),
        name: names(&format!("Service {slug}"), &format!("服務 {slug}")),
        source: ImageSource::Image(format!("gongfang/{slug}")),
        ports: vec![8080],
        checker: PathBuf::from(format!("checkers/{slug}.wasm")),
        flag_stores: 2,
        limits: Limits { cpus: 1.0, memory_bytes: 256 << 20, pids: 128 },
        patch_mode: PatchMode::Vulnbox,
    }
}

/// A small red/blue drill: two attackers, two defenders, one both, two services.
pub fn scenario() -> Scenario {
    Scenario {
        drill: Drill {
            slug: "test-drill".to_owned(),
            name: names("Test drill", "測試演練"),
            start: None,
            duration: Duration::from_secs(3600),
            tick: Duration::from_secs(60),
            checker_timeout: Duration::from_secs(10),
            flag_lifetime: 5,
            flag_prefix: "GF".to_owned(),
            secret: SecretSource::Inline("test secret".to_owned()),
            scoring: ScoringFormula::Faust,
        },
        submission: Submission { identify: Identify::Token, rate_limit: None, max_connections: 8 },
        teams: vec![
            team(1, "red-one", Role::Attacker),
            team(2, "red-two", Role::Attacker),
            team(3, "blue-one", Role::Defender),
            team(4, "blue-two", Role::Defender),
            team(5, "purple", Role::Both),
        ],
        services: vec![service(1, "notes"), service(2, "bank")],
        reports: Default::default(),
    }
}
