//! Manual score adjustments: points organisers add to or take from a team's total, each with
//! its mandatory reason and the organiser who made it, and the latest scored tick when it was
//! made. A frozen board shows only those made before the freeze.

use chrono::{DateTime, Utc};
use gongfang_core::scoring::Adjustments;
use gongfang_core::{TeamId, Tick};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryOrder};

use crate::Store;
use crate::entity::audit_log;
use crate::error::{Result, corrupt};

pub(crate) mod entity {
    #![allow(missing_debug_implementations)]

    pub mod score_adjustments {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "score_adjustments")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub team: i32,
            pub points: f64,
            pub reason: String,
            /// The latest scored tick when it was made; it counts from this tick on.
            pub tick: i32,
            /// The audit log's name of who made it (`account NAME`).
            pub made_by: String,
            pub made_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::score_adjustments;

/// Points an organiser added to (or, negative, took from) a team's total.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreAdjustment {
    pub id: i64,
    pub team: TeamId,
    pub points: f64,
    pub reason: String,
    /// It counts from this scored tick on.
    pub tick: Tick,
    pub made_by: String,
    pub made_at: DateTime<Utc>,
}

fn from_row(r: score_adjustments::Model) -> Result<ScoreAdjustment> {
    let bad = |what: &str| corrupt("score_adjustments", r.id, format!("{what} out of range"));
    Ok(ScoreAdjustment {
        id: i64::from(r.id),
        team: TeamId(u16::try_from(r.team).map_err(|_| bad("team"))?),
        points: r.points,
        tick: Tick(u32::try_from(r.tick).map_err(|_| bad("tick"))?),
        reason: r.reason,
        made_by: r.made_by,
        made_at: r.made_at,
    })
}

impl Store {
    /// Adds `points` to `team`'s total from `tick` on, audited under `actor` in the same
    /// transaction (`score.adjust`). The caller checks the points and the reason.
    #[tracing::instrument(skip(self, reason, at))]
    pub async fn adjust_score(
        &self,
        team: TeamId,
        points: f64,
        reason: &str,
        tick: Tick,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ScoreAdjustment> {
        let txn = self.write_txn().await?;
        let row = score_adjustments::ActiveModel {
            team: Set(i32::from(team.0)),
            points: Set(points),
            reason: Set(reason.to_owned()),
            tick: Set(i32::try_from(tick.0).unwrap_or(i32::MAX)),
            made_by: Set(actor.to_owned()),
            made_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let detail = serde_json::json!({
            "id": row.id, "team": team.0, "points": points, "reason": reason, "tick": tick.0,
        });
        audit_log::ActiveModel {
            at: Set(at),
            actor: Set(actor.to_owned()),
            action: Set("score.adjust".to_owned()),
            detail: Set(detail.to_string()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        from_row(row)
    }

    /// Every adjustment, oldest first.
    pub async fn score_adjustments(&self) -> Result<Vec<ScoreAdjustment>> {
        score_adjustments::Entity::find()
            .order_by_asc(score_adjustments::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Each team's adjustments, summed: those made by `made_by` that count in the standings
    /// of tick `counted_at` (made while it or an earlier tick was the latest scored). `None`
    /// leaves that bound out.
    pub async fn adjustment_totals(
        &self,
        made_by: Option<DateTime<Utc>>,
        counted_at: Option<Tick>,
    ) -> Result<Adjustments> {
        let mut totals = Adjustments::new();
        for a in self.score_adjustments().await? {
            if made_by.is_none_or(|by| a.made_at <= by) && counted_at.is_none_or(|t| a.tick <= t) {
                *totals.entry(a.team).or_default() += a.points;
            }
        }
        Ok(totals)
    }
}
