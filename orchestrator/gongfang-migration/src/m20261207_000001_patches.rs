//! Submitted patches: every patch a team sent with its bytes and its way through the build,
//! staging and deployment; the build folders they make (content-addressed); and the versions
//! each team's service has run.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, blob, boolean, integer, integer_null, pk_auto, string, string_null, text, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Patches {
    Table,
    Id,
    Team,
    Service,
    Version,
    Kind,
    Sha256,
    Size,
    Body,
    Source,
    Status,
    Message,
    Checks,
    Exploit,
    SubmittedAt,
    DecidedAt,
}

#[derive(DeriveIden)]
enum PatchSources {
    Table,
    Id,
    Sha256,
    Service,
    Base,
    Archive,
    AddedAt,
}

#[derive(DeriveIden)]
enum Deployments {
    Table,
    Id,
    Team,
    Service,
    Version,
    Patch,
    Cause,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Patches::Table)
                .col(pk_auto(Patches::Id))
                .col(integer(Patches::Team))
                .col(integer(Patches::Service))
                .col(integer(Patches::Version))
                .col(string(Patches::Kind))
                .col(string(Patches::Sha256))
                .col(big_integer(Patches::Size))
                .col(blob(Patches::Body))
                .col(string_null(Patches::Source))
                .col(string(Patches::Status))
                .col(text(Patches::Message))
                .col(text(Patches::Checks))
                .col(string_null(Patches::Exploit))
                .col(timestamp_with_time_zone(Patches::SubmittedAt))
                .col(timestamp_with_time_zone_null(Patches::DecidedAt))
                .take(),
        )
        .await?;
        // The queue is read by status in submission order; a team's patches by team.
        m.create_index(
            Index::create()
                .name("idx_patches_status")
                .table(Patches::Table)
                .col(Patches::Status)
                .col(Patches::Id)
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_patches_team")
                .table(Patches::Table)
                .col(Patches::Team)
                .col(Patches::Service)
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PatchSources::Table)
                .col(pk_auto(PatchSources::Id))
                .col(string(PatchSources::Sha256))
                .col(integer(PatchSources::Service))
                .col(boolean(PatchSources::Base))
                .col(blob(PatchSources::Archive))
                .col(timestamp_with_time_zone(PatchSources::AddedAt))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_patch_sources_sha")
                .table(PatchSources::Table)
                .col(PatchSources::Service)
                .col(PatchSources::Sha256)
                .unique()
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Deployments::Table)
                .col(pk_auto(Deployments::Id))
                .col(integer(Deployments::Team))
                .col(integer(Deployments::Service))
                .col(integer(Deployments::Version))
                .col(integer_null(Deployments::Patch))
                .col(string(Deployments::Cause))
                .col(timestamp_with_time_zone(Deployments::At))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_deployments_team")
                .table(Deployments::Table)
                .col(Deployments::Team)
                .col(Deployments::Service)
                .col(Deployments::Id)
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Deployments::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PatchSources::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Patches::Table).to_owned()).await
    }
}
