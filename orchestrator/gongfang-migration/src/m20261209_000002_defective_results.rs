//! Checker results organisers marked defective: one row per tick, team and service whose
//! verdict scoring must not count against the team (a checker bug, a platform fault), with who
//! marked it and why.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, pk_auto, string, text, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DefectiveResults {
    Table,
    Id,
    Tick,
    Team,
    Service,
    Reason,
    MarkedBy,
    MarkedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DefectiveResults::Table)
                .col(pk_auto(DefectiveResults::Id))
                .col(integer(DefectiveResults::Tick))
                .col(integer(DefectiveResults::Team))
                .col(integer(DefectiveResults::Service))
                .col(text(DefectiveResults::Reason))
                .col(string(DefectiveResults::MarkedBy))
                .col(timestamp_with_time_zone(DefectiveResults::MarkedAt))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_defective_results_cell")
                .table(DefectiveResults::Table)
                .col(DefectiveResults::Tick)
                .col(DefectiveResults::Team)
                .col(DefectiveResults::Service)
                .unique()
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DefectiveResults::Table).to_owned()).await
    }
}
