//! Under the rule-based preset (`scoring = "rules"`) a valid ruling, and a judge's blind score,
//! records what was found (an attack type and weakness, or the attack a defence answers with
//! its rubric shares and bonus): `finding`, as JSON, on `report_rulings` and `report_scores`;
//! null for every other ruling.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::text_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReportRulings {
    Table,
    Finding,
}

#[derive(DeriveIden)]
enum ReportScores {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [ReportRulings::Table.into_iden(), ReportScores::Table.into_iden()] {
            m.alter_table(Table::alter().table(table).add_column(text_null(ReportRulings::Finding)).take()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [ReportRulings::Table.into_iden(), ReportScores::Table.into_iden()] {
            m.alter_table(Table::alter().table(table).drop_column(ReportRulings::Finding).take()).await?;
        }
        Ok(())
    }
}
