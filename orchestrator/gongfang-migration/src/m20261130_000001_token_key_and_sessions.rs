//! The server key that team tokens and session tokens are hashed under, made once with the
//! drill's database, and the judges' (and organisers') login sessions.
//!
//! Team tokens are long random secrets, so a keyed hash (HMAC-SHA256) protects them as well
//! as a slow password hash would, at a tiny fraction of the cost of refusing a wrong one. The
//! key lives with the database it protects: a copy of the database without this table's row
//! cannot tell a real token from a guess, and a rehearsal's database has a key of its own.
//! Tokens stored as argon2id hashes before this migration never match again and must be
//! re-issued.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, pk_auto, string, string_uniq, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServerKey {
    Table,
    Id,
    TokenKey,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    Account,
    Role,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

/// The one row of `server_key`.
const ROW: i32 = 1;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ServerKey::Table)
                .col(integer(ServerKey::Id).primary_key())
                .col(string(ServerKey::TokenKey))
                .take(),
        )
        .await?;
        // 32 bytes from the thread's CSPRNG (ChaCha, seeded by the OS), as 64 lowercase hex digits.
        let key: [u8; 32] = rand::random();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        m.exec_stmt(
            Query::insert()
                .into_table(ServerKey::Table)
                .columns([ServerKey::Id, ServerKey::TokenKey])
                .values_panic([ROW.into(), hex.into()])
                .to_owned(),
        )
        .await?;

        // A session row holds the keyed hash of its token, never the token. The role it was
        // opened for is kept so a role change ends it; deleting the account deletes its sessions.
        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(pk_auto(Sessions::Id))
                .col(string_uniq(Sessions::TokenHash))
                .col(integer(Sessions::Account))
                .col(string(Sessions::Role))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sessions_account")
                        .from(Sessions::Table, Sessions::Account)
                        .to(Accounts::Table, Accounts::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .on_update(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_sessions_account").table(Sessions::Table).col(Sessions::Account).take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Sessions::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(ServerKey::Table).to_owned()).await
    }
}
