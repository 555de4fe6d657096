//! Exploit replays: what each tick's run of the reference exploit showed about each team's
//! service, per flag store. Written with the tick's other results, dropped with them when an
//! interrupted tick is played again.

use gongfang_core::{ExploitReplay, Exposure, ServiceId, StoreIdx, TeamId, Tick};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::Store;
use crate::error::{Result, corrupt};
use crate::rows::tick_i32;

pub(crate) mod entity {
    #![allow(missing_debug_implementations)]

    pub mod exploit_replays {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "exploit_replays")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub tick: i32,
            pub team: i32,
            pub service: i32,
            pub store: i32,
            pub exposure: String,
            pub message: String,
            pub recorded_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::exploit_replays;

/// Rows per insert statement.
const CHUNK: usize = 500;

fn from_row(row: exploit_replays::Model) -> Result<ExploitReplay> {
    let id = row.id;
    let small = |v: i32, what: &str| {
        u16::try_from(v).map_err(|_| corrupt("exploit_replays", id, format!("{what} out of range")))
    };
    Ok(ExploitReplay {
        tick: Tick(u32::try_from(row.tick).map_err(|_| corrupt("exploit_replays", id, "tick out of range"))?),
        team: TeamId(small(row.team, "team")?),
        service: ServiceId(
            u8::try_from(row.service).map_err(|_| corrupt("exploit_replays", id, "service out of range"))?,
        ),
        store: StoreIdx(u8::try_from(row.store).map_err(|_| corrupt("exploit_replays", id, "store out of range"))?),
        exposure: Exposure::from_name(&row.exposure)
            .ok_or_else(|| corrupt("exploit_replays", id, format!("unknown exposure {:?}", row.exposure)))?,
        message: row.message,
        recorded_at: row.recorded_at,
    })
}

impl Store {
    /// Stores replays of the open tick, in one transaction.
    pub async fn record_exploit_replays(&self, replays: &[ExploitReplay]) -> Result<()> {
        if replays.is_empty() {
            return Ok(());
        }
        let txn = self.write_txn().await?;
        for chunk in replays.chunks(CHUNK) {
            let rows = chunk.iter().map(|r| exploit_replays::ActiveModel {
                tick: sea_orm::ActiveValue::Set(tick_i32(r.tick)),
                team: sea_orm::ActiveValue::Set(i32::from(r.team.0)),
                service: sea_orm::ActiveValue::Set(i32::from(r.service.0)),
                store: sea_orm::ActiveValue::Set(i32::from(r.store.0)),
                exposure: sea_orm::ActiveValue::Set(r.exposure.as_str().to_owned()),
                message: sea_orm::ActiveValue::Set(r.message.clone()),
                recorded_at: sea_orm::ActiveValue::Set(r.recorded_at),
                ..Default::default()
            });
            exploit_replays::Entity::insert_many(rows).exec(&txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The replays of ticks `from..=to`, optionally of one team, by tick, team, service, store.
    pub async fn exploit_replays(&self, from: Tick, to: Tick, team: Option<TeamId>) -> Result<Vec<ExploitReplay>> {
        let mut query =
            exploit_replays::Entity::find().filter(exploit_replays::Column::Tick.between(tick_i32(from), tick_i32(to)));
        if let Some(team) = team {
            query = query.filter(exploit_replays::Column::Team.eq(i32::from(team.0)));
        }
        query
            .order_by_asc(exploit_replays::Column::Tick)
            .order_by_asc(exploit_replays::Column::Team)
            .order_by_asc(exploit_replays::Column::Service)
            .order_by_asc(exploit_replays::Column::Store)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Drops the replays of a tick being played again.
    pub(crate) async fn discard_replays(&self, tick: Tick) -> Result<u64> {
        let done = exploit_replays::Entity::delete_many()
            .filter(exploit_replays::Column::Tick.eq(tick_i32(tick)))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }
}
