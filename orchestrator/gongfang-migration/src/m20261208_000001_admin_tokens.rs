//! Organisers' own API tokens, announcements in both of the drill's languages, and the time
//! organisers added to the drill's end.
//!
//! An account holds at most one API token, stored as a keyed hash (like team and session
//! tokens) with the time it was issued; revoking it clears both. Announcements gain an optional
//! Hong Kong Chinese title and body beside the English ones. The drill's state counts the
//! seconds the end was extended by (0: the scenario's duration).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_null, text_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    ApiTokenHash,
    ApiTokenIssuedAt,
}

#[derive(DeriveIden)]
enum Announcements {
    Table,
    TitleZh,
    BodyZh,
}

#[derive(DeriveIden)]
enum DrillState {
    Table,
    ExtendedSecs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        m.alter_table(Table::alter().table(Accounts::Table).add_column(string_null(Accounts::ApiTokenHash)).take())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Accounts::Table)
                .add_column(timestamp_with_time_zone_null(Accounts::ApiTokenIssuedAt))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_accounts_api_token_hash")
                .table(Accounts::Table)
                .col(Accounts::ApiTokenHash)
                .unique()
                .take(),
        )
        .await?;
        m.alter_table(Table::alter().table(Announcements::Table).add_column(text_null(Announcements::TitleZh)).take())
            .await?;
        m.alter_table(Table::alter().table(Announcements::Table).add_column(text_null(Announcements::BodyZh)).take())
            .await?;
        m.alter_table(
            Table::alter().table(DrillState::Table).add_column(big_integer(DrillState::ExtendedSecs).default(0)).take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_accounts_api_token_hash").table(Accounts::Table).to_owned()).await?;
        for column in [Accounts::ApiTokenHash, Accounts::ApiTokenIssuedAt] {
            m.alter_table(Table::alter().table(Accounts::Table).drop_column(column).take()).await?;
        }
        for column in [Announcements::TitleZh, Announcements::BodyZh] {
            m.alter_table(Table::alter().table(Announcements::Table).drop_column(column).take()).await?;
        }
        m.alter_table(Table::alter().table(DrillState::Table).drop_column(DrillState::ExtendedSecs).take()).await?;
        Ok(())
    }
}
