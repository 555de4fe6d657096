//! Organisers' records: the audit log, announcements, the drill's paused/current-tick state
//! and organiser/judge accounts.

use chrono::{DateTime, Utc};
use gongfang_core::{AccountRole, DrillId, Tick};
use sea_orm::sea_query::{OnConflict, Query, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entity::{accounts, announcements, audit_log, drill_identity, drill_state};
use crate::error::{Result, StoreError, corrupt, is_unique_violation};
use crate::{Store, secret};

/// One line of the audit log: who did what, when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}

/// Which audit entries to show: by one actor (`account NAME`, `team SLUG`, `cli`), by an action
/// or a family of them (`drill` finds `drill.pause` and `drill.extend`), older than an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub before: Option<i64>,
    /// Leave out the entries of reports (`report.…`: who filed, scored and ruled what, and
    /// why), which observers do not read.
    pub without_reports: bool,
}

/// A message from the organisers to everyone, in English and, when given, Hong Kong Chinese.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub id: i64,
    pub text: AnnouncementText,
    pub posted_at: DateTime<Utc>,
    /// The account that posted it.
    pub author: String,
}

/// What an announcement says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnouncementText {
    pub title: String,
    pub body: String,
    pub title_zh: Option<String>,
    pub body_zh: Option<String>,
}

/// The drill's mutable state, shared by every process that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrillState {
    pub paused: bool,
    pub current_tick: Option<Tick>,
    /// When tick 0 started, once the drill has started.
    pub started_at: Option<DateTime<Utc>>,
}

/// The public scoreboard frozen by organisers: spectators see the drill as it stood after tick
/// `through`; organisers and judges keep the live board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardFreeze {
    pub through: Tick,
    /// When the organisers froze it.
    pub at: DateTime<Utc>,
}

/// An organiser's, judge's or observer's account (never its password or hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub role: AccountRole,
}

impl Account {
    /// Who this account is in the audit log: `account NAME`, never a name the caller chose.
    pub fn actor(&self) -> String {
        format!("account {}", self.name)
    }
}

/// An account as `gongfang account list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub account: Account,
    pub created_at: DateTime<Utc>,
    /// When its API token was issued, if it holds one.
    pub api_token_issued_at: Option<DateTime<Utc>>,
}

const DRILL_STATE_ROW: i32 = 1;

/// The paused flag as this process knows it, and the lock that keeps writing or reading it and
/// telling the watchers one step.
#[derive(Debug)]
pub(crate) struct PauseCell {
    lock: tokio::sync::Mutex<()>,
    watch: tokio::sync::watch::Sender<bool>,
}

impl Default for PauseCell {
    fn default() -> PauseCell {
        PauseCell { lock: tokio::sync::Mutex::new(()), watch: tokio::sync::watch::Sender::new(false) }
    }
}

fn parse_drill_id(hex: &str) -> Option<DrillId> {
    if hex.len() != 2 * DrillId::LEN || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; DrillId::LEN];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(DrillId::from_bytes(bytes))
}

fn audit_from_row(r: audit_log::Model) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: i64::from(r.id),
        at: r.at,
        actor: r.actor,
        action: r.action,
        detail: serde_json::from_str(&r.detail).map_err(|e| corrupt("audit_log", r.id, e))?,
    })
}

fn announcement_from_row(r: announcements::Model) -> Announcement {
    Announcement {
        id: i64::from(r.id),
        text: AnnouncementText { title: r.title, body: r.body, title_zh: r.title_zh, body_zh: r.body_zh },
        posted_at: r.posted_at,
        author: r.author,
    }
}

pub(crate) fn account_from_row(r: &accounts::Model) -> Result<Account> {
    Ok(Account {
        id: i64::from(r.id),
        name: r.name.clone(),
        role: AccountRole::from_name(&r.role)
            .ok_or_else(|| corrupt("accounts", &r.name, format!("unknown role `{}`", r.role)))?,
    })
}

impl Store {
    // ---- audit log ----

    /// Appends a line to the audit log. `detail` must never hold a secret.
    pub async fn append_audit(
        &self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<AuditEntry> {
        let row = audit_log::ActiveModel {
            at: Set(at),
            actor: Set(actor.to_owned()),
            action: Set(action.to_owned()),
            detail: Set(detail.to_string()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        audit_from_row(row)
    }

    /// The audit log, oldest first, starting after entry `after` (`None`: from the start),
    /// at most `limit` entries.
    pub async fn list_audit(&self, after: Option<i64>, limit: u64) -> Result<Vec<AuditEntry>> {
        let mut query = audit_log::Entity::find();
        if let Some(after) = after {
            query = query.filter(audit_log::Column::Id.gt(after));
        }
        query
            .order_by_asc(audit_log::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(audit_from_row)
            .collect()
    }

    /// The audit log newest first, as `filter` says, at most `limit` entries. An action
    /// matches itself and every action under it (`drill` matches `drill.pause`).
    pub async fn search_audit(&self, filter: &AuditFilter, limit: u64) -> Result<Vec<AuditEntry>> {
        let mut query = audit_log::Entity::find();
        if let Some(actor) = &filter.actor {
            query = query.filter(audit_log::Column::Actor.eq(actor.as_str()));
        }
        if let Some(action) = &filter.action {
            // Escape LIKE's wildcards, so `a_b` finds only itself and what is under it.
            let escaped = action.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            use sea_orm::sea_query::ExprTrait as _;
            let under = sea_orm::sea_query::Expr::col(audit_log::Column::Action)
                .like(sea_orm::sea_query::LikeExpr::new(format!("{escaped}.%")).escape('\\'));
            query =
                query.filter(sea_orm::Condition::any().add(audit_log::Column::Action.eq(action.as_str())).add(under));
        }
        if let Some(before) = filter.before {
            query = query.filter(audit_log::Column::Id.lt(before));
        }
        if filter.without_reports {
            use sea_orm::sea_query::ExprTrait as _;
            query = query.filter(
                sea_orm::sea_query::Expr::col(audit_log::Column::Action)
                    .not_like(sea_orm::sea_query::LikeExpr::new("report.%")),
            );
        }
        query
            .order_by_desc(audit_log::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(audit_from_row)
            .collect()
    }

    // ---- announcements ----

    pub async fn post_announcement(
        &self,
        at: DateTime<Utc>,
        author: &str,
        text: &AnnouncementText,
    ) -> Result<Announcement> {
        let r = announcements::ActiveModel {
            title: Set(text.title.clone()),
            body: Set(text.body.clone()),
            title_zh: Set(text.title_zh.clone()),
            body_zh: Set(text.body_zh.clone()),
            posted_at: Set(at),
            author: Set(author.to_owned()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(announcement_from_row(r))
    }

    /// The latest `limit` announcements, newest first.
    pub async fn list_announcements(&self, limit: u64) -> Result<Vec<Announcement>> {
        let rows =
            announcements::Entity::find().order_by_desc(announcements::Column::Id).limit(limit).all(&self.db).await?;
        Ok(rows.into_iter().map(announcement_from_row).collect())
    }

    // ---- drill state ----

    pub async fn drill_state(&self) -> Result<DrillState> {
        let Some(row) = drill_state::Entity::find_by_id(DRILL_STATE_ROW).one(&self.db).await? else {
            return Ok(DrillState::default());
        };
        let current_tick = row
            .current_tick
            .map(|t| u32::try_from(t).map(Tick).map_err(|_| corrupt("drill_state", row.id, "negative tick")))
            .transpose()?;
        Ok(DrillState { paused: row.paused, current_tick, started_at: row.started_at })
    }

    /// The drill's identity: made at random when this database was created, never changed
    /// (the store has no way to set it). Flag keys are derived from it.
    pub async fn drill_id(&self) -> Result<DrillId> {
        const ROW: i32 = 1;
        let row = drill_identity::Entity::find_by_id(ROW)
            .one(&self.db)
            .await?
            .ok_or_else(|| corrupt("drill_identity", ROW, "missing: the database has no drill id"))?;
        parse_drill_id(&row.drill_id).ok_or_else(|| corrupt("drill_identity", ROW, "not 32 hex digits"))
    }

    /// Stores the whole drill state.
    pub async fn set_drill_state(&self, state: DrillState, at: DateTime<Utc>) -> Result<()> {
        let tick = state.current_tick.map(|t| i32::try_from(t.0).unwrap_or(i32::MAX));
        self.upsert_drill_state(
            at,
            vec![
                (drill_state::Column::Paused, state.paused.into()),
                (drill_state::Column::CurrentTick, tick.into()),
                (drill_state::Column::StartedAt, state.started_at.into()),
            ],
        )
        .await
    }

    /// Writes `set` into the drill's state row (and the time of the change), making the row,
    /// not paused, if there is none yet.
    async fn upsert_drill_state(&self, at: DateTime<Utc>, set: Vec<(drill_state::Column, SimpleExpr)>) -> Result<()> {
        let mut columns = vec![drill_state::Column::Id, drill_state::Column::UpdatedAt];
        let mut values: Vec<SimpleExpr> = vec![DRILL_STATE_ROW.into(), at.into()];
        if !set.iter().any(|(c, _)| matches!(c, drill_state::Column::Paused)) {
            columns.push(drill_state::Column::Paused);
            values.push(false.into());
        }
        let mut updated = vec![drill_state::Column::UpdatedAt];
        for (column, value) in set {
            columns.push(column);
            values.push(value);
            updated.push(column);
        }
        let upsert = Query::insert()
            .into_table(drill_state::Entity)
            .columns(columns)
            .values_panic(values)
            .on_conflict(OnConflict::column(drill_state::Column::Id).update_columns(updated).to_owned())
            .to_owned();
        self.db.execute(&upsert).await?;
        Ok(())
    }

    /// Pauses (`true`) or resumes the drill: writes the flag and, in the same step, tells every
    /// watcher in this process ([`Store::paused_watch`]), so the engine skips the next action
    /// it would dispatch. Whether the flag changed.
    pub async fn set_paused(&self, paused: bool, at: DateTime<Utc>) -> Result<bool> {
        let _writer = self.pause.lock.lock().await;
        let was = self.drill_state().await?.paused;
        if was != paused {
            self.upsert_drill_state(at, vec![(drill_state::Column::Paused, paused.into())]).await?;
        }
        self.pause.watch.send_if_modified(|p| std::mem::replace(p, paused) != paused);
        Ok(was != paused)
    }

    /// Reads the paused flag from the database into this process's watch (another process may
    /// have set it) and returns it.
    pub async fn sync_paused(&self) -> Result<bool> {
        let _writer = self.pause.lock.lock().await;
        let paused = self.drill_state().await?.paused;
        self.pause.watch.send_if_modified(|p| std::mem::replace(p, paused) != paused);
        Ok(paused)
    }

    /// Moves the drill's end `by` later, on top of earlier extensions; the new total.
    /// The engine reads the total at every step, so the running drill plays on.
    pub async fn extend_drill(&self, by: std::time::Duration, at: DateTime<Utc>) -> Result<std::time::Duration> {
        let _writer = self.pause.lock.lock().await;
        let total = self.drill_extension().await?.saturating_add(by);
        let secs = i64::try_from(total.as_secs()).unwrap_or(i64::MAX);
        self.upsert_drill_state(at, vec![(drill_state::Column::ExtendedSecs, secs.into())]).await?;
        Ok(std::time::Duration::from_secs(secs.unsigned_abs()))
    }

    /// How much later than the scenario says the drill ends.
    pub async fn drill_extension(&self) -> Result<std::time::Duration> {
        let row = drill_state::Entity::find_by_id(DRILL_STATE_ROW).one(&self.db).await?;
        Ok(std::time::Duration::from_secs(row.map_or(0, |r| r.extended_secs.max(0).unsigned_abs())))
    }

    /// The public scoreboard's freeze, if organisers have frozen it.
    pub async fn board_freeze(&self) -> Result<Option<BoardFreeze>> {
        let Some(row) = drill_state::Entity::find_by_id(DRILL_STATE_ROW).one(&self.db).await? else {
            return Ok(None);
        };
        match (row.frozen_through, row.frozen_at) {
            (Some(through), Some(at)) => {
                let through = u32::try_from(through).map_err(|_| corrupt("drill_state", row.id, "negative tick"))?;
                Ok(Some(BoardFreeze { through: Tick(through), at }))
            }
            _ => Ok(None),
        }
    }

    /// Freezes the public scoreboard at tick `through` (`Some`) or lifts the freeze (`None`).
    /// A board already frozen stays frozen where it was. The freeze in force afterwards, and
    /// whether this call changed it.
    pub async fn set_board_freeze(
        &self,
        through: Option<Tick>,
        at: DateTime<Utc>,
    ) -> Result<(Option<BoardFreeze>, bool)> {
        let _writer = self.pause.lock.lock().await;
        let was = self.board_freeze().await?;
        let now = match (was, through) {
            (Some(was), Some(_)) => return Ok((Some(was), false)),
            (None, None) => return Ok((None, false)),
            (_, through) => through.map(|t| BoardFreeze { through: t, at }),
        };
        let tick = now.map(|f| i32::try_from(f.through.0).unwrap_or(i32::MAX));
        self.upsert_drill_state(
            at,
            vec![
                (drill_state::Column::FrozenThrough, tick.into()),
                (drill_state::Column::FrozenAt, now.map(|f| f.at).into()),
            ],
        )
        .await?;
        Ok((now, true))
    }

    /// The paused flag as this process last wrote or read it; it changes the moment
    /// [`Store::set_paused`] or [`Store::sync_paused`] sees it change.
    pub fn paused_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.pause.watch.subscribe()
    }

    // ---- accounts ----

    /// Creates an account; the password is stored as an argon2id hash only. The hash takes one
    /// of the process's argon2 slots ([`StoreError::Busy`] if none frees up in time).
    pub async fn create_account(&self, name: &str, role: AccountRole, password: &str) -> Result<Account> {
        if accounts::Entity::find().filter(accounts::Column::Name.eq(name)).one(&self.db).await?.is_some() {
            return Err(StoreError::AccountExists(name.to_owned()));
        }
        let hash = secret::hash(password.to_owned()).await?;
        let row = accounts::ActiveModel {
            name: Set(name.to_owned()),
            role: Set(role.as_str().to_owned()),
            password_hash: Set(hash),
            created_at: Set(Utc::now()),
            api_token_hash: Set(None),
            api_token_issued_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        // Another writer may have taken the name while the password was being hashed.
        .map_err(|e| if is_unique_violation(&e) { StoreError::AccountExists(name.to_owned()) } else { e.into() })?;
        account_from_row(&row)
    }

    /// The account if `name` exists and `password` is its password. An unknown name costs
    /// the same argon2 time as a wrong password. At most one argon2 run per core runs at a
    /// time in the whole process; a check that waits [`ARGON2_WAIT`](crate::ARGON2_WAIT)
    /// without a slot fails with [`StoreError::Busy`], having checked nothing.
    pub async fn verify_account(&self, name: &str, password: &str) -> Result<Option<Account>> {
        match accounts::Entity::find().filter(accounts::Column::Name.eq(name)).one(&self.db).await? {
            Some(row) => {
                if secret::verify(password.to_owned(), row.password_hash.clone()).await? {
                    Ok(Some(account_from_row(&row)?))
                } else {
                    Ok(None)
                }
            }
            None => {
                secret::verify_nothing(password.to_owned()).await?;
                Ok(None)
            }
        }
    }

    /// The account named `name`, if any.
    pub async fn account(&self, name: &str) -> Result<Option<Account>> {
        accounts::Entity::find()
            .filter(accounts::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(|r| account_from_row(&r))
            .transpose()
    }

    /// Gives the account named `name` another role; its open sessions end (they were opened
    /// for the old role). Whether there was such an account.
    pub async fn set_account_role(&self, name: &str, role: AccountRole) -> Result<bool> {
        let Some(row) = accounts::Entity::find().filter(accounts::Column::Name.eq(name)).one(&self.db).await? else {
            return Ok(false);
        };
        let txn = self.write_txn().await?;
        let id = row.id;
        let mut row: accounts::ActiveModel = row.into();
        row.role = Set(role.as_str().to_owned());
        row.update(&txn).await?;
        // Ended here, not only refused on use: changing the role back must not revive them.
        crate::sessions::end_sessions_of(&txn, id).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Deletes the account named `name`, and with it its sessions. Whether there was one.
    pub async fn delete_account(&self, name: &str) -> Result<bool> {
        let done = accounts::Entity::delete_many().filter(accounts::Column::Name.eq(name)).exec(&self.db).await?;
        Ok(done.rows_affected > 0)
    }
}
