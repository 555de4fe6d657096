//! The gateway's translation log: each connection from a team's VPN peer into the game networks
//! that the gateway passed on (masqueraded when the drill anonymises), so judges and organisers
//! can tell who connected to a service that saw only the gateway.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, pk_auto, string, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum VpnTranslations {
    Table,
    Id,
    At,
    Team,
    Peer,
    Target,
    Port,
    SeenAs,
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
                .table(VpnTranslations::Table)
                .col(pk_auto(VpnTranslations::Id))
                .col(timestamp_with_time_zone(VpnTranslations::At))
                .col(integer(VpnTranslations::Team))
                .col(string(VpnTranslations::Peer))
                .col(string(VpnTranslations::Target))
                .col(integer(VpnTranslations::Port))
                .col(string(VpnTranslations::SeenAs))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_vpn_translations_team")
                        .from(VpnTranslations::Table, VpnTranslations::Team)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .on_update(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        // Judges read one team's connections around a time; organisers read the newest of all.
        m.create_index(
            Index::create()
                .name("idx_vpn_translations_team_at")
                .table(VpnTranslations::Table)
                .col(VpnTranslations::Team)
                .col(VpnTranslations::At)
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_vpn_translations_at")
                .table(VpnTranslations::Table)
                .col(VpnTranslations::At)
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(VpnTranslations::Table).to_owned()).await
    }
}
