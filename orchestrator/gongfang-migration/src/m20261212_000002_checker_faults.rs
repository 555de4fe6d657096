//! What kind of failure a `checker-error` result was (`timeout`, `crash`, `limit`, `platform`),
//! stored with the result so the console and `/metrics` tell timeouts from crashes; null for
//! every other verdict and for results stored before.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CheckResults {
    Table,
    Fault,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(CheckResults::Table).add_column(string_null(CheckResults::Fault)).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(CheckResults::Table).drop_column(CheckResults::Fault).to_owned()).await
    }
}
