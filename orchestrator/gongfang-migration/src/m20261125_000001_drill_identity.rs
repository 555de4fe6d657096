//! The drill's identity: random bytes made once, when the drill's database is created, and
//! never changed. Flag keys are derived from it, so a rehearsal (another database) with the
//! same scenario and secret never mints the real drill's flags.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, string};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DrillIdentity {
    Table,
    Id,
    DrillId,
}

/// The one row of `drill_identity`.
const ROW: i32 = 1;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DrillIdentity::Table)
                .col(integer(DrillIdentity::Id).primary_key())
                .col(string(DrillIdentity::DrillId))
                .take(),
        )
        .await?;
        // 16 bytes from the thread's CSPRNG, as 32 lowercase hex digits.
        let id: [u8; 16] = rand::random();
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        m.exec_stmt(
            Query::insert()
                .into_table(DrillIdentity::Table)
                .columns([DrillIdentity::Id, DrillIdentity::DrillId])
                .values_panic([ROW.into(), hex.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DrillIdentity::Table).to_owned()).await
    }
}
