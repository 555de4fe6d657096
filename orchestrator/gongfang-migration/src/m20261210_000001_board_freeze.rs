//! The public scoreboard's freeze: organisers stop the public board at a tick for the last
//! hour of a drill (`frozen_through`, with when they did), and lift it to reveal the result.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DrillState {
    Table,
    FrozenThrough,
    FrozenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(DrillState::Table).add_column(integer_null(DrillState::FrozenThrough)).take(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(DrillState::Table)
                .add_column(timestamp_with_time_zone_null(DrillState::FrozenAt))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [DrillState::FrozenThrough, DrillState::FrozenAt] {
            m.alter_table(Table::alter().table(DrillState::Table).drop_column(column).take()).await?;
        }
        Ok(())
    }
}
