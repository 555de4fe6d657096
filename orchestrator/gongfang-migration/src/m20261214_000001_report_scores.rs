//! Judges' blind scores (`report_scores`): in a drill where two judges score each report
//! (`[reports] judges = 2`), each judge's score of a report before it is ruled, one per judge
//! and report (a unique key decides), kept after the ruling so the panel's work can be read back.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReportScores {
    Table,
    Id,
    Report,
    Judge,
    JudgeAccount,
    Valid,
    Points,
    Reason,
    ReasonCodes,
    ScoredAt,
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ReportScores::Table)
                .col(pk_auto(ReportScores::Id))
                .col(integer(ReportScores::Report))
                .col(string(ReportScores::Judge))
                .col(integer(ReportScores::JudgeAccount))
                .col(boolean(ReportScores::Valid))
                .col(integer(ReportScores::Points))
                .col(text(ReportScores::Reason))
                .col(text(ReportScores::ReasonCodes))
                .col(timestamp_with_time_zone(ReportScores::ScoredAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_report_scores_report")
                        .from(ReportScores::Table, ReportScores::Report)
                        .to(Reports::Table, Reports::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_report_scores_judge")
                        .from(ReportScores::Table, ReportScores::JudgeAccount)
                        .to(Accounts::Table, Accounts::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        // One score per judge and report, whatever the concurrency.
        m.create_index(
            Index::create()
                .name("uq_report_scores_report_judge")
                .table(ReportScores::Table)
                .col(ReportScores::Report)
                .col(ReportScores::JudgeAccount)
                .unique()
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ReportScores::Table).take()).await
    }
}
