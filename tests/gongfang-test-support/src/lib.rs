//! The harness every Gongfang test starts from: a fresh, migrated database per test on SQLite
//! or PostgreSQL ([`TestDb`], [`backend_tests!`]), drill scenarios built in code
//! ([`scenario`]), one HTTP/1.1 client that talks to the real listening socket ([`http`]),
//! certificates for HTTPS ([`tls`]), a headless Chromium to drive pages
//! ([`browser`]), and teams' machines as network namespaces that connect
//! over WireGuard ([`netns`]).
//!
//! Only tests, examples and benchmarks depend on this crate.

pub mod browser;
mod db;
pub mod http;
mod macros;
pub mod netns;
pub mod scenario;
pub mod tls;

pub use db::{POSTGRES_URL_VAR, REQUIRE_POSTGRES_VAR, TestDb, keep, run};
pub use gongfang_store::Backend;
