//! The scorer's snapshot: the engine's scoring state after the latest scored tick, kept in one
//! row, so a restarted engine continues from it rather than scoring every stored tick again.
//! It is only a shortcut: the stored events stay the truth, and a snapshot that is missing,
//! stale or taken with other results marked defective is passed over.

use chrono::{DateTime, Utc};
use gongfang_core::Tick;
use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};
use sha2::{Digest, Sha256};

use crate::error::{Result, corrupt};
use crate::rows::tick_i32;
use crate::{DefectiveCells, Store};

/// Entity of `scorer_snapshot` (`m20261222_000001_scorer_snapshot`). Private to this module.
#[allow(missing_debug_implementations)]
mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scorer_snapshot")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub tick: i32,
        pub marks: String,
        #[sea_orm(column_type = "Blob")]
        pub state: Vec<u8>,
        pub taken_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The snapshot's one row.
const SNAPSHOT_ROW: i32 = 1;

/// A stored scorer snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScorerSnapshot {
    /// The last tick it has scored.
    pub tick: Tick,
    /// [`marks_digest`] of the results marked defective that it was scored with.
    pub marks: String,
    /// What `Scorer::snapshot` gave.
    pub state: Vec<u8>,
    pub taken_at: DateTime<Utc>,
}

/// A digest of the cells marked defective, in any order: a snapshot scored with other marks
/// than the drill has now is not continued from.
pub fn marks_digest(cells: &DefectiveCells) -> String {
    let mut sorted: Vec<_> = cells.iter().map(|&(tick, team, service)| (tick.0, team.0, service.0)).collect();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    for (tick, team, service) in sorted {
        h.update(tick.to_be_bytes());
        h.update(team.to_be_bytes());
        h.update([service]);
    }
    hex::encode(h.finalize())
}

impl Store {
    /// Replaces the scorer's snapshot with `snapshot`.
    pub async fn save_scorer_snapshot(&self, snapshot: &ScorerSnapshot) -> Result<()> {
        let row = entity::ActiveModel {
            id: Set(SNAPSHOT_ROW),
            tick: Set(tick_i32(snapshot.tick)),
            marks: Set(snapshot.marks.clone()),
            state: Set(snapshot.state.clone()),
            taken_at: Set(snapshot.taken_at),
        };
        let txn = self.write_txn().await?;
        entity::Entity::insert(row)
            .on_conflict(
                OnConflict::column(entity::Column::Id)
                    .update_columns([
                        entity::Column::Tick,
                        entity::Column::Marks,
                        entity::Column::State,
                        entity::Column::TakenAt,
                    ])
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The scorer's latest snapshot, if one was taken.
    pub async fn scorer_snapshot(&self) -> Result<Option<ScorerSnapshot>> {
        let Some(row) = entity::Entity::find_by_id(SNAPSHOT_ROW).one(&self.db).await? else {
            return Ok(None);
        };
        let tick = u32::try_from(row.tick).map_err(|_| corrupt("scorer_snapshot", row.id, "tick out of range"))?;
        Ok(Some(ScorerSnapshot { tick: Tick(tick), marks: row.marks, state: row.state, taken_at: row.taken_at }))
    }
}
