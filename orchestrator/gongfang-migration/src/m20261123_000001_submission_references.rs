//! On PostgreSQL, the submissions table's references to teams and services are checked once
//! per statement instead of once per row, because the per-row checks were most of the cost of
//! storing a flag.
//!
//! A PostgreSQL foreign key checks each inserted row with a query of its own (three per
//! submission: attacker, victim, service). Measured on a batch of 50,000 submissions that was
//! about 60 % of the insert's time (docs/benchmarks.md, "Flag submission"). The same rule now
//! lives in statement-level triggers that see every row of a statement at once (transition
//! tables):
//!
//! - after an INSERT or UPDATE on `submissions`, every attacker and victim must be a team and
//!   every service a service. The referenced rows are locked `FOR KEY SHARE`, as a foreign key
//!   check locks them, so a concurrent delete waits for the inserting transaction and then
//!   sees its rows;
//! - after a DELETE or UPDATE on `teams` or `services`, no submission may refer to an id that
//!   is gone (`ON DELETE RESTRICT`, `ON UPDATE RESTRICT`), and TRUNCATE is refused while
//!   submissions exist.
//!
//! Violations raise SQLSTATE 23503 (`foreign_key_violation`), as the foreign keys did. SQLite
//! keeps its foreign keys: it checks them with a direct index lookup, which costs little.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE FUNCTION gongfang_submissions_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    team_ids integer[] := ARRAY(SELECT attacker FROM new_rows UNION SELECT victim FROM new_rows);
    service_ids integer[] := ARRAY(SELECT DISTINCT service FROM new_rows);
    missing integer;
BEGIN
    PERFORM 1 FROM teams WHERE id = ANY (team_ids) FOR KEY SHARE;
    PERFORM 1 FROM services WHERE id = ANY (service_ids) FOR KEY SHARE;
    SELECT min(x) INTO missing FROM unnest(team_ids) x WHERE NOT EXISTS (SELECT 1 FROM teams t WHERE t.id = x);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'submission refers to team % which does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'submissions';
    END IF;
    SELECT min(x) INTO missing FROM unnest(service_ids) x WHERE NOT EXISTS (SELECT 1 FROM services s WHERE s.id = x);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'submission refers to service % which does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'submissions';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER submissions_references_on_insert AFTER INSERT ON submissions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION gongfang_submissions_references_exist();
CREATE TRIGGER submissions_references_on_update AFTER UPDATE ON submissions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION gongfang_submissions_references_exist();

CREATE FUNCTION gongfang_teams_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone integer;
BEGIN
    SELECT min(o.id) INTO gone FROM old_rows o
    WHERE NOT EXISTS (SELECT 1 FROM teams t WHERE t.id = o.id)
      AND (EXISTS (SELECT 1 FROM submissions s WHERE s.attacker = o.id)
           OR EXISTS (SELECT 1 FROM submissions s WHERE s.victim = o.id));
    IF gone IS NOT NULL THEN
        RAISE EXCEPTION 'team % still has submissions', gone
            USING ERRCODE = 'foreign_key_violation', TABLE = 'teams';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER teams_keep_submissions_on_delete AFTER DELETE ON teams
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gongfang_teams_unreferenced();
CREATE TRIGGER teams_keep_submissions_on_update AFTER UPDATE ON teams
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gongfang_teams_unreferenced();

CREATE FUNCTION gongfang_services_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone integer;
BEGIN
    SELECT min(o.id) INTO gone FROM old_rows o
    WHERE NOT EXISTS (SELECT 1 FROM services s WHERE s.id = o.id)
      AND EXISTS (SELECT 1 FROM submissions x WHERE x.service = o.id);
    IF gone IS NOT NULL THEN
        RAISE EXCEPTION 'service % still has submissions', gone
            USING ERRCODE = 'foreign_key_violation', TABLE = 'services';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER services_keep_submissions_on_delete AFTER DELETE ON services
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gongfang_services_unreferenced();
CREATE TRIGGER services_keep_submissions_on_update AFTER UPDATE ON services
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gongfang_services_unreferenced();

CREATE FUNCTION gongfang_no_truncate_under_submissions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM submissions) THEN
        RAISE EXCEPTION 'cannot truncate %: submissions refer to it', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER teams_keep_submissions_on_truncate BEFORE TRUNCATE ON teams
    FOR EACH STATEMENT EXECUTE FUNCTION gongfang_no_truncate_under_submissions();
CREATE TRIGGER services_keep_submissions_on_truncate BEFORE TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION gongfang_no_truncate_under_submissions();

ALTER TABLE submissions
    DROP CONSTRAINT fk_submissions_attacker,
    DROP CONSTRAINT fk_submissions_victim,
    DROP CONSTRAINT fk_submissions_service;
"#;

const DOWN: &str = r#"
ALTER TABLE submissions
    ADD CONSTRAINT fk_submissions_attacker FOREIGN KEY (attacker) REFERENCES teams (id)
        ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT fk_submissions_victim FOREIGN KEY (victim) REFERENCES teams (id)
        ON DELETE RESTRICT ON UPDATE RESTRICT,
    ADD CONSTRAINT fk_submissions_service FOREIGN KEY (service) REFERENCES services (id)
        ON DELETE RESTRICT ON UPDATE RESTRICT;
DROP TRIGGER submissions_references_on_insert ON submissions;
DROP TRIGGER submissions_references_on_update ON submissions;
DROP TRIGGER teams_keep_submissions_on_delete ON teams;
DROP TRIGGER teams_keep_submissions_on_update ON teams;
DROP TRIGGER teams_keep_submissions_on_truncate ON teams;
DROP TRIGGER services_keep_submissions_on_delete ON services;
DROP TRIGGER services_keep_submissions_on_update ON services;
DROP TRIGGER services_keep_submissions_on_truncate ON services;
DROP FUNCTION gongfang_submissions_references_exist();
DROP FUNCTION gongfang_teams_unreferenced();
DROP FUNCTION gongfang_services_unreferenced();
DROP FUNCTION gongfang_no_truncate_under_submissions();
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
