//! Login sessions and API tokens of organiser, judge and observer accounts, and the server key
//! that session, API and team tokens are hashed under.
//!
//! A session lives in the database, so it survives a restart and every process serving the
//! drill sees the same ones. Its row holds the keyed hash of its token, never the token; each
//! use re-checks the account: a deleted account, or one whose role changed since the login,
//! has no session any more.
//!
//! A team logs in to its portal with its team token and gets a session of its own kind
//! (`team_sessions`), ended when the team's token is rotated.
//!
//! Every browser session has a CSRF token derived from its session token by keyed hash, so it
//! need not be stored: a page shows it, and each change the page asks for carries it back.
//!
//! An API token is an account's own credential for scripts and the `gongfang` command: one per
//! account, stored as its keyed hash only, replaced when a new one is issued, revocable.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gongfang_core::Secret;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::{accounts, teams};
use crate::error::{Result, corrupt};
use crate::ops::account_from_row;
use crate::secret::{self, Purpose, TokenKey};
use crate::{Account, AccountSummary, Store};
use gongfang_core::TeamId;

/// Entities of the tables this module alone reads.
mod entity {
    #![allow(missing_debug_implementations)]

    pub mod server_key {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "server_key")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: i32,
            /// 64 lowercase hex digits, made by the migration that created the table.
            pub token_key: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod sessions {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "sessions")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            /// `hmac-sha256$` and the keyed hash of the token.
            pub token_hash: String,
            pub account: i32,
            /// The account's role when the session was opened.
            pub role: String,
            pub created_at: DateTimeUtc,
            pub expires_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod team_sessions {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "team_sessions")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            /// `hmac-sha256$` and the keyed hash of the token.
            pub token_hash: String,
            pub team: i32,
            pub created_at: DateTimeUtc,
            pub expires_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{server_key, sessions, team_sessions};

/// Who a browser session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionHolder {
    /// An organiser, judge or observer account, as it is now.
    Account(Account),
    /// A team, logged in with its token.
    Team(TeamId),
}

/// Ends every portal session of `team` (its token was rotated).
pub(crate) async fn end_team_sessions(db: &impl ConnectionTrait, team: i32) -> Result<()> {
    team_sessions::Entity::delete_many().filter(team_sessions::Column::Team.eq(team)).exec(db).await?;
    Ok(())
}

/// When a session opened at `now` for `ttl` ends.
fn expiry(ttl: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Ends every session of account `id` (its role changed).
pub(crate) async fn end_sessions_of(db: &impl ConnectionTrait, id: i32) -> Result<()> {
    sessions::Entity::delete_many().filter(sessions::Column::Account.eq(id)).exec(db).await?;
    Ok(())
}

/// The one row of `server_key`.
const KEY_ROW: i32 = 1;

impl Store {
    /// The server key, read from the database once per store (and its clones).
    pub(crate) async fn token_key(&self) -> Result<&TokenKey> {
        self.token_key
            .get_or_try_init(|| async {
                let row = server_key::Entity::find_by_id(KEY_ROW).one(&self.db).await?.ok_or_else(|| {
                    corrupt("server_key", KEY_ROW, "missing: the database has no server key; run `gongfang migrate`")
                })?;
                let key = TokenKey::from_hex(&row.token_key)
                    .ok_or_else(|| corrupt("server_key", KEY_ROW, "not 64 hex digits"))?;
                self.warn_unkeyed_tokens().await?;
                Ok(key)
            })
            .await
    }

    /// Says once, when the key is first read, which teams still hold a token hashed the old
    /// way (argon2id, before tokens were keyed): those tokens no longer work.
    async fn warn_unkeyed_tokens(&self) -> Result<()> {
        let rows = teams::Entity::find().filter(teams::Column::TokenHash.is_not_null()).all(&self.db).await?;
        for row in rows {
            if row.token_hash.as_deref().is_some_and(|h| !secret::is_keyed(h)) {
                tracing::warn!(
                    team = %row.slug,
                    "the team's token was issued before tokens were keyed and no longer works; \
                     issue a new one with `gongfang team token {}`",
                    row.slug
                );
            }
        }
        Ok(())
    }

    /// Opens a session for `account` lasting `ttl` from `now`; returns its bearer token, which
    /// is shown only now (only its keyed hash is stored). Sessions already over are removed.
    #[tracing::instrument(skip_all, fields(account = %account.name))]
    pub async fn create_session(&self, account: &Account, ttl: Duration, now: DateTime<Utc>) -> Result<Secret> {
        let key = self.token_key().await?;
        sessions::Entity::delete_many().filter(sessions::Column::ExpiresAt.lte(now)).exec(&self.db).await?;
        let expires_at = expiry(ttl, now);
        let token = secret::generate_session_token();
        sessions::ActiveModel {
            token_hash: Set(key.hash(Purpose::Session, token.expose())),
            account: Set(i32::try_from(account.id).map_err(|_| corrupt("accounts", &account.name, "id out of range"))?),
            role: Set(account.role.as_str().to_owned()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(token)
    }

    /// The account a session token belongs to, if the session is open at `now`, its account
    /// still exists and still has the role it logged in with. A token of the wrong shape is
    /// refused without a lookup.
    pub async fn session_account(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Account>> {
        if !secret::is_session_token(token) {
            return Ok(None);
        }
        let hash = self.token_key().await?.hash(Purpose::Session, token);
        let Some(session) = sessions::Entity::find().filter(sessions::Column::TokenHash.eq(hash)).one(&self.db).await?
        else {
            return Ok(None);
        };
        if session.expires_at <= now {
            return Ok(None);
        }
        let Some(row) = accounts::Entity::find_by_id(session.account).one(&self.db).await? else {
            return Ok(None);
        };
        if row.role != session.role {
            return Ok(None);
        }
        account_from_row(&row).map(Some)
    }

    /// Opens a portal session for `team` lasting `ttl` from `now`; returns its token, shown
    /// only now. Team sessions already over are removed.
    #[tracing::instrument(skip_all, fields(team = %team))]
    pub async fn create_team_session(&self, team: TeamId, ttl: Duration, now: DateTime<Utc>) -> Result<Secret> {
        let key = self.token_key().await?;
        team_sessions::Entity::delete_many().filter(team_sessions::Column::ExpiresAt.lte(now)).exec(&self.db).await?;
        let token = secret::generate_session_token();
        team_sessions::ActiveModel {
            token_hash: Set(key.hash(Purpose::Session, token.expose())),
            team: Set(i32::from(team.0)),
            created_at: Set(now),
            expires_at: Set(expiry(ttl, now)),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(token)
    }

    /// Whose browser session `token` is, if it is open at `now`: an account's (re-checked as
    /// [`Store::session_account`] does) or a team's that organisers have not taken out of the
    /// drill. A token of the wrong shape is refused without a lookup.
    pub async fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Option<SessionHolder>> {
        if let Some(account) = self.session_account(token, now).await? {
            return Ok(Some(SessionHolder::Account(account)));
        }
        if !secret::is_session_token(token) {
            return Ok(None);
        }
        let hash = self.token_key().await?.hash(Purpose::Session, token);
        let row = team_sessions::Entity::find().filter(team_sessions::Column::TokenHash.eq(hash)).one(&self.db).await?;
        match row {
            Some(row) if row.expires_at > now => {
                let team =
                    u16::try_from(row.team).map_err(|_| corrupt("team_sessions", row.id, "team out of range"))?;
                // Disabling a team ends its sessions; one opened while that happened still
                // opens nothing until the team is back.
                let disabled = crate::entity::teams::Entity::find_by_id(row.team)
                    .one(&self.db)
                    .await?
                    .is_some_and(|t| t.disabled_at.is_some());
                Ok((!disabled).then_some(SessionHolder::Team(TeamId(team))))
            }
            _ => Ok(None),
        }
    }

    /// The CSRF token of the browser session `token`: 64 hex digits, the same every time it
    /// is asked for, useless without the session cookie it goes with.
    pub async fn csrf_token(&self, token: &str) -> Result<Secret> {
        let stored = self.token_key().await?.hash(Purpose::Csrf, token);
        Ok(Secret::new(stored.rsplit('$').next().unwrap_or_default().to_owned()))
    }

    /// Whether `presented` is the CSRF token of session `token`, compared in constant time.
    pub async fn csrf_matches(&self, token: &str, presented: &str) -> Result<bool> {
        let stored = format!("{}{presented}", secret::KEYED_SCHEME);
        Ok(self.token_key().await?.matches(Purpose::Csrf, token, &stored))
    }

    /// Ends the session of `token` (a logout), an account's or a team's; whether there was one.
    pub async fn revoke_session(&self, token: &str) -> Result<bool> {
        if !secret::is_session_token(token) {
            return Ok(false);
        }
        let hash = self.token_key().await?.hash(Purpose::Session, token);
        let done =
            sessions::Entity::delete_many().filter(sessions::Column::TokenHash.eq(hash.clone())).exec(&self.db).await?;
        let team_done = team_sessions::Entity::delete_many()
            .filter(team_sessions::Column::TokenHash.eq(hash))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected + team_done.rows_affected > 0)
    }

    /// Issues a new API token for the account named `name`, replacing the one it had (which
    /// stops working at once); returns it, shown only now, or `None` if there is no such
    /// account.
    #[tracing::instrument(skip(self, now))]
    pub async fn issue_api_token(&self, name: &str, now: DateTime<Utc>) -> Result<Option<Secret>> {
        let key = self.token_key().await?;
        let Some(row) = accounts::Entity::find().filter(accounts::Column::Name.eq(name)).one(&self.db).await? else {
            return Ok(None);
        };
        let token = secret::generate_api_token();
        let mut row: accounts::ActiveModel = row.into();
        row.api_token_hash = Set(Some(key.hash(Purpose::ApiToken, token.expose())));
        row.api_token_issued_at = Set(Some(now));
        row.update(&self.db).await?;
        Ok(Some(token))
    }

    /// Revokes the API token of the account named `name`; whether it had one.
    pub async fn revoke_api_token(&self, name: &str) -> Result<bool> {
        let Some(row) = accounts::Entity::find().filter(accounts::Column::Name.eq(name)).one(&self.db).await? else {
            return Ok(false);
        };
        if row.api_token_hash.is_none() {
            return Ok(false);
        }
        let mut row: accounts::ActiveModel = row.into();
        row.api_token_hash = Set(None);
        row.api_token_issued_at = Set(None);
        row.update(&self.db).await?;
        Ok(true)
    }

    /// The account whose API token `token` is, if any. A token of the wrong shape is refused
    /// without a lookup.
    pub async fn api_token_account(&self, token: &str) -> Result<Option<Account>> {
        if !secret::is_api_token(token) {
            return Ok(None);
        }
        let hash = self.token_key().await?.hash(Purpose::ApiToken, token);
        accounts::Entity::find()
            .filter(accounts::Column::ApiTokenHash.eq(hash))
            .one(&self.db)
            .await?
            .map(|r| account_from_row(&r))
            .transpose()
    }

    /// Every account, by name, with whether it holds an API token (never the token).
    pub async fn list_accounts(&self) -> Result<Vec<AccountSummary>> {
        let rows = accounts::Entity::find().order_by_asc(accounts::Column::Name).all(&self.db).await?;
        rows.iter()
            .map(|r| {
                Ok(AccountSummary {
                    account: account_from_row(r)?,
                    created_at: r.created_at,
                    api_token_issued_at: r.api_token_issued_at,
                })
            })
            .collect()
    }
}
