//! Login sessions and API tokens of organiser, judge and observer accounts, and the server key
//! that session, API and team tokens are hashed under.
//!
//! A session lives in the database, so it survives a restart and every process serving the
//! drill sees the same ones. Its row holds the keyed hash of its token, never the token; each
//! use re-checks the account: a deleted account, or one whose role changed since the login,
//! has no session any more.
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
}

use entity::{server_key, sessions};

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
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let expires_at = now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC);
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

    /// Ends the session of `token` (a logout); whether there was one.
    pub async fn revoke_session(&self, token: &str) -> Result<bool> {
        if !secret::is_session_token(token) {
            return Ok(false);
        }
        let hash = self.token_key().await?.hash(Purpose::Session, token);
        let done = sessions::Entity::delete_many().filter(sessions::Column::TokenHash.eq(hash)).exec(&self.db).await?;
        Ok(done.rows_affected > 0)
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
