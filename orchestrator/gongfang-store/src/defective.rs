//! Checker results organisers marked defective: a tick's verdict of one team's service that
//! scoring must not count against the team (a checker bug, a fault of the platform). Scoring
//! reads such a cell as `checker-error`, which costs nothing; the engine, told through
//! [`Store::defective_watch`], scores every tick again from the stored events.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use gongfang_core::{ServiceId, TeamId, Tick};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::Store;
use crate::entity::audit_log;
use crate::error::{Result, corrupt};

pub(crate) mod entity {
    #![allow(missing_debug_implementations)]

    pub mod defective_results {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "defective_results")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub tick: i32,
            pub team: i32,
            pub service: i32,
            pub reason: String,
            /// The audit log's name of who marked it (`account NAME`).
            pub marked_by: String,
            pub marked_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::defective_results;

/// One tick of one team's service whose verdict does not count against the team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefectiveResult {
    pub tick: Tick,
    pub team: TeamId,
    pub service: ServiceId,
    pub reason: String,
    pub marked_by: String,
    pub marked_at: DateTime<Utc>,
}

/// The cells marked defective, for scoring.
pub type DefectiveCells = HashSet<(Tick, TeamId, ServiceId)>;

fn from_row(r: defective_results::Model) -> Result<DefectiveResult> {
    let bad = |what: &str| corrupt("defective_results", r.id, format!("{what} out of range"));
    Ok(DefectiveResult {
        tick: Tick(u32::try_from(r.tick).map_err(|_| bad("tick"))?),
        team: TeamId(u16::try_from(r.team).map_err(|_| bad("team"))?),
        service: ServiceId(u8::try_from(r.service).map_err(|_| bad("service"))?),
        reason: r.reason,
        marked_by: r.marked_by,
        marked_at: r.marked_at,
    })
}

impl Store {
    /// Marks the verdict of `team`'s `service` in `tick` defective, audited under `actor` in
    /// the same transaction, and tells this process's engine to score again. Whether it was
    /// new (a cell marked before stays as it was).
    #[tracing::instrument(skip(self, reason, at))]
    pub async fn mark_defective(
        &self,
        tick: Tick,
        team: TeamId,
        service: ServiceId,
        reason: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let tick_i32 = i32::try_from(tick.0).unwrap_or(i32::MAX);
        // A writer's transaction from the start (SQLite: no read-to-write upgrade to fail
        // while the engine writes); a mark racing another of the same cell finds it.
        let txn = self.write_txn().await?;
        let existing = defective_results::Entity::find()
            .filter(defective_results::Column::Tick.eq(tick_i32))
            .filter(defective_results::Column::Team.eq(i32::from(team.0)))
            .filter(defective_results::Column::Service.eq(i32::from(service.0)))
            .one(&txn)
            .await?;
        if existing.is_some() {
            return Ok(false);
        }
        defective_results::ActiveModel {
            tick: Set(tick_i32),
            team: Set(i32::from(team.0)),
            service: Set(i32::from(service.0)),
            reason: Set(reason.to_owned()),
            marked_by: Set(actor.to_owned()),
            marked_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let detail = serde_json::json!({ "tick": tick.0, "team": team.0, "service": service.0, "reason": reason });
        audit_log::ActiveModel {
            at: Set(at),
            actor: Set(actor.to_owned()),
            action: Set("result.defective".to_owned()),
            detail: Set(detail.to_string()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        self.defective.send_modify(|marks| *marks += 1);
        Ok(true)
    }

    /// Every result marked defective, oldest mark first.
    pub async fn defective_results(&self) -> Result<Vec<DefectiveResult>> {
        defective_results::Entity::find()
            .order_by_asc(defective_results::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// The cells marked defective, as scoring looks them up.
    pub async fn defective_cells(&self) -> Result<DefectiveCells> {
        Ok(self.defective_results().await?.into_iter().map(|d| (d.tick, d.team, d.service)).collect())
    }

    /// Counts the marks made through this store (and its clones) since it was opened: the
    /// engine scores again when it changes.
    pub fn defective_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.defective.subscribe()
    }
}
