//! Manual score adjustments: points an organiser added to or took from a team's total, with
//! the mandatory reason, who did it, and the scored tick it counts from.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{double, integer, pk_auto, string, text, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScoreAdjustments {
    Table,
    Id,
    Team,
    Points,
    Reason,
    Tick,
    MadeBy,
    MadeAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ScoreAdjustments::Table)
                .col(pk_auto(ScoreAdjustments::Id))
                .col(integer(ScoreAdjustments::Team))
                .col(double(ScoreAdjustments::Points))
                .col(text(ScoreAdjustments::Reason))
                .col(integer(ScoreAdjustments::Tick))
                .col(string(ScoreAdjustments::MadeBy))
                .col(timestamp_with_time_zone(ScoreAdjustments::MadeAt))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ScoreAdjustments::Table).to_owned()).await
    }
}
