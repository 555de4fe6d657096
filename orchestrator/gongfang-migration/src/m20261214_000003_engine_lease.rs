//! The engine's lease (`engine_lease`): one row naming the process that runs the drill's engine
//! (a random holder id, its host and process id), since when, and when it last said it was
//! alive. A second engine on the same drill refuses to start while the lease is fresh.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EngineLease {
    Table,
    Id,
    Holder,
    Host,
    Pid,
    AcquiredAt,
    RenewedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(EngineLease::Table)
                .col(integer(EngineLease::Id).primary_key())
                .col(string(EngineLease::Holder))
                .col(string(EngineLease::Host))
                .col(big_integer(EngineLease::Pid))
                .col(timestamp_with_time_zone(EngineLease::AcquiredAt))
                .col(timestamp_with_time_zone(EngineLease::RenewedAt))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(EngineLease::Table).take()).await
    }
}
