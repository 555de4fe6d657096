//! An index of checker results by team, then tick: one team's status history (`/api/history/TEAM`,
//! the team's portal) reads its own rows without walking every team's.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CheckResults {
    Table,
    Team,
    Tick,
}

const NAME: &str = "idx_check_results_team_tick";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(NAME)
                .table(CheckResults::Table)
                .col(CheckResults::Team)
                .col(CheckResults::Tick)
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(CheckResults::Table).to_owned()).await
    }
}
