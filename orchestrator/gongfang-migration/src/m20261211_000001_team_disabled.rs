//! Teams taken out of a running drill by organisers: when (`disabled_at`), null while the team
//! plays. A disabled team is not checked, its token and sessions stop working, and its history
//! stays.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Teams {
    Table,
    DisabledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Teams::Table).add_column(timestamp_with_time_zone_null(Teams::DisabledAt)).take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Teams::Table).drop_column(Teams::DisabledAt).take()).await
    }
}
