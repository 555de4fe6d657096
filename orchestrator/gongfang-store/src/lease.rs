//! The engine's lease: exactly one engine runs a drill. The process that runs the engine holds
//! the lease's one row and renews it every few seconds; another process asking for it while it
//! is fresh is refused, and told who holds it. A lease not renewed for `stale_after` (its
//! holder crashed or hangs) is taken over, so a restarted drill needs no hand to clear it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::Store;
use crate::error::{Result, StoreError, is_unique_violation};

/// Entity of `engine_lease` (`m20261214_000003_engine_lease`). Private to this module.
#[allow(missing_debug_implementations)]
mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "engine_lease")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub holder: String,
        pub host: String,
        pub pid: i64,
        pub acquired_at: DateTimeUtc,
        pub renewed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The lease's one row.
const LEASE_ROW: i32 = 1;

/// How often the engine's process says it is alive.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a lease not renewed stays its holder's: six renewals missed.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// Who asks for the lease: a random id of this run, and where it runs (for the message another
/// engine is given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClaim {
    pub holder: String,
    pub host: String,
    pub pid: u32,
}

/// The engine that holds a drill's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub host: String,
    pub pid: u32,
    pub since: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} on {}, since {}, last alive at {}",
            self.pid,
            self.host,
            self.since.to_rfc3339(),
            self.renewed_at.to_rfc3339()
        )
    }
}

fn holder_of(row: &entity::Model) -> LeaseHolder {
    LeaseHolder {
        host: row.host.clone(),
        pid: u32::try_from(row.pid).unwrap_or(0),
        since: row.acquired_at,
        renewed_at: row.renewed_at,
    }
}

impl Store {
    /// Takes the engine's lease for `claim` at `now`: free, already `claim`'s, or not renewed
    /// for `stale_after`. Refused with [`StoreError::EngineRunning`] while another holds it.
    pub async fn acquire_engine_lease(
        &self,
        claim: &LeaseClaim,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<()> {
        let txn = self.write_txn().await?;
        let current = entity::Entity::find_by_id(LEASE_ROW).one(&txn).await?;
        let row = entity::ActiveModel {
            id: Set(LEASE_ROW),
            holder: Set(claim.holder.clone()),
            host: Set(claim.host.clone()),
            pid: Set(i64::from(claim.pid)),
            acquired_at: Set(now),
            renewed_at: Set(now),
        };
        match current {
            None => {
                if let Err(e) = row.insert(&txn).await {
                    // Another engine inserted it first.
                    if is_unique_violation(&e) {
                        drop(txn);
                        let held = entity::Entity::find_by_id(LEASE_ROW).one(&self.db).await?;
                        let holder = held.as_ref().map(holder_of);
                        return Err(StoreError::EngineRunning { holder: holder.map(Box::new) });
                    }
                    return Err(e.into());
                }
            }
            Some(held) => {
                let stale = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
                if held.holder != claim.holder && held.renewed_at + stale > now {
                    return Err(StoreError::EngineRunning { holder: Some(Box::new(holder_of(&held))) });
                }
                if held.holder != claim.holder {
                    tracing::warn!(holder = %holder_of(&held), "taking over a stale engine lease");
                }
                row.update(&txn).await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }

    /// Says `holder` is alive at `now`; `false` when it no longer holds the lease (another
    /// engine took it over as stale): the caller must stop its engine.
    pub async fn renew_engine_lease(&self, holder: &str, now: DateTime<Utc>) -> Result<bool> {
        let moved = entity::Entity::update_many()
            .col_expr(entity::Column::RenewedAt, now.into())
            .filter(entity::Column::Id.eq(LEASE_ROW))
            .filter(entity::Column::Holder.eq(holder))
            .exec(&self.db)
            .await?;
        Ok(moved.rows_affected == 1)
    }

    /// Gives the lease up, if `holder` still holds it: the next engine starts at once.
    pub async fn release_engine_lease(&self, holder: &str) -> Result<()> {
        entity::Entity::delete_many()
            .filter(entity::Column::Id.eq(LEASE_ROW))
            .filter(entity::Column::Holder.eq(holder))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Who holds the engine's lease, if anyone.
    pub async fn engine_lease(&self) -> Result<Option<LeaseHolder>> {
        Ok(entity::Entity::find_by_id(LEASE_ROW).one(&self.db).await?.as_ref().map(holder_of))
    }
}
