//! WireGuard access in the database: the gateway's own private key, each team's peers by
//! public key and tunnel address, and the translation log of the connections peers made.
//!
//! A peer's private key is never stored: it leaves the platform only in the config file handed
//! to the team, once, like a token. The gateway's private key is the platform's own (like the
//! token server key) and is kept here, so teams' configs keep working across restarts.

use std::net::Ipv4Addr;

use chrono::{DateTime, Utc};
use gongfang_core::{Secret, TeamId};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::Store;
use crate::entity::teams;
use crate::error::{Result, StoreError, corrupt};

/// Entities of the tables this module alone reads.
mod entity {
    #![allow(missing_debug_implementations)]

    pub mod vpn_gateway {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "vpn_gateway")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: i32,
            /// 64 lowercase hex digits, made by the migration that created the table.
            pub private_key: String,
        }

        /// The row holds the gateway's private key: a printed row never shows it.
        impl std::fmt::Debug for Model {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Model").field("id", &self.id).field("private_key", &"<redacted>").finish()
            }
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod vpn_peers {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "vpn_peers")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub team: i32,
            /// 1, 2, … within the team.
            pub peer: i32,
            /// Base64, as `wg` shows it.
            pub public_key: String,
            pub address: String,
            pub issued_at: DateTimeUtc,
            pub rotated_at: Option<DateTimeUtc>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod vpn_translations {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "vpn_translations")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub at: DateTimeUtc,
            pub team: i32,
            pub peer: String,
            pub target: String,
            pub port: i32,
            pub seen_as: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{vpn_gateway, vpn_peers, vpn_translations};

/// The one row of `vpn_gateway`.
const GATEWAY_ROW: i32 = 1;
/// Bytes of a WireGuard key.
const KEY_LEN: usize = 32;

/// A team's peer as stored: its public key and tunnel address, never its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnPeer {
    pub team: TeamId,
    /// 1, 2, … within the team; the config file `TEAM-N.conf`.
    pub peer: u32,
    /// The peer's public key, base64 as `wg` shows it.
    pub public_key: String,
    pub address: Ipv4Addr,
    /// When the peer was first issued.
    pub issued_at: DateTime<Utc>,
    /// When its key was last replaced, if ever.
    pub rotated_at: Option<DateTime<Utc>>,
}

/// A peer to issue: its number in the team, its new public key and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVpnPeer {
    pub peer: u32,
    pub public_key: String,
    pub address: Ipv4Addr,
    /// The SSH public key generated with the peer for the team's shell entry (OpenSSH's
    /// one-line form without a comment); it replaces the one generated with the peer before.
    pub shell_key: Option<String>,
}

/// What [`Store::issue_vpn_peers`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VpnIssue {
    /// The peers were stored (new, or their keys replaced); the team's peers now.
    Issued(Vec<VpnPeer>),
    /// The team already had peers and rotation was not asked for: nothing changed; the team's
    /// peers as they are.
    AlreadyIssued(Vec<VpnPeer>),
}

/// The most translations one read returns, whatever limit is asked for.
pub const MAX_TRANSLATIONS: u32 = 1000;
/// Rows per insert statement: well under both databases' limits on bound parameters.
const TRANSLATION_CHUNK: usize = 500;

/// A connection the gateway passed from a team's peer into the game networks, as the
/// translation log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnTranslation {
    pub at: DateTime<Utc>,
    /// The team whose VPN block holds the peer.
    pub team: TeamId,
    /// The peer's tunnel address: who really connected.
    pub peer: Ipv4Addr,
    /// The service connected to.
    pub target: Ipv4Addr,
    pub port: u16,
    /// The source address the service saw (the gateway's when masqueraded).
    pub seen_as: Ipv4Addr,
}

/// A translation to record: the same fields, the team already told from the peer's address.
pub type NewVpnTranslation = VpnTranslation;

/// Which translations to read: all filters optional, newest first, at most `limit` (capped at
/// [`MAX_TRANSLATIONS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationFilter {
    pub team: Option<TeamId>,
    pub target: Option<Ipv4Addr>,
    /// From this time on, inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Before this time, exclusive.
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

impl Default for TranslationFilter {
    fn default() -> TranslationFilter {
        TranslationFilter { team: None, target: None, since: None, until: None, limit: MAX_TRANSLATIONS }
    }
}

fn translation_from_row(row: vpn_translations::Model) -> Result<VpnTranslation> {
    let key = row.id;
    let address = |text: &str, what: &str| -> Result<Ipv4Addr> {
        text.parse().map_err(|_| corrupt("vpn_translations", key, format!("{what} {text:?} is not IPv4")))
    };
    Ok(VpnTranslation {
        at: row.at,
        team: TeamId(u16::try_from(row.team).map_err(|_| corrupt("vpn_translations", key, "team out of range"))?),
        peer: address(&row.peer, "peer")?,
        target: address(&row.target, "target")?,
        port: u16::try_from(row.port).map_err(|_| corrupt("vpn_translations", key, "port out of range"))?,
        seen_as: address(&row.seen_as, "seen-as address")?,
    })
}

fn peer_from_row(row: vpn_peers::Model) -> Result<VpnPeer> {
    let key = format!("{}/{}", row.team, row.peer);
    let team = u16::try_from(row.team).map_err(|_| corrupt("vpn_peers", &key, "team out of range"))?;
    let peer = u32::try_from(row.peer).map_err(|_| corrupt("vpn_peers", &key, "peer number out of range"))?;
    let address = row
        .address
        .parse()
        .map_err(|_| corrupt("vpn_peers", &key, format!("address {:?} is not IPv4", row.address)))?;
    Ok(VpnPeer {
        team: TeamId(team),
        peer,
        public_key: row.public_key,
        address,
        issued_at: row.issued_at,
        rotated_at: row.rotated_at,
    })
}

/// The stored row of `team`'s peer number `peer`, if it has one.
async fn peer_row(txn: &sea_orm::DatabaseTransaction, team: TeamId, peer: u32) -> Result<Option<vpn_peers::Model>> {
    let Ok(number) = i32::try_from(peer) else { return Ok(None) };
    Ok(vpn_peers::Entity::find()
        .filter(vpn_peers::Column::Team.eq(i32::from(team.0)))
        .filter(vpn_peers::Column::Peer.eq(number))
        .one(txn)
        .await?)
}

/// The row of a peer issued for the first time.
fn new_peer_row(team: i32, number: i32, new: &NewVpnPeer, at: DateTime<Utc>) -> vpn_peers::ActiveModel {
    vpn_peers::ActiveModel {
        team: Set(team),
        peer: Set(number),
        public_key: Set(new.public_key.clone()),
        address: Set(new.address.to_string()),
        issued_at: Set(at),
        rotated_at: Set(None),
        ..Default::default()
    }
}

impl Store {
    /// The gateway's private key (32 bytes, to be clamped as an X25519 key), made once with
    /// the database.
    pub async fn vpn_gateway_key(&self) -> Result<Secret<[u8; KEY_LEN]>> {
        let row = vpn_gateway::Entity::find_by_id(GATEWAY_ROW).one(&self.db).await?.ok_or_else(|| {
            corrupt("vpn_gateway", GATEWAY_ROW, "missing: the database has no gateway key; run `gongfang migrate`")
        })?;
        let text = Secret::new(row.private_key);
        decode_key(text.expose())
            .map(Secret::new)
            .ok_or_else(|| corrupt("vpn_gateway", GATEWAY_ROW, "not 64 hex digits"))
    }

    /// Stores the peers of the team with this slug. A team without peers gets them; a team
    /// that has some is refused ([`VpnIssue::AlreadyIssued`]) unless `rotate`, which replaces
    /// the public key and address of each numbered peer in place (the old keys are gone),
    /// adds the new numbers and drops the numbers no longer given. One transaction.
    #[tracing::instrument(skip_all, fields(team = %slug, peers = peers.len(), rotate))]
    pub async fn issue_vpn_peers(
        &self,
        slug: &str,
        peers: &[NewVpnPeer],
        rotate: bool,
        at: DateTime<Utc>,
    ) -> Result<VpnIssue> {
        let txn = self.write_txn().await?;
        let team = teams::Entity::find()
            .filter(teams::Column::Slug.eq(slug))
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::UnknownTeam(slug.to_owned()))?;
        let existing = vpn_peers::Entity::find()
            .filter(vpn_peers::Column::Team.eq(team.id))
            .order_by_asc(vpn_peers::Column::Peer)
            .all(&txn)
            .await?;
        if !existing.is_empty() && !rotate {
            let peers = existing.into_iter().map(peer_from_row).collect::<Result<_>>()?;
            return Ok(VpnIssue::AlreadyIssued(peers));
        }
        for old in &existing {
            if !peers.iter().any(|p| i64::from(p.peer) == i64::from(old.peer)) {
                vpn_peers::Entity::delete_by_id(old.id).exec(&txn).await?;
            }
        }
        for new in peers {
            let number =
                i32::try_from(new.peer).map_err(|_| corrupt("vpn_peers", new.peer, "peer number too large"))?;
            match existing.iter().find(|old| old.peer == number) {
                Some(old) => {
                    let mut row: vpn_peers::ActiveModel = old.clone().into();
                    row.public_key = Set(new.public_key.clone());
                    row.address = Set(new.address.to_string());
                    row.rotated_at = Set(Some(at));
                    row.update(&txn).await?;
                }
                None => {
                    new_peer_row(team.id, number, new, at).insert(&txn).await?;
                }
            }
        }
        let shell_keys: Vec<(u32, String)> =
            peers.iter().filter_map(|p| Some((p.peer, p.shell_key.clone()?))).collect();
        crate::shell::replace_generated(&txn, team.id, &shell_keys, at).await?;
        let stored = vpn_peers::Entity::find()
            .filter(vpn_peers::Column::Team.eq(team.id))
            .order_by_asc(vpn_peers::Column::Peer)
            .all(&txn)
            .await?
            .into_iter()
            .map(peer_from_row)
            .collect::<Result<Vec<_>>>()?;
        txn.commit().await?;
        tracing::info!(rotated = !existing.is_empty(), "VPN peers issued");
        Ok(VpnIssue::Issued(stored))
    }

    /// Replaces the public key of one issued peer of a team (a team's download of a fresh
    /// config from its portal): its number and address stay, its old key is gone. Returns the
    /// peer as it was and as it is now; `None` when the team has no such peer. One
    /// transaction, so two downloads at once leave one key, and each sees the key it replaced.
    #[tracing::instrument(skip(self, public_key), fields(team = team.0))]
    pub async fn rotate_vpn_peer(
        &self,
        team: TeamId,
        peer: u32,
        public_key: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<(VpnPeer, VpnPeer)>> {
        let txn = self.write_txn().await?;
        let Some(old) = peer_row(&txn, team, peer).await? else {
            txn.commit().await?;
            return Ok(None);
        };
        let mut row: vpn_peers::ActiveModel = old.clone().into();
        row.public_key = Set(public_key.to_owned());
        row.rotated_at = Set(Some(at));
        let new = row.update(&txn).await?;
        txn.commit().await?;
        tracing::info!(peer, "VPN peer key replaced");
        Ok(Some((peer_from_row(old)?, peer_from_row(new)?)))
    }

    /// Puts back a peer's key as it was before [`Store::rotate_vpn_peer`] replaced it with
    /// `replaced` (the gateway did not take the new one), with its rotation time as it was.
    /// Nothing changes if the peer's key is no longer `replaced`; says whether it changed.
    #[tracing::instrument(skip(self, was, replaced), fields(team = was.team.0, peer = was.peer))]
    pub async fn restore_vpn_peer(&self, was: &VpnPeer, replaced: &str) -> Result<bool> {
        let txn = self.write_txn().await?;
        let current = peer_row(&txn, was.team, was.peer).await?;
        let Some(current) = current.filter(|row| row.public_key == replaced) else {
            txn.commit().await?;
            return Ok(false);
        };
        let mut row: vpn_peers::ActiveModel = current.into();
        row.public_key = Set(was.public_key.clone());
        row.rotated_at = Set(was.rotated_at);
        row.update(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Stores a peer of the team that it was never issued (a team added during the drill gets
    /// its configs from the console or its portal): `None`, and nothing changed, when the team
    /// already has a peer with that number.
    #[tracing::instrument(skip(self, new), fields(team = team.0, peer = new.peer))]
    pub async fn add_vpn_peer(&self, team: TeamId, new: &NewVpnPeer, at: DateTime<Utc>) -> Result<Option<VpnPeer>> {
        let number = i32::try_from(new.peer).map_err(|_| corrupt("vpn_peers", new.peer, "peer number too large"))?;
        let txn = self.write_txn().await?;
        if peer_row(&txn, team, new.peer).await?.is_some() {
            txn.commit().await?;
            return Ok(None);
        }
        let row = new_peer_row(i32::from(team.0), number, new, at).insert(&txn).await?;
        txn.commit().await?;
        Ok(Some(peer_from_row(row)?))
    }

    /// Takes back a peer [`Store::add_vpn_peer`] stored (the gateway did not take its key),
    /// unless its key is no longer `public_key`; says whether it was removed.
    pub async fn withdraw_vpn_peer(&self, team: TeamId, peer: u32, public_key: &str) -> Result<bool> {
        let txn = self.write_txn().await?;
        let Some(row) = peer_row(&txn, team, peer).await?.filter(|row| row.public_key == public_key) else {
            txn.commit().await?;
            return Ok(false);
        };
        vpn_peers::Entity::delete_by_id(row.id).exec(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// The peers of one team, by number.
    pub async fn vpn_peers_of(&self, team: TeamId) -> Result<Vec<VpnPeer>> {
        vpn_peers::Entity::find()
            .filter(vpn_peers::Column::Team.eq(i32::from(team.0)))
            .order_by_asc(vpn_peers::Column::Peer)
            .all(&self.db)
            .await?
            .into_iter()
            .map(peer_from_row)
            .collect()
    }

    /// Every team's peers, by team and number.
    pub async fn vpn_peers(&self) -> Result<Vec<VpnPeer>> {
        vpn_peers::Entity::find()
            .order_by_asc(vpn_peers::Column::Team)
            .order_by_asc(vpn_peers::Column::Peer)
            .all(&self.db)
            .await?
            .into_iter()
            .map(peer_from_row)
            .collect()
    }

    /// Appends connections to the translation log, in one transaction.
    #[tracing::instrument(skip_all, fields(count = translations.len()))]
    pub async fn record_vpn_translations(&self, translations: &[NewVpnTranslation]) -> Result<()> {
        if translations.is_empty() {
            return Ok(());
        }
        let txn = self.write_txn().await?;
        for chunk in translations.chunks(TRANSLATION_CHUNK) {
            let rows = chunk.iter().map(|t| vpn_translations::ActiveModel {
                at: Set(t.at),
                team: Set(i32::from(t.team.0)),
                peer: Set(t.peer.to_string()),
                target: Set(t.target.to_string()),
                port: Set(i32::from(t.port)),
                seen_as: Set(t.seen_as.to_string()),
                ..Default::default()
            });
            vpn_translations::Entity::insert_many(rows).exec(&txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The translation log, newest first, as `filter` narrows it.
    pub async fn vpn_translations(&self, filter: &TranslationFilter) -> Result<Vec<VpnTranslation>> {
        let mut query = vpn_translations::Entity::find();
        if let Some(team) = filter.team {
            query = query.filter(vpn_translations::Column::Team.eq(i32::from(team.0)));
        }
        if let Some(target) = filter.target {
            query = query.filter(vpn_translations::Column::Target.eq(target.to_string()));
        }
        if let Some(since) = filter.since {
            query = query.filter(vpn_translations::Column::At.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(vpn_translations::Column::At.lt(until));
        }
        query
            .order_by_desc(vpn_translations::Column::At)
            .order_by_desc(vpn_translations::Column::Id)
            .limit(u64::from(filter.limit.min(MAX_TRANSLATIONS)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(translation_from_row)
            .collect()
    }
}

fn decode_key(hex: &str) -> Option<[u8; KEY_LEN]> {
    if hex.len() != 2 * KEY_LEN || !hex.is_ascii() {
        return None;
    }
    let mut out = [0; KEY_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
