//! The tuned path that stores flag submissions: batches sorted by their unique key, one
//! `UNNEST` statement on PostgreSQL, a few cached multi-row `INSERT`s on SQLite, and the
//! answer for every row (new, or submitted before) without reading the batch back when it
//! can be avoided. `docs/benchmarks.md` has the figures that chose each step.

use chrono::{DateTime, Utc};
use gongfang_core::record::NewSubmission;

use crate::error::{Result, StoreError, corrupt};
use crate::rows::tick_i32;
use crate::{Backend, Store};

/// Whether a submission was stored or had been submitted by the same attacker before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionOutcome {
    New,
    Duplicate,
}

/// The unique key of a submission; batches are sorted by it.
fn submission_key(s: &NewSubmission) -> (u16, &[u8]) {
    (s.capture.attacker.0, s.flag.as_bytes())
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
        .bind(column(|s| i32::from(s.capture.attacker.0)))
        .bind(rows.iter().map(|s| s.flag.clone()).collect::<Vec<String>>())
        .bind(column(|s| i32::from(s.capture.victim.0)))
        .bind(column(|s| i32::from(s.capture.service.0)))
        .bind(column(|s| i32::from(s.capture.store.0)))
        .bind(column(|s| tick_i32(s.capture.planted)))
        .bind(column(|s| tick_i32(s.capture.submitted)))
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

impl Store {
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
                    .bind(i32::from(s.capture.attacker.0))
                    .bind(s.flag.as_str())
                    .bind(i32::from(s.capture.victim.0))
                    .bind(i32::from(s.capture.service.0))
                    .bind(i32::from(s.capture.store.0))
                    .bind(tick_i32(s.capture.planted))
                    .bind(tick_i32(s.capture.submitted))
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
}
