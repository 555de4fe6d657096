//! Teams and services: syncing them from the scenario, ad-hoc teams, and team tokens (stored
//! as HMAC-SHA256 under the server key, found by a short prefix, compared in constant time).

use chrono::{DateTime, Utc};
use gongfang_core::scenario::{Ipv4Net, Names, Role, Scenario, Team};
use gongfang_core::{Secret, TeamId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::Store;
use crate::entity::{services, teams};
use crate::error::{Result, StoreError, corrupt, is_unique_violation};
use crate::secret::{self, Purpose};

/// A stored team: the scenario's view of it, plus whether it holds a working token and
/// whether organisers took it out of the drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRecord {
    pub team: Team,
    /// Whether a token was issued and still works: a token issued before tokens were keyed
    /// (stored as an argon2id hash) does not, and must be issued again.
    pub has_token: bool,
    /// When organisers disabled the team, if they did: it is not checked, and its token and
    /// sessions do not work, until they enable it again.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// Who holds a presented token, as [`Store::token_owner`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOwner {
    pub team: TeamId,
    /// The team is disabled: the token is right but does not work now.
    pub disabled: bool,
}

/// What [`Store::sync_scenario`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub teams_added: usize,
    pub teams_updated: usize,
    pub services_added: usize,
    pub services_updated: usize,
}

/// A token just issued to a team. The token is in clear only here, once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub team: TeamId,
    pub token: Secret,
}

fn team_from_row(row: teams::Model) -> Result<TeamRecord> {
    let key = row.slug.clone();
    let id = u16::try_from(row.id).map_err(|_| corrupt("teams", &key, format!("id {} out of range", row.id)))?;
    let role =
        Role::from_name(&row.role).ok_or_else(|| corrupt("teams", &key, format!("unknown role `{}`", row.role)))?;
    let network = Ipv4Net::parse(&row.network).map_err(|e| corrupt("teams", &key, e))?;
    Ok(TeamRecord {
        team: Team {
            id: TeamId(id),
            slug: row.slug,
            name: Names { en: row.name_en, zh: row.name_zh },
            role,
            network,
            nop: row.nop,
        },
        has_token: row.token_hash.as_deref().is_some_and(secret::is_keyed),
        disabled_at: row.disabled_at,
    })
}

fn team_columns(team: &Team, row: &mut teams::ActiveModel) {
    row.slug = Set(team.slug.clone());
    row.name_en = Set(team.name.en.clone());
    row.name_zh = Set(team.name.zh.clone());
    row.role = Set(team.role.as_str().to_owned());
    row.network = Set(team.network.to_string());
    row.nop = Set(team.nop);
}

impl Store {
    /// Makes the stored teams and services match the scenario: inserts missing ones and
    /// updates names, roles, networks of existing ones (matched by id). Tokens are kept.
    /// Teams or services no longer in the scenario are left alone: their history stays.
    #[tracing::instrument(skip_all)]
    pub async fn sync_scenario(&self, scenario: &Scenario) -> Result<SyncReport> {
        let txn = self.write_txn().await?;
        let mut report = SyncReport::default();
        for team in &scenario.teams {
            match teams::Entity::find_by_id(i32::from(team.id.0)).one(&txn).await? {
                None => {
                    let mut row = teams::ActiveModel {
                        id: Set(i32::from(team.id.0)),
                        token_hash: Set(None),
                        token_prefix: Set(None),
                        ..Default::default()
                    };
                    team_columns(team, &mut row);
                    row.insert(&txn).await?;
                    report.teams_added += 1;
                }
                Some(existing) => {
                    let same = existing.slug == team.slug
                        && existing.name_en == team.name.en
                        && existing.name_zh == team.name.zh
                        && existing.role == team.role.as_str()
                        && existing.network == team.network.to_string()
                        && existing.nop == team.nop;
                    if !same {
                        let mut row: teams::ActiveModel = existing.into();
                        team_columns(team, &mut row);
                        row.update(&txn).await?;
                        report.teams_updated += 1;
                    }
                }
            }
        }
        for service in &scenario.services {
            let id = i32::from(service.id.0);
            match services::Entity::find_by_id(id).one(&txn).await? {
                None => {
                    services::ActiveModel {
                        id: Set(id),
                        slug: Set(service.slug.clone()),
                        name_en: Set(service.name.en.clone()),
                        name_zh: Set(service.name.zh.clone()),
                    }
                    .insert(&txn)
                    .await?;
                    report.services_added += 1;
                }
                Some(existing) => {
                    if existing.slug != service.slug
                        || existing.name_en != service.name.en
                        || existing.name_zh != service.name.zh
                    {
                        let mut row: services::ActiveModel = existing.into();
                        row.slug = Set(service.slug.clone());
                        row.name_en = Set(service.name.en.clone());
                        row.name_zh = Set(service.name.zh.clone());
                        row.update(&txn).await?;
                        report.services_updated += 1;
                    }
                }
            }
        }
        txn.commit().await?;
        tracing::info!(?report, "scenario synced to database");
        Ok(report)
    }

    /// Every stored team, by id.
    pub async fn list_teams(&self) -> Result<Vec<TeamRecord>> {
        teams::Entity::find()
            .order_by_asc(teams::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(team_from_row)
            .collect()
    }

    /// The team with this slug, if any.
    pub async fn team_by_slug(&self, slug: &str) -> Result<Option<TeamRecord>> {
        teams::Entity::find().filter(teams::Column::Slug.eq(slug)).one(&self.db).await?.map(team_from_row).transpose()
    }

    /// Stores a team that is not in the scenario. Fails if its id or slug is taken.
    #[tracing::instrument(skip_all, fields(team = %team.slug))]
    pub async fn add_team(&self, team: &Team) -> Result<()> {
        let txn = self.write_txn().await?;
        if teams::Entity::find_by_id(i32::from(team.id.0)).one(&txn).await?.is_some() {
            return Err(StoreError::TeamExists { field: "id", value: team.id.to_string() });
        }
        if teams::Entity::find().filter(teams::Column::Slug.eq(&team.slug)).one(&txn).await?.is_some() {
            return Err(StoreError::TeamExists { field: "slug", value: team.slug.clone() });
        }
        let mut row = teams::ActiveModel {
            id: Set(i32::from(team.id.0)),
            token_hash: Set(None),
            token_prefix: Set(None),
            ..Default::default()
        };
        team_columns(team, &mut row);
        // On PostgreSQL another writer can store the same id or slug between the checks above
        // and this insert; the unique keys refuse it, and the caller hears the same answer.
        row.insert(&txn).await.map_err(|e| match is_unique_violation(&e) {
            true if e.to_string().contains("slug") => {
                StoreError::TeamExists { field: "slug", value: team.slug.clone() }
            }
            true => StoreError::TeamExists { field: "id", value: team.id.to_string() },
            false => e.into(),
        })?;
        txn.commit().await?;
        Ok(())
    }

    /// Issues a new token to the team with this slug, replacing any previous one and ending
    /// the team's portal sessions (they were opened with the old one). Only its
    /// keyed hash (HMAC-SHA256 under the server key) and a short lookup prefix are stored; the
    /// token is returned once.
    #[tracing::instrument(skip_all, fields(team = %slug))]
    pub async fn issue_token(&self, slug: &str) -> Result<IssuedToken> {
        let existing = teams::Entity::find()
            .filter(teams::Column::Slug.eq(slug))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::UnknownTeam(slug.to_owned()))?;
        let token = secret::generate_token();
        let hash = self.token_key().await?.hash(Purpose::TeamToken, token.expose());
        let id = existing.id;
        let mut row: teams::ActiveModel = existing.into();
        row.token_hash = Set(Some(hash));
        row.token_prefix = Set(Some(secret::token_prefix(&token).to_owned()));
        let txn = self.db.begin().await?;
        row.update(&txn).await?;
        crate::sessions::end_team_sessions(&txn, id).await?;
        txn.commit().await?;
        tracing::info!("team token issued; the team's portal sessions ended");
        let team = TeamId(u16::try_from(id).map_err(|_| corrupt("teams", slug, "id out of range"))?);
        Ok(IssuedToken { team, token })
    }

    /// The team a presented token belongs to, or `None`; a disabled team's token is refused
    /// like a wrong one. Cheap either way: a token of the wrong shape is refused without a
    /// lookup; otherwise one indexed lookup by prefix and one HMAC, compared in constant time.
    /// Never an argon2 run: tokens are random, not chosen by people, so a keyed hash is as
    /// strong and a wrong guess costs the server nothing.
    pub async fn verify_token(&self, presented: &str) -> Result<Option<TeamId>> {
        Ok(self.token_owner(presented).await?.filter(|owner| !owner.disabled).map(|owner| owner.team))
    }

    /// The team a presented token belongs to, disabled or not: for a login that tells a
    /// disabled team why it is refused rather than calling its token wrong.
    pub async fn token_owner(&self, presented: &str) -> Result<Option<TokenOwner>> {
        let Some(prefix) = secret::presented_prefix(presented) else { return Ok(None) };
        let key = self.token_key().await?;
        let candidates = teams::Entity::find().filter(teams::Column::TokenPrefix.eq(prefix)).all(&self.db).await?;
        for row in candidates {
            let Some(hash) = row.token_hash else { continue };
            // An argon2id hash from before tokens were keyed never matches (said once, when
            // the key is read).
            if key.matches(Purpose::TeamToken, presented, &hash) {
                let id = u16::try_from(row.id).map_err(|_| corrupt("teams", &row.slug, "id out of range"))?;
                return Ok(Some(TokenOwner { team: TeamId(id), disabled: row.disabled_at.is_some() }));
            }
        }
        Ok(None)
    }

    /// Takes a team out of the drill (`disabled`) or brings it back. Disabling ends the team's
    /// portal sessions, and from then its token is refused; the engine stops checking the
    /// team's services from the next tick. Its history and score stay. Returns the team as
    /// stored now and whether this changed it: a team already in the asked state is left as
    /// it is.
    #[tracing::instrument(skip(self), fields(team = %slug))]
    pub async fn set_team_disabled(&self, slug: &str, disabled: bool, at: DateTime<Utc>) -> Result<(TeamRecord, bool)> {
        let txn = self.write_txn().await?;
        let existing = teams::Entity::find()
            .filter(teams::Column::Slug.eq(slug))
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::UnknownTeam(slug.to_owned()))?;
        if existing.disabled_at.is_some() == disabled {
            txn.commit().await?;
            return Ok((team_from_row(existing)?, false));
        }
        let id = existing.id;
        let mut row: teams::ActiveModel = existing.into();
        row.disabled_at = Set(disabled.then_some(at));
        let stored = row.update(&txn).await?;
        if disabled {
            crate::sessions::end_team_sessions(&txn, id).await?;
        }
        txn.commit().await?;
        self.disabled.send_modify(|changes| *changes += 1);
        tracing::info!(disabled, "team availability changed");
        Ok((team_from_row(stored)?, true))
    }

    /// Counts the teams taken out of the drill or brought back through this store (and its
    /// clones) since it was opened: the gateway's firewall reads [`Store::disabled_teams`]
    /// again when it changes.
    pub fn disabled_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.disabled.subscribe()
    }

    /// The teams organisers have disabled, by id.
    pub async fn disabled_teams(&self) -> Result<Vec<TeamId>> {
        teams::Entity::find()
            .filter(teams::Column::DisabledAt.is_not_null())
            .order_by_asc(teams::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| u16::try_from(row.id).map(TeamId).map_err(|_| corrupt("teams", &row.slug, "id out of range")))
            .collect()
    }

    /// The stored token hash of a team (`hmac-sha256$` and 64 hex digits, or an argon2id PHC
    /// string issued before tokens were keyed), for audits and tests; never the token.
    pub async fn token_hash(&self, slug: &str) -> Result<Option<String>> {
        let row = teams::Entity::find()
            .filter(teams::Column::Slug.eq(slug))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::UnknownTeam(slug.to_owned()))?;
        Ok(row.token_hash)
    }
}
