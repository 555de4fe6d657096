//! Attack and defence reports: the reports teams file, their evidence files, and the judges'
//! rulings (a first ruling and at most one on appeal, each once: a unique key decides).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Services {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    Team,
    Kind,
    TargetTeam,
    Service,
    WindowFrom,
    WindowTo,
    Technique,
    AttackId,
    Description,
    EvidenceText,
    TracedAddress,
    TracedTeam,
    FiledAt,
    Status,
    AppealReason,
    AppealedAt,
}

#[derive(DeriveIden)]
enum ReportEvidence {
    Table,
    Id,
    Report,
    FileName,
    ContentType,
    Size,
    Sha256,
    Data,
}

#[derive(DeriveIden)]
enum ReportRulings {
    Table,
    Id,
    Report,
    Stage,
    Judge,
    JudgeAccount,
    Valid,
    Points,
    Reason,
    Tick,
    RuledAt,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Restrict)
        .on_update(ForeignKeyAction::Restrict)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Reports::Table)
                .col(pk_auto(Reports::Id))
                .col(integer(Reports::Team))
                .col(string(Reports::Kind))
                .col(integer_null(Reports::TargetTeam))
                .col(integer(Reports::Service))
                .col(timestamp_with_time_zone(Reports::WindowFrom))
                .col(timestamp_with_time_zone(Reports::WindowTo))
                .col(text(Reports::Technique))
                .col(string_null(Reports::AttackId))
                .col(text(Reports::Description))
                .col(text(Reports::EvidenceText))
                .col(string_null(Reports::TracedAddress))
                .col(integer_null(Reports::TracedTeam))
                .col(timestamp_with_time_zone(Reports::FiledAt))
                // pending → ruled → appealed → final; the store moves it with conditional
                // updates, so two judges racing on one report cannot both rule.
                .col(string(Reports::Status))
                .col(text_null(Reports::AppealReason))
                .col(timestamp_with_time_zone_null(Reports::AppealedAt))
                .foreign_key(&mut fk("fk_reports_team", (Reports::Table, Reports::Team), (Teams::Table, Teams::Id)))
                .foreign_key(&mut fk(
                    "fk_reports_target_team",
                    (Reports::Table, Reports::TargetTeam),
                    (Teams::Table, Teams::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_reports_traced_team",
                    (Reports::Table, Reports::TracedTeam),
                    (Teams::Table, Teams::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_reports_service",
                    (Reports::Table, Reports::Service),
                    (Services::Table, Services::Id),
                ))
                .take(),
        )
        .await?;
        m.create_index(Index::create().name("idx_reports_team").table(Reports::Table).col(Reports::Team).take())
            .await?;
        m.create_index(Index::create().name("idx_reports_status").table(Reports::Table).col(Reports::Status).take())
            .await?;

        m.create_table(
            Table::create()
                .table(ReportEvidence::Table)
                .col(pk_auto(ReportEvidence::Id))
                .col(integer(ReportEvidence::Report))
                .col(string(ReportEvidence::FileName))
                .col(string(ReportEvidence::ContentType))
                .col(big_integer(ReportEvidence::Size))
                .col(string(ReportEvidence::Sha256))
                .col(blob(ReportEvidence::Data))
                .foreign_key(&mut fk(
                    "fk_report_evidence_report",
                    (ReportEvidence::Table, ReportEvidence::Report),
                    (Reports::Table, Reports::Id),
                ))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_report_evidence_report")
                .table(ReportEvidence::Table)
                .col(ReportEvidence::Report)
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ReportRulings::Table)
                .col(pk_auto(ReportRulings::Id))
                .col(integer(ReportRulings::Report))
                .col(string(ReportRulings::Stage))
                .col(string(ReportRulings::Judge))
                .col(integer(ReportRulings::JudgeAccount))
                .col(boolean(ReportRulings::Valid))
                .col(integer(ReportRulings::Points))
                .col(text(ReportRulings::Reason))
                .col(integer(ReportRulings::Tick))
                .col(timestamp_with_time_zone(ReportRulings::RuledAt))
                .foreign_key(&mut fk(
                    "fk_report_rulings_report",
                    (ReportRulings::Table, ReportRulings::Report),
                    (Reports::Table, Reports::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_report_rulings_judge",
                    (ReportRulings::Table, ReportRulings::JudgeAccount),
                    (Accounts::Table, Accounts::Id),
                ))
                .take(),
        )
        .await?;
        // One first ruling and one appeal ruling per report, whatever the concurrency.
        m.create_index(
            Index::create()
                .name("uq_report_rulings_report_stage")
                .table(ReportRulings::Table)
                .col(ReportRulings::Report)
                .col(ReportRulings::Stage)
                .unique()
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [ReportRulings::Table.into_iden(), ReportEvidence::Table.into_iden(), Reports::Table.into_iden()] {
            m.drop_table(Table::drop().table(table).take()).await?;
        }
        Ok(())
    }
}
