//! The moment a drill started, kept so that a restarted `gongfang up` continues the same drill
//! at the right tick when the scenario leaves the start to the organiser.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DrillState {
    Table,
    StartedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(DrillState::Table)
                .add_column(timestamp_with_time_zone_null(DrillState::StartedAt))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(DrillState::Table).drop_column(DrillState::StartedAt).take()).await
    }
}
