//! On PostgreSQL, storing a submission touches fewer and cheaper index pages.
//!
//! Every accepted flag pays for each index on `submissions`, and on PostgreSQL that cost (the
//! index entry, its WAL record, the full-page image of every index page first written after a
//! checkpoint) set how many flags a second could be stored (docs/benchmarks.md, "Flag
//! submission"). This migration:
//!
//! - compares flags byte by byte (`COLLATE "C"`). Flags are ASCII, so no language's collation
//!   says anything about their order; with the database's default collation every comparison
//!   in the unique (attacker, flag) index went through the C library's `strcoll`;
//! - replaces the B-tree on `tick_submitted` with a BRIN index. Submissions are appended in
//!   tick order, so a summary of each range of table pages finds a tick's rows, and keeping it
//!   costs almost nothing per row;
//! - replaces the B-tree on (victim, service) with a BRIN index on `submitted_at`, which is
//!   what the other reader of that index, the judges' suggested match for a report, narrows on
//!   first (a victim's submissions within a time window);
//! - keeps which services have been captured at least once in `captured_services`, the only
//!   question the (victim, service) index answered without a time window (first blood, when a
//!   submission server restarts). A statement-level trigger adds each inserted batch's
//!   services there in the same transaction: one pass over the batch's rows in memory and a
//!   probe per distinct service, not an index entry per row. It runs after the reference
//!   checks (a table's triggers fire in the order of their names) and inserts in service
//!   order, so two batches that capture the same new services at once wait for each other in
//!   one order and cannot deadlock. It only ever adds: a service stays captured if its
//!   submissions are deleted.
//!
//! SQLite keeps its B-trees: there an index entry costs little (docs/benchmarks.md) and there is
//! no BRIN.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE submissions ALTER COLUMN flag TYPE text COLLATE "C";

DROP INDEX idx_submissions_tick_submitted;
CREATE INDEX idx_submissions_tick_submitted ON submissions USING brin (tick_submitted)
    WITH (autosummarize = on);
DROP INDEX idx_submissions_victim_service;
CREATE INDEX idx_submissions_submitted_at ON submissions USING brin (submitted_at)
    WITH (autosummarize = on);

CREATE TABLE captured_services (
    service integer PRIMARY KEY REFERENCES services (id) ON DELETE RESTRICT ON UPDATE RESTRICT
);
INSERT INTO captured_services (service) SELECT DISTINCT service FROM submissions;

CREATE FUNCTION gongfang_submissions_capture_services() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO captured_services (service)
        SELECT DISTINCT n.service FROM new_rows n
        WHERE NOT EXISTS (SELECT 1 FROM captured_services c WHERE c.service = n.service)
        ORDER BY n.service
        ON CONFLICT (service) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER submissions_services_captured_on_insert AFTER INSERT ON submissions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION gongfang_submissions_capture_services();
CREATE TRIGGER submissions_services_captured_on_update AFTER UPDATE ON submissions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION gongfang_submissions_capture_services();
"#;

const DOWN: &str = r#"
DROP TRIGGER submissions_services_captured_on_insert ON submissions;
DROP TRIGGER submissions_services_captured_on_update ON submissions;
DROP FUNCTION gongfang_submissions_capture_services();
DROP TABLE captured_services;

DROP INDEX idx_submissions_submitted_at;
CREATE INDEX idx_submissions_victim_service ON submissions (victim, service);
DROP INDEX idx_submissions_tick_submitted;
CREATE INDEX idx_submissions_tick_submitted ON submissions (tick_submitted);

ALTER TABLE submissions ALTER COLUMN flag TYPE text COLLATE "default";
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(m, UP).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(m, DOWN).await
    }
}
