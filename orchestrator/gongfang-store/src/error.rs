//! The one error type of the storage layer.
//!
//! A failure the database reports reaches callers as a [`DatabaseError`]: it keeps the driver's
//! message and source chain for people and logs, but no sea-orm or sqlx type leaves the crate.
//! What a caller may act on (a taken name, an unknown row, a closed tick) has a variant of its
//! own, so nothing outside needs to look inside a database error.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{DbErr, SqlErr};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database this build can use.
    #[error("unsupported database URL `{0}`; use sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB")]
    UnsupportedUrl(String),
    /// The database could not be reached or opened. The URL is shown without its password.
    #[error("cannot open database {url}: {source}")]
    Connect { url: String, source: DatabaseError },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] DatabaseError),
    /// Any other database failure: the database is unreachable, a statement failed, a
    /// constraint no operation expects refused a row.
    #[error("database error: {0}")]
    Db(#[from] DatabaseError),
    /// No team has this slug.
    #[error("no team with slug `{0}`")]
    UnknownTeam(String),
    /// A team with this id or slug is already stored (also when another writer stored it
    /// first, concurrently).
    #[error("a team with {field} `{value}` already exists")]
    TeamExists { field: &'static str, value: String },
    /// An account with this name is already stored (also when another writer stored it first,
    /// concurrently).
    #[error("an account named `{0}` already exists")]
    AccountExists(String),
    /// A stored value does not decode into its domain type (edited by hand, or a newer schema).
    #[error("corrupt {table} row {key}: {detail}")]
    Corrupt { table: &'static str, key: String, detail: String },
    /// The engine tried to replace the results of a tick that is already closed.
    #[error("tick {0} is closed; its checker results are final")]
    TickClosed(u32),
    /// No report has this id.
    #[error("no report {0}")]
    UnknownReport(i64),
    /// A team asked about a report another team filed.
    #[error("report {0} was filed by another team")]
    NotYourReport(i64),
    /// The report is not in the state the operation needs (e.g. ruling a report twice).
    #[error("report {report} is {status}; {what}")]
    ReportState { report: i64, status: &'static str, what: &'static str },
    /// A judge tried to take a second part in one report: score it twice, decide a dispute
    /// between their own score and another's, or rule the appeal of their own ruling.
    #[error("judge `{judge}` {did} report {report}; {next}")]
    SameJudge { report: i64, judge: String, did: &'static str, next: &'static str },
    /// A defence finding answers an attack the drill has no record of, or one on another team.
    #[error("report {report}: {why}")]
    BadLink { report: i64, why: String },
    /// Another engine holds the drill's lease: exactly one engine runs a drill.
    #[error(
        "another engine runs this drill ({}); stop it first, or, if it died, start again once its lease is {} seconds old",
        holder.as_ref().map_or_else(|| "it took the lease just now".to_owned(), |h| h.to_string()),
        crate::lease::STALE_AFTER.as_secs()
    )]
    EngineRunning { holder: Option<Box<crate::lease::LeaseHolder>> },
    /// No inject has this id.
    #[error("no inject {0}; GET the list of injects for their ids")]
    UnknownInject(i64),
    /// The team answered this inject already: one answer per team.
    #[error("your team has answered inject {inject} already; each team answers an inject once")]
    InjectAnswered { inject: i64 },
    /// A grade for an answer that was never given.
    #[error("team {team} has not answered inject {inject}; only answers can be graded")]
    NoInjectAnswer { inject: i64, team: u16 },
    /// The answer is graded already: one grade per answer.
    #[error("team {team}'s answer to inject {inject} is graded already; each answer is graded once")]
    InjectGraded { inject: i64, team: u16 },
    /// The team has filed as many reports as the scenario allows one team
    /// (`max_reports_per_team`).
    #[error("team {team} has filed {limit} reports, the most one team may file in this drill")]
    ReportLimit { team: u16, limit: u32 },
    /// Storing this filing's evidence would take the team over its evidence budget for the drill
    /// (`max_evidence_per_team`).
    #[error(
        "team {team} may store {limit} bytes of evidence in this drill and has {left} left; this filing brings {wanted}"
    )]
    EvidenceBudget { team: u16, limit: u64, left: u64, wanted: u64 },
    /// The account is not a judge.
    #[error("account `{0}` is not a judge")]
    NotAJudge(String),
    /// A report, ruling or appeal breaks the scenario's rules.
    #[error("{0}")]
    ReportRule(#[from] gongfang_core::report::ReportError),
    /// Hashing a secret failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Every argon2 slot stayed taken for the whole wait: too many password checks at once.
    /// Nothing was checked; the caller may try again after `retry_after`.
    #[error("the server is busy checking passwords; try again in {} s", retry_after.as_secs().max(1))]
    Busy { retry_after: std::time::Duration },
    /// A backup was asked of a database that is not SQLite.
    #[error("only a SQLite database can be copied this way; back up PostgreSQL with its own tools")]
    BackupNotSqlite,
    /// The backup's file exists already; a backup never replaces a file.
    #[error("{} already exists: a backup never replaces a file. Name a new file, or move the old one away first", .0.display())]
    BackupExists(std::path::PathBuf),
    /// The backup's file could not be written.
    #[error("cannot write the backup {}: {error}", path.display())]
    BackupIo { path: std::path::PathBuf, error: std::io::Error },
    /// SQLite's backup failed; nothing was left under the backup's name.
    #[error("backup failed: {0}")]
    Backup(String),
    /// A blocking task (argon2) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl From<DbErr> for StoreError {
    /// Lets the crate's code use `?` on sea-orm calls; the error stays opaque to callers.
    fn from(e: DbErr) -> Self {
        StoreError::Db(DatabaseError::new(e))
    }
}

/// Database failures since the process started, whatever the caller then did with them.
static DATABASE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many database failures this process has seen (`gongfang_store_errors_total` in
/// `/metrics`): statements that failed, connections lost, migrations refused. A unique key
/// refusing a duplicate is an expected answer and not counted.
pub fn database_errors() -> u64 {
    DATABASE_ERRORS.load(Ordering::Relaxed)
}

/// A failure the database or its driver reported. Opaque on purpose: its message and source
/// chain are for people and logs, and code that must tell failures apart matches a
/// [`StoreError`] variant instead.
pub struct DatabaseError(DbErr);

impl DatabaseError {
    pub(crate) fn new(e: DbErr) -> DatabaseError {
        if !is_unique_violation(&e) {
            DATABASE_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        DatabaseError(e)
    }
}

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DatabaseError {
    // The driver's own message is already this error's; its causes follow.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Whether a unique key refused the row: what tells "already there" from other failures when
/// a concurrent writer stored the same key between a check and an insert.
pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn corrupt(table: &'static str, key: impl ToString, detail: impl ToString) -> StoreError {
    StoreError::Corrupt { table, key: key.to_string(), detail: detail.to_string() }
}
