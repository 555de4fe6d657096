//! The game's records: ticks, planted flags, checker results, submissions and scores.

use std::fmt;

use chrono::{DateTime, Utc};
use gongfang_core::record::{CheckResult, NewSubmission, PlantedFlag, ScoreRow};
use gongfang_core::scoring::TeamScore;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::{check_results, flags, scores, submissions, ticks};
use crate::error::{Result, StoreError, corrupt};
use crate::{Backend, Store};

/// Rows per INSERT statement of the engine's result batches: at most 10 bound values each,
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

/// Whether a submission was stored or had been submitted by the same attacker before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionOutcome {
    New,
    Duplicate,
}

pub(crate) fn tick_i32(t: Tick) -> i32 {
    // Ticks count minutes of a drill at most; 2^31 of them is beyond any drill.
    i32::try_from(t.0).unwrap_or(i32::MAX)
}

/// The unique key of a submission; batches are sorted by it.
fn submission_key(s: &NewSubmission) -> (u16, &[u8]) {
    (s.attacker.0, s.flag.as_bytes())
}

/// Rows per SQLite INSERT statement, at most: 8 bound values each, 8,192 in all, far under
/// SQLite's limit of 32,766 bound parameters per statement.
const SQLITE_INSERT_ROWS: usize = 1024;

/// The SQLite statement inserting the next rows of a batch with `left` rows to go, and how
/// many rows it takes: the largest power of two up to [`SQLITE_INSERT_ROWS`], so a batch of
/// any size uses at most 11 distinct texts, each prepared once per connection.
fn sqlite_insert_for(left: usize) -> (&'static str, usize) {
    static TEXTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        (0..=SQLITE_INSERT_ROWS.ilog2())
            .map(|bits| {
                let rows = 1usize << bits;
                let mut sql = String::with_capacity(160 + rows * 18);
                sql.push_str(
                    "INSERT INTO submissions (attacker, flag, victim, service, store, tick_planted, \
                     tick_submitted, submitted_at) VALUES ",
                );
                for i in 0..rows {
                    sql.push_str(if i == 0 { "(?,?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?,?)" });
                }
                sql.push_str(" ON CONFLICT (attacker, flag) DO NOTHING");
                sql
            })
            .collect()
    });
    let bits = left.min(SQLITE_INSERT_ROWS).ilog2();
    (TEXTS[bits as usize].as_str(), 1 << bits)
}

/// The start of PostgreSQL's batch insert: the columns of a batch as eight arrays, bound by
/// [`bind_columns`].
macro_rules! postgres_insert_submissions {
    () => {
        "INSERT INTO submissions \
         (attacker, flag, victim, service, store, tick_planted, tick_submitted, submitted_at) \
         SELECT * FROM UNNEST($1::int4[], $2::text[], $3::int4[], $4::int4[], $5::int4[], $6::int4[], \
         $7::int4[], $8::timestamptz[])"
    };
}

/// `sql` with the columns of `rows` bound as the arrays `$1` to `$8` of
/// [`postgres_insert_submissions`].
fn bind_columns(
    sql: &'static str,
    rows: &[&NewSubmission],
) -> sea_orm::sqlx::query::Query<'static, sea_orm::sqlx::Postgres, sea_orm::sqlx::postgres::PgArguments> {
    let column = |f: fn(&NewSubmission) -> i32| rows.iter().map(|s| f(s)).collect::<Vec<i32>>();
    sea_orm::sqlx::query(sql)
        .bind(column(|s| i32::from(s.attacker.0)))
        .bind(rows.iter().map(|s| s.flag.clone()).collect::<Vec<String>>())
        .bind(column(|s| i32::from(s.victim.0)))
        .bind(column(|s| i32::from(s.service.0)))
        .bind(column(|s| i32::from(s.store.0)))
        .bind(column(|s| tick_i32(s.tick_planted)))
        .bind(column(|s| tick_i32(s.tick_submitted)))
        .bind(rows.iter().map(|s| s.submitted_at).collect::<Vec<DateTime<Utc>>>())
}

/// Whether `e` is the unique (attacker, flag) constraint refusing a row.
fn is_duplicate_submission(e: &sea_orm::sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() && d.constraint() == Some("uq_submissions_attacker_flag"))
}

/// Marks the row of `unique` (in key order) that the database returned as inserted.
fn mark_inserted(unique: &[&NewSubmission], inserted: &mut [bool], attacker: i32, flag: &str) -> Result<()> {
    let key = (u16::try_from(attacker).unwrap_or(u16::MAX), flag.as_bytes());
    match unique.binary_search_by(|u| submission_key(u).cmp(&key)) {
        Ok(at) => {
            inserted[at] = true;
            Ok(())
        }
        Err(_) => {
            Err(corrupt("submissions", format!("({attacker}, {flag})"), "inserted a row that was not in the batch"))
        }
    }
}

/// A driver error, as the rest of the store reports database failures.
fn sqlx_error(e: sea_orm::sqlx::Error) -> StoreError {
    StoreError::from(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e))))
}

pub(crate) fn de<T: TryFrom<i32>>(table: &'static str, key: impl fmt::Display, what: &str, v: i32) -> Result<T> {
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

pub(crate) fn check_from_row(r: check_results::Model) -> Result<CheckResult> {
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

pub(crate) fn submission_from_row(r: submissions::Model) -> Result<StoredSubmission> {
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
        score: TeamScore { attack: r.attack, defence: r.defence, sla: r.sla, total: r.total },
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
                ]);
            }
            txn.execute(&insert).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Forgets the results of a tick that never closed, before the engine plays it again
    /// after a restart: the replay's actions replace them, so none is counted twice.
    /// Refuses a closed tick, whose results are final.
    pub async fn discard_open_tick_results(&self, tick: Tick) -> Result<u64> {
        if self.tick(tick).await?.is_some_and(|t| t.is_closed()) {
            return Err(crate::error::StoreError::TickClosed(tick.0));
        }
        let done = check_results::Entity::delete_many()
            .filter(check_results::Column::Tick.eq(tick_i32(tick)))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
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

    // ---- submissions ----

    /// Stores a batch of submissions atomically and says, for each, whether it is new or the
    /// attacker had submitted that flag before (earlier in this batch, in an earlier batch, or
    /// concurrently). The unique (attacker, flag) constraint decides, so the answer is right
    /// under any concurrency: of many writers racing with one flag, exactly one gets `New`.
    /// Returns only once the batch is durably committed.
    ///
    /// On PostgreSQL the batch is one statement whose columns travel as eight arrays
    /// (`UNNEST`), on SQLite a few multi-row `INSERT`s in one transaction; every text is
    /// prepared once per connection and reused. Rows go in (attacker, flag) order, so batches
    /// committed concurrently take their row locks in one order and cannot deadlock.
    pub async fn insert_submissions(&self, batch: &[NewSubmission]) -> Result<Vec<SubmissionOutcome>> {
        self.insert_submissions_expecting(batch, false).await
    }

    /// [`Store::insert_submissions`] for a batch whose caller has answered the duplicates it
    /// knows of itself, so its rows are expected to be new: the same answers and guarantees,
    /// cheaper on PostgreSQL while the expectation holds. The rows then go in with a plain
    /// `INSERT`, which spares `ON CONFLICT`'s extra probe of the unique index per row and the
    /// reading back of which rows were inserted. Should a row be stored already (by another
    /// server on the same database, or by a batch the caller had not seen committed), the
    /// unique constraint fails the statement, which has then stored nothing, and the batch is
    /// inserted again as [`Store::insert_submissions`] does.
    pub async fn insert_new_submissions(&self, batch: &[NewSubmission]) -> Result<Vec<SubmissionOutcome>> {
        self.insert_submissions_expecting(batch, true).await
    }

    #[tracing::instrument(skip_all, fields(rows = batch.len(), expect_new))]
    async fn insert_submissions_expecting(
        &self,
        batch: &[NewSubmission],
        expect_new: bool,
    ) -> Result<Vec<SubmissionOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // The distinct (attacker, flag) pairs in key order; a pair seen again in this batch
        // is a duplicate of its first occurrence without asking the database.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| submission_key(&batch[a]).cmp(&submission_key(&batch[b])));
        // Where each row's first occurrence stands in `unique`, for the rows that are one.
        let mut first_at: Vec<Option<usize>> = vec![None; batch.len()];
        let mut unique: Vec<&NewSubmission> = Vec::with_capacity(batch.len());
        for &i in &order {
            if unique.last().is_none_or(|last| submission_key(last) != submission_key(&batch[i])) {
                first_at[i] = Some(unique.len());
                unique.push(&batch[i]);
            }
        }
        let inserted = match self.backend {
            Backend::Postgres if expect_new => match self.insert_new_postgres(&unique).await {
                Ok(()) => vec![true; unique.len()],
                Err(e) if is_duplicate_submission(&e) => {
                    tracing::debug!("a batch expected to be new held a stored flag; inserting it again");
                    self.insert_unique_postgres(&unique).await?
                }
                Err(e) => return Err(sqlx_error(e)),
            },
            Backend::Postgres => self.insert_unique_postgres(&unique).await?,
            Backend::Sqlite => self.insert_unique_sqlite(&unique).await?,
        };
        Ok(first_at
            .into_iter()
            .map(|at| match at {
                Some(at) if inserted[at] => SubmissionOutcome::New,
                _ => SubmissionOutcome::Duplicate,
            })
            .collect())
    }

    /// PostgreSQL: one autocommitted `INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT DO
    /// NOTHING`. Says which of `unique` (distinct, in key order) were inserted.
    async fn insert_unique_postgres(&self, unique: &[&NewSubmission]) -> Result<Vec<bool>> {
        const SQL: &str = concat!(
            postgres_insert_submissions!(),
            " ON CONFLICT (attacker, flag) DO NOTHING RETURNING attacker, flag"
        );
        let rows =
            bind_columns(SQL, unique).fetch_all(self.db.get_postgres_connection_pool()).await.map_err(sqlx_error)?;
        let mut inserted = vec![false; unique.len()];
        for row in &rows {
            use sea_orm::sqlx::Row;
            let attacker: i32 = row.try_get(0).map_err(sqlx_error)?;
            let flag: &str = row.try_get(1).map_err(sqlx_error)?;
            mark_inserted(unique, &mut inserted, attacker, flag)?;
        }
        Ok(inserted)
    }

    /// PostgreSQL: the same statement without `ON CONFLICT`, for rows expected to be new. Fails
    /// as a whole, storing nothing, if one of them is stored already.
    async fn insert_new_postgres(&self, unique: &[&NewSubmission]) -> std::result::Result<(), sea_orm::sqlx::Error> {
        const SQL: &str = postgres_insert_submissions!();
        bind_columns(SQL, unique).execute(self.db.get_postgres_connection_pool()).await.map(drop)
    }

    /// SQLite: in one `BEGIN IMMEDIATE` transaction, multi-row `INSERT … VALUES` statements
    /// of 1024, 512, …, 1 rows with bound values, each text prepared once per connection and
    /// cached, and no `RETURNING`. Says which of `unique` (distinct, in key order) were
    /// inserted.
    ///
    /// `RETURNING` would hand every inserted row from sqlx's SQLite thread to the caller as a
    /// message of its own, which costs more than inserting it. Instead: ids grow, and the
    /// transaction holds the write lock, so the rows with an id above the largest one before
    /// the insert are exactly the rows it inserted. When it inserted every row (the usual
    /// case) nothing is read back; otherwise one aggregate row lists the inserted keys.
    async fn insert_unique_sqlite(&self, unique: &[&NewSubmission]) -> Result<Vec<bool>> {
        const LAST_ID: &str = "SELECT coalesce(max(id), 0) FROM submissions";
        const INSERTED_SINCE: &str =
            "SELECT json_group_array(json_array(attacker, flag)) FROM submissions WHERE id > ?1";
        let pool = self.db.get_sqlite_connection_pool();
        let mut txn = pool.begin_with("BEGIN IMMEDIATE").await.map_err(sqlx_error)?;
        let (before,): (i64,) = sea_orm::sqlx::query_as(LAST_ID).fetch_one(&mut *txn).await.map_err(sqlx_error)?;
        let mut affected = 0;
        let mut rest = unique;
        while !rest.is_empty() {
            let (sql, rows) = sqlite_insert_for(rest.len());
            let (chunk, tail) = rest.split_at(rows);
            rest = tail;
            let mut query = sea_orm::sqlx::query(sql);
            for s in chunk {
                query = query
                    .bind(i32::from(s.attacker.0))
                    .bind(s.flag.as_str())
                    .bind(i32::from(s.victim.0))
                    .bind(i32::from(s.service.0))
                    .bind(i32::from(s.store.0))
                    .bind(tick_i32(s.tick_planted))
                    .bind(tick_i32(s.tick_submitted))
                    .bind(s.submitted_at);
            }
            affected += query.execute(&mut *txn).await.map_err(sqlx_error)?.rows_affected();
        }
        let mut inserted = vec![true; unique.len()];
        if usize::try_from(affected).ok() != Some(unique.len()) {
            inserted.fill(false);
            let (list,): (String,) =
                sea_orm::sqlx::query_as(INSERTED_SINCE).bind(before).fetch_one(&mut *txn).await.map_err(sqlx_error)?;
            let keys: Vec<(i32, String)> =
                serde_json::from_str(&list).map_err(|e| corrupt("submissions", format!("ids above {before}"), e))?;
            for (attacker, flag) in keys {
                mark_inserted(unique, &mut inserted, attacker, &flag)?;
            }
        }
        txn.commit().await.map_err(sqlx_error)?;
        Ok(inserted)
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
