//! The scorer's snapshot (`scorer_snapshot`): one row holding the engine's scoring state after
//! the latest scored tick, and which results were marked defective when it was taken. A
//! restarted engine continues from it instead of scoring every tick of the drill again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScorerSnapshot {
    Table,
    Id,
    Tick,
    Marks,
    State,
    TakenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ScorerSnapshot::Table)
                .col(integer(ScorerSnapshot::Id).primary_key())
                .col(integer(ScorerSnapshot::Tick))
                .col(string(ScorerSnapshot::Marks))
                .col(blob(ScorerSnapshot::State))
                .col(timestamp_with_time_zone(ScorerSnapshot::TakenAt))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ScorerSnapshot::Table).take()).await
    }
}
