//! WireGuard access: the gateway's own key pair, made once with the drill's database, and the
//! teams' peers (their public keys and tunnel addresses).
//!
//! A peer's private key is never stored: it leaves the platform only in the config file handed
//! to the team. The gateway's private key is the platform's own, like the token server key; it
//! lives with the database so every team's config keeps working across restarts, and a
//! rehearsal's database has a key of its own.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, pk_auto, string, string_uniq, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum VpnGateway {
    Table,
    Id,
    PrivateKey,
}

#[derive(DeriveIden)]
enum VpnPeers {
    Table,
    Id,
    Team,
    Peer,
    PublicKey,
    Address,
    IssuedAt,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

/// The one row of `vpn_gateway`.
const ROW: i32 = 1;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(VpnGateway::Table)
                .col(integer(VpnGateway::Id).primary_key())
                .col(string(VpnGateway::PrivateKey))
                .take(),
        )
        .await?;
        // 32 bytes from the thread's CSPRNG (ChaCha, seeded by the OS), as 64 lowercase hex
        // digits; clamped into an X25519 key where it is used, as `wg genkey` clamps.
        let key: [u8; 32] = rand::random();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        m.exec_stmt(
            Query::insert()
                .into_table(VpnGateway::Table)
                .columns([VpnGateway::Id, VpnGateway::PrivateKey])
                .values_panic([ROW.into(), hex.into()])
                .to_owned(),
        )
        .await?;

        // One row per issued peer: a team's peer numbers are 1, 2, …; a public key names one
        // peer only. Rotating replaces the key and address in place and sets `rotated_at`.
        m.create_table(
            Table::create()
                .table(VpnPeers::Table)
                .col(pk_auto(VpnPeers::Id))
                .col(integer(VpnPeers::Team))
                .col(integer(VpnPeers::Peer))
                .col(string_uniq(VpnPeers::PublicKey))
                .col(string(VpnPeers::Address))
                .col(timestamp_with_time_zone(VpnPeers::IssuedAt))
                .col(ColumnDef::new(VpnPeers::RotatedAt).timestamp_with_time_zone().null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_vpn_peers_team")
                        .from(VpnPeers::Table, VpnPeers::Team)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .on_update(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_vpn_peers_team_peer")
                .table(VpnPeers::Table)
                .col(VpnPeers::Team)
                .col(VpnPeers::Peer)
                .unique()
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(VpnPeers::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(VpnGateway::Table).to_owned()).await
    }
}
