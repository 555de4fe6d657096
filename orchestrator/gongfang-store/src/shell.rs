//! The SSH keys that open a team's shell entry: generated with each VPN peer by
//! `gongfang vpn config` (and replaced with it), or registered for the team. Only public keys
//! are stored; a key belongs to one team.

use chrono::{DateTime, Utc};
use gongfang_core::TeamId;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::Store;
use crate::entity::teams;
use crate::error::{Result, StoreError, corrupt};

pub(crate) mod entity {
    #![allow(missing_debug_implementations)]

    pub mod shell_keys {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "shell_keys")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub team: i32,
            /// `ssh-ed25519 AAAA…`, without a comment.
            pub public_key: String,
            pub label: String,
            pub peer: Option<i32>,
            pub added_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::shell_keys;

/// A key that opens a team's shell entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellKey {
    pub id: i64,
    pub team: TeamId,
    /// OpenSSH's one-line form without a comment: `ssh-ed25519 AAAA…`.
    pub public_key: String,
    /// What it is, for people: `peer 2`, or the label it was registered with.
    pub label: String,
    /// The VPN peer it was generated with; `None` for a registered key.
    pub peer: Option<u32>,
    pub added_at: DateTime<Utc>,
}

/// What [`Store::register_shell_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellKeyAdded {
    Added(ShellKey),
    /// The key is already stored, for this team or another: nothing changed.
    Taken(TeamId),
}

fn key_from_row(row: shell_keys::Model) -> Result<ShellKey> {
    let id = row.id;
    Ok(ShellKey {
        id: i64::from(id),
        team: TeamId(u16::try_from(row.team).map_err(|_| corrupt("shell_keys", id, "team out of range"))?),
        public_key: row.public_key,
        label: row.label,
        peer: row
            .peer
            .map(|p| u32::try_from(p).map_err(|_| corrupt("shell_keys", id, "peer out of range")))
            .transpose()?,
        added_at: row.added_at,
    })
}

/// Replaces the keys generated with a team's peers by `keys` (peer number, public key), inside
/// the transaction that issues the peers.
pub(crate) async fn replace_generated(
    txn: &impl ConnectionTrait,
    team: i32,
    keys: &[(u32, String)],
    at: DateTime<Utc>,
) -> Result<()> {
    shell_keys::Entity::delete_many()
        .filter(shell_keys::Column::Team.eq(team))
        .filter(shell_keys::Column::Peer.is_not_null())
        .exec(txn)
        .await?;
    for (peer, public_key) in keys {
        shell_keys::ActiveModel {
            team: Set(team),
            public_key: Set(public_key.clone()),
            label: Set(format!("peer {peer}")),
            peer: Set(Some(i32::try_from(*peer).map_err(|_| corrupt("shell_keys", peer, "peer number too large"))?)),
            added_at: Set(at),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Replaces the key generated with peer `peer` of `team` by `public_key` (a fresh one made
    /// with the peer's new config); a peer that had none gets one. Registered keys stay.
    #[tracing::instrument(skip(self, public_key), fields(team = team.0))]
    pub async fn replace_peer_shell_key(
        &self,
        team: TeamId,
        peer: u32,
        public_key: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let number = i32::try_from(peer).map_err(|_| corrupt("shell_keys", peer, "peer number too large"))?;
        let txn = self.write_txn().await?;
        shell_keys::Entity::delete_many()
            .filter(shell_keys::Column::Team.eq(i32::from(team.0)))
            .filter(shell_keys::Column::Peer.eq(number))
            .exec(&txn)
            .await?;
        shell_keys::ActiveModel {
            team: Set(i32::from(team.0)),
            public_key: Set(public_key.to_owned()),
            label: Set(format!("peer {peer}")),
            peer: Set(Some(number)),
            added_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Registers `public_key` (OpenSSH's one-line form without a comment) for the team with
    /// this slug, unless some team has it already.
    #[tracing::instrument(skip_all, fields(team = %slug))]
    pub async fn register_shell_key(
        &self,
        slug: &str,
        public_key: &str,
        label: &str,
        at: DateTime<Utc>,
    ) -> Result<ShellKeyAdded> {
        let txn = self.write_txn().await?;
        let team = teams::Entity::find()
            .filter(teams::Column::Slug.eq(slug))
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::UnknownTeam(slug.to_owned()))?;
        if let Some(owner) =
            shell_keys::Entity::find().filter(shell_keys::Column::PublicKey.eq(public_key)).one(&txn).await?
        {
            return Ok(ShellKeyAdded::Taken(key_from_row(owner)?.team));
        }
        let row = shell_keys::ActiveModel {
            team: Set(team.id),
            public_key: Set(public_key.to_owned()),
            label: Set(label.to_owned()),
            peer: Set(None),
            added_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        key_from_row(row).map(ShellKeyAdded::Added)
    }

    /// Removes the registered key `id` of the team with this slug; `false` when it has none
    /// such. Keys generated with a peer go with the peer's rotation, not here.
    pub async fn remove_shell_key(&self, slug: &str, id: i64) -> Result<bool> {
        let team = teams::Entity::find()
            .filter(teams::Column::Slug.eq(slug))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::UnknownTeam(slug.to_owned()))?;
        let Ok(id) = i32::try_from(id) else { return Ok(false) };
        let done = shell_keys::Entity::delete_many()
            .filter(shell_keys::Column::Id.eq(id))
            .filter(shell_keys::Column::Team.eq(team.id))
            .filter(shell_keys::Column::Peer.is_null())
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected > 0)
    }

    /// The keys that open this team's shell entry, oldest first.
    pub async fn shell_keys_of(&self, team: TeamId) -> Result<Vec<ShellKey>> {
        shell_keys::Entity::find()
            .filter(shell_keys::Column::Team.eq(i32::from(team.0)))
            .order_by_asc(shell_keys::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(key_from_row)
            .collect()
    }
}
