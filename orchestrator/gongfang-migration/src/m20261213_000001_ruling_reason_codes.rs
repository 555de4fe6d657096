//! Rulings carry reason codes from a fixed list (`duplicate`, `out-of-scope`, …) beside their
//! free-text reason: `reason_codes`, the codes' names separated by commas, empty for rulings
//! made before (or by clients that send none).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::text;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReportRulings {
    Table,
    ReasonCodes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(ReportRulings::Table).add_column(text(ReportRulings::ReasonCodes).default("")).take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(ReportRulings::Table).drop_column(ReportRulings::ReasonCodes).take()).await
    }
}
