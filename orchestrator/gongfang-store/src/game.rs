//! The game's records: ticks, planted flags, checker results, submissions and scores.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use crate::entity::{check_results, flags, scores, submissions, ticks};
use crate::error::{Result, corrupt};
use crate::Store;

/// Rows per INSERT statement of a submission batch: 8 bound values each, far below both
/// databases' limits on bound parameters, and large enough that statement overhead vanishes.
const SUBMISSION_CHUNK: usize = 500;

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

/// A flag the checker planted in a team's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedFlag {
    pub tick: Tick,
    pub team: TeamId,
    pub service: ServiceId,
    pub store: StoreIdx,
    pub flag: String,
    /// The public hint attackers get (a user name, a document id, ...).
    pub flag_id: Option<String>,
    /// The checker's private state, handed back to `get`.
    pub state: Option<Vec<u8>>,
    pub planted_at: DateTime<Utc>,
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

/// Which checker action a result is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckAction {
    Check,
    Put,
    Get,
}

impl CheckAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckAction::Check => "check",
            CheckAction::Put => "put",
            CheckAction::Get => "get",
        }
    }
}

impl fmt::Display for CheckAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CheckAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "check" => Ok(CheckAction::Check),
            "put" => Ok(CheckAction::Put),
            "get" => Ok(CheckAction::Get),
            _ => Err(format!("unknown checker action `{s}`; expected check, put or get")),
        }
    }
}

/// One checker action's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub tick: Tick,
    pub team: TeamId,
    pub service: ServiceId,
    pub action: CheckAction,
    /// The flag store acted on (`put` and `get`).
    pub store: Option<StoreIdx>,
    pub verdict: Verdict,
    /// Shown to the team.
    pub message: String,
    /// Shown to organisers only.
    pub log: String,
    pub duration_ms: u64,
    pub recorded_at: DateTime<Utc>,
}

/// A validated flag submission, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    pub attacker: TeamId,
    pub flag: String,
    pub victim: TeamId,
    pub service: ServiceId,
    pub store: StoreIdx,
    pub tick_planted: Tick,
    pub tick_submitted: Tick,
    pub submitted_at: DateTime<Utc>,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubmission {
    pub id: i64,
    pub submission: NewSubmission,
}

/// Whether a submission was stored or had been submitted by the same attacker before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionOutcome {
    New,
    Duplicate,
}

/// One team's points in one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRow {
    pub tick: Tick,
    pub team: TeamId,
    pub attack: f64,
    pub defence: f64,
    pub sla: f64,
    pub total: f64,
}

fn tick_i32(t: Tick) -> i32 {
    // Ticks count minutes of a drill at most; 2^31 of them is beyond any drill.
    i32::try_from(t.0).unwrap_or(i32::MAX)
}

fn de<T: TryFrom<i32>>(table: &'static str, key: impl fmt::Display, what: &str, v: i32) -> Result<T> {
    T::try_from(v).map_err(|_| corrupt(table, &key, format!("{what} {v} out of range")))
}

fn tick_from_row(r: ticks::Model) -> Result<TickRecord> {
    Ok(TickRecord {
        tick: Tick(de("ticks", r.tick, "tick", r.tick)?),
        opened_at: r.opened_at,
        closed_at: r.closed_at,
        scored_at: r.scored_at,
    })
}

fn flag_from_row(r: flags::Model) -> Result<PlantedFlag> {
    Ok(PlantedFlag {
        tick: Tick(de("flags", r.id, "tick", r.tick)?),
        team: TeamId(de("flags", r.id, "team", r.team)?),
        service: ServiceId(de("flags", r.id, "service", r.service)?),
        store: StoreIdx(de("flags", r.id, "store", r.store)?),
        flag: r.flag,
        flag_id: r.flag_id,
        state: r.state,
        planted_at: r.planted_at,
    })
}

fn check_from_row(r: check_results::Model) -> Result<CheckResult> {
    Ok(CheckResult {
        tick: Tick(de("check_results", r.id, "tick", r.tick)?),
        team: TeamId(de("check_results", r.id, "team", r.team)?),
        service: ServiceId(de("check_results", r.id, "service", r.service)?),
        action: r.action.parse().map_err(|e| corrupt("check_results", r.id, e))?,
        store: r.store.map(|s| de("check_results", r.id, "store", s).map(StoreIdx)).transpose()?,
        verdict: r.verdict.parse().map_err(|e| corrupt("check_results", r.id, e))?,
        message: r.message,
        log: r.log,
        duration_ms: u64::try_from(r.duration_ms).map_err(|_| corrupt("check_results", r.id, "negative duration"))?,
        recorded_at: r.recorded_at,
    })
}

fn submission_from_row(r: submissions::Model) -> Result<StoredSubmission> {
    let key = r.id;
    Ok(StoredSubmission {
        id: i64::from(r.id),
        submission: NewSubmission {
            attacker: TeamId(de("submissions", key, "attacker", r.attacker)?),
            flag: r.flag,
            victim: TeamId(de("submissions", key, "victim", r.victim)?),
            service: ServiceId(de("submissions", key, "service", r.service)?),
            store: StoreIdx(de("submissions", key, "store", r.store)?),
            tick_planted: Tick(de("submissions", key, "tick_planted", r.tick_planted)?),
            tick_submitted: Tick(de("submissions", key, "tick_submitted", r.tick_submitted)?),
            submitted_at: r.submitted_at,
        },
    })
}

fn score_from_row(r: scores::Model) -> Result<ScoreRow> {
    let key = format!("({}, {})", r.tick, r.team);
    Ok(ScoreRow {
        tick: Tick(de("scores", &key, "tick", r.tick)?),
        team: TeamId(de("scores", &key, "team", r.team)?),
        attack: r.attack,
        defence: r.defence,
        sla: r.sla,
        total: r.total,
    })
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
        ticks::Entity::find().order_by_asc(ticks::Column::Tick).all(&self.db).await?.into_iter().map(tick_from_row).collect()
    }

    // ---- flags ----

    /// Stores a planted flag. Planting the same flag again (a retried `put`) replaces its
    /// flag id and state.
    pub async fn record_flag(&self, flag: &PlantedFlag) -> Result<()> {
        let insert = Query::insert()
            .into_table(flags::Entity)
            .columns([
                flags::Column::Tick,
                flags::Column::Team,
                flags::Column::Service,
                flags::Column::Store,
                flags::Column::Flag,
                flags::Column::FlagId,
                flags::Column::State,
                flags::Column::PlantedAt,
            ])
            .values_panic([
                tick_i32(flag.tick).into(),
                i32::from(flag.team.0).into(),
                i32::from(flag.service.0).into(),
                i32::from(flag.store.0).into(),
                flag.flag.clone().into(),
                flag.flag_id.clone().into(),
                flag.state.clone().into(),
                flag.planted_at.into(),
            ])
            .on_conflict(
                OnConflict::column(flags::Column::Flag)
                    .update_columns([flags::Column::FlagId, flags::Column::State, flags::Column::PlantedAt])
                    .to_owned(),
            )
            .to_owned();
        self.db.execute(&insert).await?;
        Ok(())
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
        let rows = flags::Entity::find()
            .filter(flags::Column::Tick.between(tick_i32(from), tick_i32(to)))
            .filter(flags::Column::FlagId.is_not_null())
            .order_by_asc(flags::Column::Tick)
            .order_by_asc(flags::Column::Team)
            .order_by_asc(flags::Column::Service)
            .order_by_asc(flags::Column::Store)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|r| {
                let f = flag_from_row(r)?;
                Ok(FlagIdHint {
                    tick: f.tick,
                    team: f.team,
                    service: f.service,
                    store: f.store,
                    flag_id: f.flag_id.unwrap_or_default(),
                })
            })
            .collect()
    }

    // ---- checker results ----

    pub async fn record_check(&self, result: &CheckResult) -> Result<()> {
        check_results::ActiveModel {
            tick: Set(tick_i32(result.tick)),
            team: Set(i32::from(result.team.0)),
            service: Set(i32::from(result.service.0)),
            action: Set(result.action.as_str().to_owned()),
            store: Set(result.store.map(|s| i32::from(s.0))),
            verdict: Set(result.verdict.as_str().to_owned()),
            message: Set(result.message.clone()),
            log: Set(result.log.clone()),
            duration_ms: Set(i64::try_from(result.duration_ms).unwrap_or(i64::MAX)),
            recorded_at: Set(result.recorded_at),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Checker results of a tick, optionally of one team, in the order they were recorded.
    pub async fn check_results(&self, tick: Tick, team: Option<TeamId>) -> Result<Vec<CheckResult>> {
        let mut query = check_results::Entity::find().filter(check_results::Column::Tick.eq(tick_i32(tick)));
        if let Some(team) = team {
            query = query.filter(check_results::Column::Team.eq(i32::from(team.0)));
        }
        query.order_by_asc(check_results::Column::Id).all(&self.db).await?.into_iter().map(check_from_row).collect()
    }

    // ---- submissions ----

    /// Stores a batch of submissions in one transaction and says, for each, whether it is new
    /// or the attacker had submitted that flag before (earlier in this batch, in an earlier
    /// batch, or concurrently). The unique (attacker, flag) constraint decides, so the answer
    /// is right under any concurrency: of many writers racing with one flag, exactly one
    /// gets `New`.
    #[tracing::instrument(skip_all, fields(rows = batch.len()))]
    pub async fn insert_submissions(&self, batch: &[NewSubmission]) -> Result<Vec<SubmissionOutcome>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        if batch.is_empty() {
            return Ok(outcomes);
        }
        let txn = self.write_txn().await?;
        for chunk in batch.chunks(SUBMISSION_CHUNK) {
            let mut insert = Query::insert();
            insert.into_table(submissions::Entity).columns([
                submissions::Column::Attacker,
                submissions::Column::Flag,
                submissions::Column::Victim,
                submissions::Column::Service,
                submissions::Column::Store,
                submissions::Column::TickPlanted,
                submissions::Column::TickSubmitted,
                submissions::Column::SubmittedAt,
            ]);
            for s in chunk {
                insert.values_panic([
                    i32::from(s.attacker.0).into(),
                    s.flag.clone().into(),
                    i32::from(s.victim.0).into(),
                    i32::from(s.service.0).into(),
                    i32::from(s.store.0).into(),
                    tick_i32(s.tick_planted).into(),
                    tick_i32(s.tick_submitted).into(),
                    s.submitted_at.into(),
                ]);
            }
            insert
                .on_conflict(
                    OnConflict::columns([submissions::Column::Attacker, submissions::Column::Flag])
                        .do_nothing()
                        .to_owned(),
                )
                .returning(Query::returning().columns([submissions::Column::Attacker, submissions::Column::Flag]));
            // RETURNING yields exactly the rows inserted; a pair seen twice in the chunk is
            // inserted once, so its first occurrence is the new one.
            let mut inserted: HashSet<(i32, String)> = HashSet::new();
            for row in txn.query_all(&insert).await? {
                let attacker: i32 = row.try_get("", "attacker")?;
                let flag: String = row.try_get("", "flag")?;
                inserted.insert((attacker, flag));
            }
            for s in chunk {
                let key = (i32::from(s.attacker.0), s.flag.clone());
                outcomes.push(if inserted.remove(&key) {
                    SubmissionOutcome::New
                } else {
                    SubmissionOutcome::Duplicate
                });
            }
        }
        txn.commit().await?;
        Ok(outcomes)
    }

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

    /// How many submissions are stored in all.
    pub async fn count_submissions(&self) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(submissions::Entity::find().count(&self.db).await?)
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
                    r.attack.into(),
                    r.defence.into(),
                    r.sla.into(),
                    r.total.into(),
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
