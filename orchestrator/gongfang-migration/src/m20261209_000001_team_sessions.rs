//! Teams' browser sessions: a team logs in to its portal with its token and gets a session
//! like an account's, stored as a keyed hash of its token, ended when the team's token is
//! rotated or the team removed.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, pk_auto, string_uniq, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TeamSessions {
    Table,
    Id,
    TokenHash,
    Team,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TeamSessions::Table)
                .col(pk_auto(TeamSessions::Id))
                .col(string_uniq(TeamSessions::TokenHash))
                .col(integer(TeamSessions::Team))
                .col(timestamp_with_time_zone(TeamSessions::CreatedAt))
                .col(timestamp_with_time_zone(TeamSessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_team_sessions_team")
                        .from(TeamSessions::Table, TeamSessions::Team)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .on_update(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_team_sessions_team").table(TeamSessions::Table).col(TeamSessions::Team).take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TeamSessions::Table).to_owned()).await
    }
}
