//! The SSH keys that open a team's shell entry: those `gongfang vpn config` generates with each
//! peer (replaced when the peer's config is rotated) and those a team registers. A public key
//! belongs to one team only, so a key alone tells whose shell it opens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, integer_null, pk_auto, string, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ShellKeys {
    Table,
    Id,
    Team,
    PublicKey,
    Label,
    Peer,
    AddedAt,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ShellKeys::Table)
                .col(pk_auto(ShellKeys::Id))
                .col(integer(ShellKeys::Team))
                // `ssh-ed25519 AAAA…`: algorithm and key, without the comment.
                .col(string(ShellKeys::PublicKey).unique_key())
                .col(string(ShellKeys::Label))
                // The `vpn config` peer it was generated with; none for a registered key.
                .col(integer_null(ShellKeys::Peer))
                .col(timestamp_with_time_zone(ShellKeys::AddedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_shell_keys_team")
                        .from(ShellKeys::Table, ShellKeys::Team)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .on_update(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        m.create_index(Index::create().name("idx_shell_keys_team").table(ShellKeys::Table).col(ShellKeys::Team).take())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ShellKeys::Table).to_owned()).await
    }
}
