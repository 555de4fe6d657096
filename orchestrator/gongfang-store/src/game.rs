//! The game's records: ticks, planted flags, checker results, submissions and scores.

use chrono::{DateTime, Utc};
use gongfang_core::record::{CheckResult, NewSubmission, PlantedFlag, ScoreRow};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::{check_results, flags, scores, submissions, ticks};
use crate::error::Result;
use crate::rows::{check_from_row, de, flag_from_row, score_from_row, submission_from_row, tick_from_row, tick_i32};
use crate::{Backend, Store};

/// Rows per INSERT statement of the engine's result batches: at most 11 bound values each,
/// under SQLite's limit of 32,766 bound parameters per statement.
const RESULT_CHUNK: usize = 1_000;

/// A tick's lifecycle as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickRecord {
    pub tick: Tick,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub scored_at: Option<DateTime<Utc>>,
}

impl TickRecord {
    pub fn is_closed(&self) -> bool {
        self.closed_at.is_some()
    }

    pub fn is_scored(&self) -> bool {
        self.scored_at.is_some()
    }
}

/// A public flag id for attack info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagIdHint {
    pub tick: Tick,
    pub team: TeamId,
    pub service: ServiceId,
    pub store: StoreIdx,
    pub flag_id: String,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubmission {
    pub id: i64,
    pub submission: NewSubmission,
}

impl Store {
    // ---- ticks ----

    /// Records that `tick` opened. Returns `false` if it was already open (a restart).
    pub async fn open_tick(&self, tick: Tick, at: DateTime<Utc>) -> Result<bool> {
        let insert = Query::insert()
            .into_table(ticks::Entity)
            .columns([ticks::Column::Tick, ticks::Column::OpenedAt, ticks::Column::Scored])
            .values_panic([tick_i32(tick).into(), at.into(), false.into()])
            .on_conflict(OnConflict::column(ticks::Column::Tick).do_nothing().to_owned())
            .to_owned();
        let done = self.db.execute(&insert).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that `tick` closed (its verdicts are final). Returns `false` if it was never
    /// opened or is already closed.
    pub async fn close_tick(&self, tick: Tick, at: DateTime<Utc>) -> Result<bool> {
        let done = ticks::Entity::update_many()
            .col_expr(ticks::Column::ClosedAt, at.into())
            .filter(ticks::Column::Tick.eq(tick_i32(tick)))
            .filter(ticks::Column::ClosedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Records that scores of `tick` are computed. Returns `false` if it was never opened
    /// or is already scored.
    pub async fn mark_tick_scored(&self, tick: Tick, at: DateTime<Utc>) -> Result<bool> {
        let done = ticks::Entity::update_many()
            .col_expr(ticks::Column::Scored, true.into())
            .col_expr(ticks::Column::ScoredAt, at.into())
            .filter(ticks::Column::Tick.eq(tick_i32(tick)))
            .filter(ticks::Column::Scored.eq(false))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected == 1)
    }

    pub async fn tick(&self, tick: Tick) -> Result<Option<TickRecord>> {
        ticks::Entity::find_by_id(tick_i32(tick)).one(&self.db).await?.map(tick_from_row).transpose()
    }

    /// The most recently opened tick.
    pub async fn latest_tick(&self) -> Result<Option<TickRecord>> {
        ticks::Entity::find().order_by_desc(ticks::Column::Tick).one(&self.db).await?.map(tick_from_row).transpose()
    }

    pub async fn list_ticks(&self) -> Result<Vec<TickRecord>> {
        ticks::Entity::find()
            .order_by_asc(ticks::Column::Tick)
            .all(&self.db)
            .await?
            .into_iter()
            .map(tick_from_row)
            .collect()
    }

    // ---- flags ----

    /// Stores a planted flag. Planting the same flag again (a retried `put`) replaces its
    /// flag id and state.
    pub async fn record_flag(&self, flag: &PlantedFlag) -> Result<()> {
        self.record_tick_results(std::slice::from_ref(flag), &[]).await
    }

    /// The flag planted in this slot, for `get`.
    pub async fn planted_flag(
        &self,
        tick: Tick,
        team: TeamId,
        service: ServiceId,
        store: StoreIdx,
    ) -> Result<Option<PlantedFlag>> {
        flags::Entity::find()
            .filter(flags::Column::Tick.eq(tick_i32(tick)))
            .filter(flags::Column::Team.eq(i32::from(team.0)))
            .filter(flags::Column::Service.eq(i32::from(service.0)))
            .filter(flags::Column::Store.eq(i32::from(store.0)))
            .order_by_desc(flags::Column::PlantedAt)
            .one(&self.db)
            .await?
            .map(flag_from_row)
            .transpose()
    }

    /// Public flag ids of ticks `from..=to`, for attack info, by tick, team, service, store.
    pub async fn flag_ids(&self, from: Tick, to: Tick) -> Result<Vec<FlagIdHint>> {
        // Only the columns the hint shows: the flag itself and the checker's private state are
        // never read for the public attack info.
        let rows: Vec<(i32, i32, i32, i32, i32, Option<String>)> = flags::Entity::find()
            .select_only()
            .columns([
                flags::Column::Id,
                flags::Column::Tick,
                flags::Column::Team,
                flags::Column::Service,
                flags::Column::Store,
                flags::Column::FlagId,
            ])
            .filter(flags::Column::Tick.between(tick_i32(from), tick_i32(to)))
            .filter(flags::Column::FlagId.is_not_null())
            .order_by_asc(flags::Column::Tick)
            .order_by_asc(flags::Column::Team)
            .order_by_asc(flags::Column::Service)
            .order_by_asc(flags::Column::Store)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(id, tick, team, service, store, flag_id)| {
                Ok(FlagIdHint {
                    tick: Tick(de("flags", id, "tick", tick)?),
                    team: TeamId(de("flags", id, "team", team)?),
                    service: ServiceId(de("flags", id, "service", service)?),
                    store: StoreIdx(de("flags", id, "store", store)?),
                    flag_id: flag_id.unwrap_or_default(),
                })
            })
            .collect()
    }

    // ---- checker results ----

    /// Stores one checker action's result.
    pub async fn record_check(&self, result: &CheckResult) -> Result<()> {
        self.record_tick_results(&[], std::slice::from_ref(result)).await
    }

    /// Stores a slice of a tick's work in one transaction: the flags its `put`s planted and
    /// the results of its actions. The engine writes a tick in a few such batches instead of a
    /// commit per action, so a tick of thousands of actions costs a few fsyncs.
    pub async fn record_tick_results(&self, planted: &[PlantedFlag], results: &[CheckResult]) -> Result<()> {
        if planted.is_empty() && results.is_empty() {
            return Ok(());
        }
        let txn = self.write_txn().await?;
        for chunk in planted.chunks(RESULT_CHUNK) {
            let mut insert = Query::insert();
            insert.into_table(flags::Entity).columns([
                flags::Column::Tick,
                flags::Column::Team,
                flags::Column::Service,
                flags::Column::Store,
                flags::Column::Flag,
                flags::Column::FlagId,
                flags::Column::State,
                flags::Column::PlantedAt,
            ]);
            for flag in chunk {
                insert.values_panic([
                    tick_i32(flag.tick).into(),
                    i32::from(flag.team.0).into(),
                    i32::from(flag.service.0).into(),
                    i32::from(flag.store.0).into(),
                    flag.flag.clone().into(),
                    flag.flag_id.clone().into(),
                    flag.state.clone().into(),
                    flag.planted_at.into(),
                ]);
            }
            insert.on_conflict(
                OnConflict::column(flags::Column::Flag)
                    .update_columns([flags::Column::FlagId, flags::Column::State, flags::Column::PlantedAt])
                    .to_owned(),
            );
            txn.execute(&insert).await?;
        }
        for chunk in results.chunks(RESULT_CHUNK) {
            let mut insert = Query::insert();
            insert.into_table(check_results::Entity).columns([
                check_results::Column::Tick,
                check_results::Column::Team,
                check_results::Column::Service,
                check_results::Column::Action,
                check_results::Column::Store,
                check_results::Column::Verdict,
                check_results::Column::Message,
                check_results::Column::Log,
                check_results::Column::DurationMs,
                check_results::Column::RecordedAt,
                check_results::Column::Fault,
            ]);
            for r in chunk {
                insert.values_panic([
                    tick_i32(r.tick).into(),
                    i32::from(r.team.0).into(),
                    i32::from(r.service.0).into(),
                    r.action.as_str().into(),
                    r.store.map(|s| i32::from(s.0)).into(),
                    r.verdict.as_str().into(),
                    r.message.clone().into(),
                    r.log.clone().into(),
                    i64::try_from(r.duration_ms).unwrap_or(i64::MAX).into(),
                    r.recorded_at.into(),
                    r.fault.map(|f| f.as_str()).into(),
                ]);
            }
            txn.execute(&insert).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Forgets the results (and exploit replays) of a tick that never closed, before the engine
    /// plays it again after a restart: the new actions replace them, so none is counted twice.
    /// Refuses a closed tick, whose results are final.
    pub async fn discard_open_tick_results(&self, tick: Tick) -> Result<u64> {
        if self.tick(tick).await?.is_some_and(|t| t.is_closed()) {
            return Err(crate::error::StoreError::TickClosed(tick.0));
        }
        let done = check_results::Entity::delete_many()
            .filter(check_results::Column::Tick.eq(tick_i32(tick)))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected + self.discard_replays(tick).await?)
    }

    /// Every flag planted in ticks `from..=to`, for the engine's `get`s of one tick.
    pub async fn planted_flags(&self, from: Tick, to: Tick) -> Result<Vec<PlantedFlag>> {
        flags::Entity::find()
            .filter(flags::Column::Tick.between(tick_i32(from), tick_i32(to)))
            .order_by_asc(flags::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(flag_from_row)
            .collect()
    }

    /// Checker results of a tick, optionally of one team, in the order they were recorded.
    pub async fn check_results(&self, tick: Tick, team: Option<TeamId>) -> Result<Vec<CheckResult>> {
        let mut query = check_results::Entity::find().filter(check_results::Column::Tick.eq(tick_i32(tick)));
        if let Some(team) = team {
            query = query.filter(check_results::Column::Team.eq(i32::from(team.0)));
        }
        query.order_by_asc(check_results::Column::Id).all(&self.db).await?.into_iter().map(check_from_row).collect()
    }

    /// The latest closed tick with checker results (a closed tick's results are complete;
    /// the open one's are still being stored); `None` before the first. Ticks played while the
    /// drill is paused have none.
    pub async fn latest_checked_tick(&self) -> Result<Option<Tick>> {
        let closed = ticks::Entity::find()
            .filter(ticks::Column::ClosedAt.is_not_null())
            .order_by_desc(ticks::Column::Tick)
            .one(&self.db)
            .await?;
        let Some(closed) = closed else { return Ok(None) };
        let row = check_results::Entity::find()
            .filter(check_results::Column::Tick.lte(closed.tick))
            .order_by_desc(check_results::Column::Tick)
            .limit(1)
            .one(&self.db)
            .await?;
        Ok(row.map(|r| Tick(u32::try_from(r.tick).unwrap_or(0))))
    }

    /// Checker results of one team from tick `from` on, oldest first (a team's portal shows
    /// its recent history).
    pub async fn team_results(&self, team: TeamId, from: Tick) -> Result<Vec<CheckResult>> {
        check_results::Entity::find()
            .filter(check_results::Column::Team.eq(i32::from(team.0)))
            .filter(check_results::Column::Tick.gte(tick_i32(from)))
            .order_by_asc(check_results::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(check_from_row)
            .collect()
    }

    // ---- submissions ----

    /// Submissions made during `tick`, in the order they were stored.
    pub async fn submissions_in_tick(&self, tick: Tick) -> Result<Vec<StoredSubmission>> {
        submissions::Entity::find()
            .filter(submissions::Column::TickSubmitted.eq(tick_i32(tick)))
            .order_by_asc(submissions::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(submission_from_row)
            .collect()
    }

    /// Submissions of flags planted in `tick` or later: the flags that may still be
    /// submitted, when `tick` is the oldest tick whose flags have not expired. Read by a
    /// submission server when it starts, so it can answer their resubmissions itself.
    pub async fn submissions_planted_since(&self, tick: Tick) -> Result<Vec<StoredSubmission>> {
        submissions::Entity::find()
            .filter(submissions::Column::TickPlanted.gte(tick_i32(tick)))
            // Implied (a flag is submitted after it is planted); it lets the tick index narrow
            // the scan to the newest rows.
            .filter(submissions::Column::TickSubmitted.gte(tick_i32(tick)))
            .order_by_asc(submissions::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(submission_from_row)
            .collect()
    }

    /// How many submissions are stored in all.
    pub async fn count_submissions(&self) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(submissions::Entity::find().count(&self.db).await?)
    }

    /// Services of which at least one flag has been captured, ascending: what a restarted
    /// submission server needs to announce first blood once per service and drill.
    ///
    /// The cost depends on the scenario's size, not on how many submissions are stored: on
    /// SQLite one probe of the (victim, service) index per team and service; on PostgreSQL,
    /// which has no such index (it cost too much per stored flag), a read of
    /// `captured_services`, which a trigger keeps as submissions are inserted.
    pub async fn captured_services(&self) -> Result<Vec<ServiceId>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT s.id FROM services s WHERE EXISTS (SELECT 1 FROM teams t WHERE EXISTS \
                 (SELECT 1 FROM submissions x WHERE x.victim = t.id AND x.service = s.id)) ORDER BY s.id"
            }
            Backend::Postgres => "SELECT service AS id FROM captured_services ORDER BY service",
        };
        let statement = sea_orm::Statement::from_string(self.db.get_database_backend(), sql);
        let mut services = Vec::new();
        for row in self.db.query_all_raw(statement).await? {
            let id: i32 = row.try_get("", "id")?;
            services.push(ServiceId(de("services", id, "id", id)?));
        }
        Ok(services)
    }

    // ---- scores ----

    /// Stores scores, replacing any row of the same tick and team (scores are recomputable,
    /// so recomputing a tick overwrites it). One transaction.
    pub async fn upsert_scores(&self, rows: &[ScoreRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let txn = self.write_txn().await?;
        for chunk in rows.chunks(1000) {
            let mut insert = Query::insert();
            insert.into_table(scores::Entity).columns([
                scores::Column::Tick,
                scores::Column::Team,
                scores::Column::Attack,
                scores::Column::Defence,
                scores::Column::Sla,
                scores::Column::Total,
            ]);
            for r in chunk {
                insert.values_panic([
                    tick_i32(r.tick).into(),
                    i32::from(r.team.0).into(),
                    r.score.attack.into(),
                    r.score.defence.into(),
                    r.score.sla.into(),
                    r.score.total.into(),
                ]);
            }
            insert.on_conflict(
                OnConflict::columns([scores::Column::Tick, scores::Column::Team])
                    .update_columns([
                        scores::Column::Attack,
                        scores::Column::Defence,
                        scores::Column::Sla,
                        scores::Column::Total,
                    ])
                    .to_owned(),
            );
            txn.execute(&insert).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Scores of one tick, by team.
    pub async fn scores_for_tick(&self, tick: Tick) -> Result<Vec<ScoreRow>> {
        scores::Entity::find()
            .filter(scores::Column::Tick.eq(tick_i32(tick)))
            .order_by_asc(scores::Column::Team)
            .all(&self.db)
            .await?
            .into_iter()
            .map(score_from_row)
            .collect()
    }

    /// Every stored score, by tick then team.
    pub async fn list_scores(&self) -> Result<Vec<ScoreRow>> {
        scores::Entity::find()
            .order_by_asc(scores::Column::Tick)
            .order_by_asc(scores::Column::Team)
            .all(&self.db)
            .await?
            .into_iter()
            .map(score_from_row)
            .collect()
    }
}
