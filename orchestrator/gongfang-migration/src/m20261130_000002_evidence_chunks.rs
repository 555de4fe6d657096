//! Evidence files stored in chunks, written while they stream in: each upload is a row of
//! `evidence_uploads` whose bytes are `report_evidence_chunks` rows of at most a mebibyte,
//! each written in a transaction of its own, so a large upload never holds the write lock that
//! flag submissions wait on. A filed report links its evidence to the uploads
//! (`report_evidence.upload`); evidence filed before this migration keeps its bytes in
//! `report_evidence.data`, with no upload.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob, integer, integer_null, pk_auto, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum EvidenceUploads {
    Table,
    Id,
    Team,
    StartedAt,
    Size,
}

#[derive(DeriveIden)]
enum ReportEvidenceChunks {
    Table,
    Id,
    Upload,
    Seq,
    Data,
}

#[derive(DeriveIden)]
enum ReportEvidence {
    Table,
    Upload,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(EvidenceUploads::Table)
                .col(pk_auto(EvidenceUploads::Id))
                .col(integer(EvidenceUploads::Team))
                .col(timestamp_with_time_zone(EvidenceUploads::StartedAt))
                // Bytes written so far: what a team's unfinished uploads hold.
                .col(big_integer(EvidenceUploads::Size).default(0))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_evidence_uploads_team")
                        .from(EvidenceUploads::Table, EvidenceUploads::Team)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .on_update(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_evidence_uploads_team")
                .table(EvidenceUploads::Table)
                .col(EvidenceUploads::Team)
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ReportEvidenceChunks::Table)
                .col(pk_auto(ReportEvidenceChunks::Id))
                .col(integer(ReportEvidenceChunks::Upload))
                .col(integer(ReportEvidenceChunks::Seq))
                .col(blob(ReportEvidenceChunks::Data))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_report_evidence_chunks_upload")
                        .from(ReportEvidenceChunks::Table, ReportEvidenceChunks::Upload)
                        .to(EvidenceUploads::Table, EvidenceUploads::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .on_update(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        // One chunk per place in a file; reading a file walks this index in order.
        m.create_index(
            Index::create()
                .name("uq_report_evidence_chunks_upload_seq")
                .table(ReportEvidenceChunks::Table)
                .col(ReportEvidenceChunks::Upload)
                .col(ReportEvidenceChunks::Seq)
                .unique()
                .take(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(ReportEvidence::Table).add_column(integer_null(ReportEvidence::Upload)).take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_report_evidence_upload")
                .table(ReportEvidence::Table)
                .col(ReportEvidence::Upload)
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_report_evidence_upload").table(ReportEvidence::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(ReportEvidence::Table).drop_column(ReportEvidence::Upload).take()).await?;
        m.drop_table(Table::drop().table(ReportEvidenceChunks::Table).take()).await?;
        m.drop_table(Table::drop().table(EvidenceUploads::Table).take()).await
    }
}
