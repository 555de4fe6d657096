//! Gongfang's database schema, as migrations that run identically on SQLite and PostgreSQL.
//!
//! Only portable column types are used (integers, doubles, text, booleans, blobs, timestamps
//! with time zone) and every constraint the application relies on for correctness (unique
//! submissions, one score row per tick and team) lives in the schema, not in code.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

mod m20261121_000001_initial;
mod m20261121_000002_drill_start;
mod m20261122_000001_reports;
mod m20261123_000001_submission_references;
mod m20261124_000001_submission_indexes;
mod m20261125_000001_drill_identity;
mod m20261130_000001_token_key_and_sessions;
mod m20261130_000002_evidence_chunks;
mod m20261130_000003_vpn_peers;
mod m20261206_000001_vpn_translations;
mod m20261206_000002_shell_keys;
mod m20261206_000003_exploit_replays;
mod m20261207_000001_patches;
mod m20261208_000001_admin_tokens;
mod m20261209_000001_team_sessions;
mod m20261209_000002_defective_results;
mod m20261210_000001_board_freeze;
mod m20261210_000002_score_adjustments;
mod m20261211_000001_team_disabled;
mod m20261212_000001_team_results_index;
mod m20261212_000002_checker_faults;
mod m20261213_000001_ruling_reason_codes;
mod m20261213_000002_capture_window_index;
mod m20261214_000001_report_scores;
mod m20261214_000002_injects;
mod m20261214_000003_engine_lease;
mod m20261221_000001_ruling_findings;
mod m20261222_000001_scorer_snapshot;

/// Every migration of the schema, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_initial::Migration),
            Box::new(m20261121_000002_drill_start::Migration),
            Box::new(m20261122_000001_reports::Migration),
            Box::new(m20261123_000001_submission_references::Migration),
            Box::new(m20261124_000001_submission_indexes::Migration),
            Box::new(m20261125_000001_drill_identity::Migration),
            Box::new(m20261130_000001_token_key_and_sessions::Migration),
            Box::new(m20261130_000002_evidence_chunks::Migration),
            Box::new(m20261130_000003_vpn_peers::Migration),
            Box::new(m20261206_000001_vpn_translations::Migration),
            Box::new(m20261206_000002_shell_keys::Migration),
            Box::new(m20261206_000003_exploit_replays::Migration),
            Box::new(m20261207_000001_patches::Migration),
            Box::new(m20261208_000001_admin_tokens::Migration),
            Box::new(m20261209_000001_team_sessions::Migration),
            Box::new(m20261209_000002_defective_results::Migration),
            Box::new(m20261210_000001_board_freeze::Migration),
            Box::new(m20261210_000002_score_adjustments::Migration),
            Box::new(m20261211_000001_team_disabled::Migration),
            Box::new(m20261212_000001_team_results_index::Migration),
            Box::new(m20261212_000002_checker_faults::Migration),
            Box::new(m20261213_000001_ruling_reason_codes::Migration),
            Box::new(m20261213_000002_capture_window_index::Migration),
            Box::new(m20261214_000001_report_scores::Migration),
            Box::new(m20261214_000002_injects::Migration),
            Box::new(m20261214_000003_engine_lease::Migration),
            Box::new(m20261221_000001_ruling_findings::Migration),
            Box::new(m20261222_000001_scorer_snapshot::Migration),
        ]
    }
}

/// Runs `sql` on PostgreSQL and nothing on SQLite: for the changes that only PostgreSQL needs
/// (its per-row costs differ from SQLite's; see each migration).
async fn on_postgres(m: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if m.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    m.get_connection().execute_unprepared(sql).await.map(drop)
}

/// Runs `sql` on SQLite and nothing on PostgreSQL: the B-tree indexes that SQLite needs and
/// PostgreSQL answers otherwise (see each migration).
async fn on_sqlite(m: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if m.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    m.get_connection().execute_unprepared(sql).await.map(drop)
}
