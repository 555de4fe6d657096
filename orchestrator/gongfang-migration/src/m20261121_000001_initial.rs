//! The first schema: teams, services, ticks, flags, checker results, submissions, scores,
//! announcements, the audit log, the drill's state and organiser accounts.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    Slug,
    NameEn,
    NameZh,
    Role,
    Network,
    Nop,
    TokenHash,
    TokenPrefix,
}

#[derive(DeriveIden)]
enum Services {
    Table,
    Id,
    Slug,
    NameEn,
    NameZh,
}

#[derive(DeriveIden)]
enum Ticks {
    Table,
    Tick,
    OpenedAt,
    ClosedAt,
    Scored,
    ScoredAt,
}

#[derive(DeriveIden)]
enum Flags {
    Table,
    Id,
    Tick,
    Team,
    Service,
    Store,
    Flag,
    FlagId,
    State,
    PlantedAt,
}

#[derive(DeriveIden)]
enum CheckResults {
    Table,
    Id,
    Tick,
    Team,
    Service,
    Action,
    Store,
    Verdict,
    Message,
    Log,
    DurationMs,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Submissions {
    Table,
    Id,
    Attacker,
    Flag,
    Victim,
    Service,
    Store,
    TickPlanted,
    TickSubmitted,
    SubmittedAt,
}

#[derive(DeriveIden)]
enum Scores {
    Table,
    Tick,
    Team,
    Attack,
    Defence,
    Sla,
    Total,
}

#[derive(DeriveIden)]
enum Announcements {
    Table,
    Id,
    Title,
    Body,
    PostedAt,
    Author,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Detail,
}

#[derive(DeriveIden)]
enum DrillState {
    Table,
    Id,
    Paused,
    CurrentTick,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Name,
    Role,
    PasswordHash,
    CreatedAt,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Restrict)
        .on_update(ForeignKeyAction::Restrict)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Team and service ids are chosen by the scenario (they appear in flags and
        // addresses), so they are plain primary keys, never generated.
        m.create_table(
            Table::create()
                .table(Teams::Table)
                .col(integer(Teams::Id).primary_key())
                .col(string_uniq(Teams::Slug))
                .col(string(Teams::NameEn))
                .col(string(Teams::NameZh))
                .col(string(Teams::Role))
                .col(string(Teams::Network))
                .col(boolean(Teams::Nop).default(false))
                .col(text_null(Teams::TokenHash))
                // Non-secret first characters of the token: finds the one hash to verify.
                .col(string_null(Teams::TokenPrefix))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_teams_token_prefix").table(Teams::Table).col(Teams::TokenPrefix).take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Services::Table)
                .col(integer(Services::Id).primary_key())
                .col(string_uniq(Services::Slug))
                .col(string(Services::NameEn))
                .col(string(Services::NameZh))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Ticks::Table)
                .col(integer(Ticks::Tick).primary_key())
                .col(timestamp_with_time_zone(Ticks::OpenedAt))
                .col(timestamp_with_time_zone_null(Ticks::ClosedAt))
                .col(boolean(Ticks::Scored).default(false))
                .col(timestamp_with_time_zone_null(Ticks::ScoredAt))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Flags::Table)
                .col(pk_auto(Flags::Id))
                .col(integer(Flags::Tick))
                .col(integer(Flags::Team))
                .col(integer(Flags::Service))
                .col(integer(Flags::Store))
                .col(text_uniq(Flags::Flag))
                .col(text_null(Flags::FlagId))
                .col(blob_null(Flags::State))
                .col(timestamp_with_time_zone(Flags::PlantedAt))
                .foreign_key(&mut fk("fk_flags_team", (Flags::Table, Flags::Team), (Teams::Table, Teams::Id)))
                .foreign_key(&mut fk(
                    "fk_flags_service",
                    (Flags::Table, Flags::Service),
                    (Services::Table, Services::Id),
                ))
                .take(),
        )
        .await?;
        // `get` reads a team's flags of past ticks; attack info lists flag ids per tick range.
        m.create_index(
            Index::create()
                .name("idx_flags_tick_team_service_store")
                .table(Flags::Table)
                .col(Flags::Tick)
                .col(Flags::Team)
                .col(Flags::Service)
                .col(Flags::Store)
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CheckResults::Table)
                .col(pk_auto(CheckResults::Id))
                .col(integer(CheckResults::Tick))
                .col(integer(CheckResults::Team))
                .col(integer(CheckResults::Service))
                .col(string(CheckResults::Action))
                .col(integer_null(CheckResults::Store))
                .col(string(CheckResults::Verdict))
                .col(text(CheckResults::Message))
                .col(text(CheckResults::Log))
                .col(big_integer(CheckResults::DurationMs))
                .col(timestamp_with_time_zone(CheckResults::RecordedAt))
                .foreign_key(&mut fk(
                    "fk_check_results_team",
                    (CheckResults::Table, CheckResults::Team),
                    (Teams::Table, Teams::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_check_results_service",
                    (CheckResults::Table, CheckResults::Service),
                    (Services::Table, Services::Id),
                ))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_check_results_tick_team_service")
                .table(CheckResults::Table)
                .col(CheckResults::Tick)
                .col(CheckResults::Team)
                .col(CheckResults::Service)
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Submissions::Table)
                .col(pk_auto(Submissions::Id))
                .col(integer(Submissions::Attacker))
                .col(text(Submissions::Flag))
                .col(integer(Submissions::Victim))
                .col(integer(Submissions::Service))
                .col(integer(Submissions::Store))
                .col(integer(Submissions::TickPlanted))
                .col(integer(Submissions::TickSubmitted))
                .col(timestamp_with_time_zone(Submissions::SubmittedAt))
                .foreign_key(&mut fk(
                    "fk_submissions_attacker",
                    (Submissions::Table, Submissions::Attacker),
                    (Teams::Table, Teams::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_submissions_victim",
                    (Submissions::Table, Submissions::Victim),
                    (Teams::Table, Teams::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_submissions_service",
                    (Submissions::Table, Submissions::Service),
                    (Services::Table, Services::Id),
                ))
                .take(),
        )
        .await?;
        // The constraint that makes a capture count once, whatever the concurrency.
        m.create_index(
            Index::create()
                .name("uq_submissions_attacker_flag")
                .table(Submissions::Table)
                .col(Submissions::Attacker)
                .col(Submissions::Flag)
                .unique()
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_submissions_tick_submitted")
                .table(Submissions::Table)
                .col(Submissions::TickSubmitted)
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_submissions_victim_service")
                .table(Submissions::Table)
                .col(Submissions::Victim)
                .col(Submissions::Service)
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Scores::Table)
                .col(integer(Scores::Tick))
                .col(integer(Scores::Team))
                .col(double(Scores::Attack))
                .col(double(Scores::Defence))
                .col(double(Scores::Sla))
                .col(double(Scores::Total))
                .primary_key(Index::create().col(Scores::Tick).col(Scores::Team))
                .foreign_key(&mut fk("fk_scores_team", (Scores::Table, Scores::Team), (Teams::Table, Teams::Id)))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Announcements::Table)
                .col(pk_auto(Announcements::Id))
                .col(text(Announcements::Title))
                .col(text(Announcements::Body))
                .col(timestamp_with_time_zone(Announcements::PostedAt))
                .col(string(Announcements::Author))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(pk_auto(AuditLog::Id))
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(text(AuditLog::Detail))
                .take(),
        )
        .await?;

        // One row (id 1) holds the drill's mutable state.
        m.create_table(
            Table::create()
                .table(DrillState::Table)
                .col(integer(DrillState::Id).primary_key())
                .col(boolean(DrillState::Paused).default(false))
                .col(integer_null(DrillState::CurrentTick))
                .col(timestamp_with_time_zone(DrillState::UpdatedAt))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Accounts::Table)
                .col(pk_auto(Accounts::Id))
                .col(string_uniq(Accounts::Name))
                .col(string(Accounts::Role))
                .col(text(Accounts::PasswordHash))
                .col(timestamp_with_time_zone(Accounts::CreatedAt))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Accounts::Table.into_iden(),
            DrillState::Table.into_iden(),
            AuditLog::Table.into_iden(),
            Announcements::Table.into_iden(),
            Scores::Table.into_iden(),
            Submissions::Table.into_iden(),
            CheckResults::Table.into_iden(),
            Flags::Table.into_iden(),
            Ticks::Table.into_iden(),
            Services::Table.into_iden(),
            Teams::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).take()).await?;
        }
        Ok(())
    }
}
